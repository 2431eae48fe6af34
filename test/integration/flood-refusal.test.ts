import { execFileSync } from 'node:child_process';
import { readFileSync, readdirSync, readlinkSync } from 'node:fs';
import { request } from 'node:http';
import { connect, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Instance, waitFor } from '../helpers/instances.js';
import { JsonClient } from '../helpers/json-client.js';
import { TestSocket } from '../helpers/socket.js';

/**
 * Over-cap sockets are refused at accept (issue 18 item 5): 300 stalled sockets from one
 * address against an instance with 256 open files and a per-address cap of 20. The first
 * 20 are held (until the header timeout, set long here so that holding the others would
 * show); the other 280 are answered 429 and closed at once, and another address keeps
 * being served. The flooder is 127.0.0.2, the bystander 127.0.0.3.
 */

const CAP = 20;
const FLOOD = 300;
let herald: Instance;
const flood: Socket[] = [];

beforeAll(async () => {
  herald = await Instance.start({
    name: 'herald-capped',
    env: { HERALD_MAX_CONNECTIONS_PER_IP: String(CAP), HERALD_HEADERS_TIMEOUT_MS: '60000', HERALD_REQUEST_TIMEOUT_MS: '60000' },
  });
  execFileSync('prlimit', ['--pid', String(herald.proc.pid), '--nofile=256:256']);
}, 60_000);

afterAll(async () => {
  for (const s of flood) s.destroy();
  await herald?.kill();
});

/** Inodes of the server's TCP sockets whose peer is `address` (from /proc/net/tcp). */
function socketsFrom(address: string): Set<string> {
  const hex = address.split('.').reverse().map((b) => Number(b).toString(16).padStart(2, '0')).join('').toUpperCase();
  const inodes = new Set<string>();
  for (const line of readFileSync('/proc/net/tcp', 'utf8').split('\n').slice(1)) {
    const f = line.trim().split(/\s+/);
    if (f.length > 9 && f[2]!.startsWith(`${hex}:`) && Number.parseInt(f[1]!.split(':')[1]!, 16) === herald.port) inodes.add(f[9]!);
  }
  return inodes;
}

/** How many open file descriptors of the Herald process are sockets from `address`. */
function heldFrom(address: string): number {
  const inodes = socketsFrom(address);
  let n = 0;
  for (const fd of readdirSync(`/proc/${herald.proc.pid}/fd`)) {
    try {
      const m = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${herald.proc.pid}/fd/${fd}`));
      if (m && inodes.has(m[1]!)) n++;
    } catch {
      // closed while listing
    }
  }
  return n;
}

/** A socket from `localAddress` that sends the start of a request and stalls; records what it is answered. */
function stalled(localAddress: string): Promise<{ socket: Socket; answer: Promise<string> }> {
  return new Promise((resolve) => {
    const socket = connect({ port: herald.port, host: '127.0.0.1', localAddress });
    let got = '';
    const answer = new Promise<string>((done) => socket.once('close', () => done(got)));
    socket.on('data', (d) => (got += d));
    socket.on('error', () => undefined); // a reset after the 429 is an expected end
    socket.once('connect', () => {
      socket.write('GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n');
      resolve({ socket, answer });
    });
    socket.once('close', () => resolve({ socket, answer }));
    flood.push(socket);
  });
}

function healthz(localAddress: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port: herald.port, path: '/healthz', localAddress, timeout: 10_000 }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('timeout', () => req.destroy(new Error('/healthz did not answer')));
    req.on('error', reject);
    req.end();
  });
}

describe('a flood of stalled sockets from one address', () => {
  it('holds at most cap + 10 of them; the rest get 429 at once; another address keeps getting /healthz and WebSockets', async () => {
    const started = Date.now();
    const opened = await Promise.all(Array.from({ length: FLOOD }, () => stalled('127.0.0.2')));
    const answers = opened.map((o) => o.answer);

    // Another address, while the flood is on: HTTP and a WebSocket both answer.
    const t0 = Date.now();
    expect(await healthz('127.0.0.3')).toBe(200);
    const healthMs = Date.now() - t0;
    const t1 = Date.now();
    const ws = new JsonClient(await TestSocket.open(`${herald.ws}/ws`, { localAddress: '127.0.0.3' }));
    const welcome = await ws.hello();
    const wsMs = Date.now() - t1;
    expect(welcome.peerId).toBeTruthy();

    // All but the cap are refused (answered 429, then closed by the server).
    const refused: string[] = [];
    for (const a of answers) void a.then((text) => refused.push(text));
    const refusedMs = await waitFor(`${FLOOD - CAP} flood sockets to be refused`, () => refused.length >= FLOOD - CAP, 30_000);
    expect(refused.every((text) => text.startsWith('HTTP/1.1 429 '))).toBe(true);
    const held = heldFrom('127.0.0.2');
    expect(held).toBeLessThanOrEqual(CAP + 10);
    expect(held).toBeGreaterThan(0);
    // The cap's worth stays open: counted, and ended only by the (long) header timeout.
    expect(flood.filter((s) => !s.destroyed && !s.closed)).toHaveLength(CAP);

    // Still answering the other address afterwards.
    expect(await healthz('127.0.0.3')).toBe(200);
    ws.socket.ws.close();
    console.log(
      `flood of ${FLOOD} stalled sockets, cap ${CAP}, 256 open files: ${FLOOD - CAP} refused within ${refusedMs} ms of the last connect ` +
        `(${Date.now() - started} ms from the first), ${held} held; another address: /healthz ${healthMs} ms, WebSocket hello ${wsMs} ms`,
    );
  });
});
