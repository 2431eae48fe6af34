#!/usr/bin/env node
// Bounded re-run of the security probe's findings 1-3 against one build of Herald, for the
// before/after figures in docs/security.md: `node bench/security-probe.mjs [path/to/cli.js]`.
// Loopback only; every load is bounded in count and time.
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { connect } from 'node:net';
import WebSocket from 'ws';

const CLI = process.argv[2] ?? new URL('../dist/cli.js', import.meta.url).pathname;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const rss = (pid) => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))[1]) / 1024;

async function start(env = {}) {
  const proc = spawn(process.execPath, [CLI, 'serve', '--port', '0', '--host', '127.0.0.1'], {
    env: { ...process.env, LOG_LEVEL: 'silent', NODE_OPTIONS: '--max-old-space-size=1024', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  proc.stdout.on('data', (d) => (out += d));
  proc.stderr.on('data', (d) => (out += d));
  for (let i = 0; i < 300 && !/listening on http:\/\/[^:]+:(\d+)/.test(out); i++) await sleep(50);
  const port = Number(/listening on http:\/\/[^:]+:(\d+)/.exec(out)[1]);
  return { proc, port, ws: `ws://127.0.0.1:${port}`, stop: () => proc.kill('SIGKILL') };
}

function client(url) {
  const ws = new WebSocket(url);
  const inbox = [];
  ws.on('message', (d) => inbox.push(JSON.parse(d.toString())));
  ws.on('error', () => undefined);
  return new Promise((resolve) => ws.once('open', () => resolve({ ws, inbox })));
}
async function request(c, msg) {
  c.ws.send(JSON.stringify(msg));
  for (let i = 0; i < 200; i++) {
    const m = c.inbox.find((x) => x.id === msg.id);
    if (m) return m;
    await sleep(10);
  }
  throw new Error('no reply');
}

async function slowReader() {
  const s = await start();
  const room = 'probe';
  const victim = await client(`${s.ws}/ws`);
  const v = await request(victim, { type: 'hello', id: 1 });
  await request(victim, { type: 'join', id: 2, room, role: 'peer' });
  const senders = [];
  for (let i = 0; i < 5; i++) {
    const c = await client(`${s.ws}/ws`);
    await request(c, { type: 'hello', id: 1 });
    await request(c, { type: 'join', id: 2, room, role: 'peer' });
    senders.push(c);
  }
  victim.ws._socket.pause();
  const pongs = setInterval(() => victim.ws.pong(), 200);
  const frame = JSON.stringify({ type: 'signal', room, to: v.peerId, data: 'x'.repeat(60 * 1024 - 200) });
  const before = rss(s.proc.pid);
  let peak = before, sent = 0, alive = true;
  const started = Date.now();
  while (Date.now() - started < 20_000 && (alive = s.proc.exitCode === null && s.proc.signalCode === null)) {
    for (const c of senders) for (let k = 0; k < 20; k++) c.ws.send(frame);
    sent += 100;
    await sleep(250);
    try { peak = Math.max(peak, rss(s.proc.pid)); } catch { alive = false; break; }
  }
  clearInterval(pongs);
  const metrics = alive ? await (await fetch(`http://127.0.0.1:${s.port}/metrics`)).text() : '';
  const open = /herald_connections\{protocol="json"\} (\d+)/.exec(metrics)?.[1];
  s.stop();
  return `slow reader, 20 s, 5 senders x 80 x 60 KB/s: sent ${(sent * 60 / 1024).toFixed(0)} MB; RSS ${before.toFixed(0)} -> peak ${peak.toFixed(0)} MB; process ${alive ? 'alive' : 'DIED'}; json sockets open at end ${open ?? '-'} of 6`;
}

async function fragmentBomb() {
  const s = await start();
  const before = rss(s.proc.pid);
  const bombs = await Promise.all(Array.from({ length: 100 }, () => client(`${s.ws}/ws`)));
  let closed = 0;
  for (const b of bombs) b.ws.once('close', () => closed++);
  let peak = before, sentFrames = 0;
  for (let round = 0; round < 16; round++) {
    for (const b of bombs) {
      if (b.ws.readyState !== WebSocket.OPEN) continue;
      for (let k = 0; k < 1000; k++) b.ws.send('x', { fin: false });
      sentFrames += 1000;
    }
    await sleep(100);
    peak = Math.max(peak, rss(s.proc.pid));
  }
  await sleep(2000);
  peak = Math.max(peak, rss(s.proc.pid));
  s.stop();
  return `fragment bomb, 100 sockets x up to 16,000 1-byte fragments: sent ${sentFrames} fragments (${(sentFrames * 7 / 1048576).toFixed(1)} MB on the wire); RSS ${before.toFixed(0)} -> peak ${peak.toFixed(0)} MB; sockets closed by server ${closed}/100`;
}

async function halfOpen() {
  const s = await start({ HERALD_MAX_CONNECTIONS_PER_IP: '50' });
  const sockets = [];
  for (let i = 0; i < 300; i++) {
    const sock = connect({ port: s.port, host: '127.0.0.1', localAddress: '127.0.0.2' }, () => sock.write('GET /ws HTTP/1.1\r\nHost: x\r\n'));
    sock.on('error', () => undefined);
    sock.resume(); // read the server's 408 and its FIN, or 'close' never fires here
    sock.closedAt = undefined;
    const t0 = Date.now();
    sock.on('close', () => (sock.closedAt = Date.now() - t0));
    sockets.push(sock);
  }
  await sleep(1000);
  const upgrade = await new Promise((resolve) => {
    const ws = new WebSocket(`${s.ws}/webrtc/reader/u`, { localAddress: '127.0.0.2' });
    ws.on('open', () => { resolve('accepted'); ws.close(); });
    ws.on('unexpected-response', (_q, r) => resolve(`refused ${r.statusCode}`));
    ws.on('error', () => resolve('error'));
  });
  await sleep(19_000);
  const open = sockets.filter((x) => x.closedAt === undefined).length;
  const closedTimes = sockets.filter((x) => x.closedAt !== undefined).map((x) => x.closedAt).sort((a, b) => a - b);
  for (const x of sockets) x.destroy();
  s.stop();
  return `half-open, 300 sockets from one address with partial headers (per-IP cap 50): a full upgrade from that address after 1 s was ${upgrade}; still open after 21 s: ${open}/300; median close at ${closedTimes[closedTimes.length >> 1] ?? '-'} ms`;
}

const only = process.argv[3];
for (const probe of [slowReader, fragmentBomb, halfOpen]) if (!only || probe.name === only) console.log(await probe());
process.exit(0);
