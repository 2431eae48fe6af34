#!/usr/bin/env node
// Over-cap sockets against one build of Herald, for the before/after figures in
// docs/security.md: `node bench/flood-probe.mjs [path/to/cli.js]`. The server runs with an
// open-files limit of 256 and HERALD_MAX_CONNECTIONS_PER_IP=20; 300 sockets from 127.0.0.2
// send the start of a request and stall; meanwhile 32 requests (/healthz, and WebSocket
// `hello`s on /ws) come from 127.0.0.3. Prints the flood sockets the server holds 8 s in
// and how the other address fared. Loopback only; bounded in count and time.
import { execFileSync, spawn } from 'node:child_process';
import { readFileSync, readdirSync, readlinkSync } from 'node:fs';
import { request } from 'node:http';
import { connect } from 'node:net';
import WebSocket from 'ws';

const CLI = process.argv[2] ?? new URL('../dist/cli.js', import.meta.url).pathname;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

const proc = spawn(process.execPath, [CLI, 'serve', '--port', '0', '--host', '127.0.0.1'], {
  env: { ...process.env, LOG_LEVEL: 'silent', HERALD_MAX_CONNECTIONS_PER_IP: '20' },
  stdio: ['ignore', 'pipe', 'pipe'],
});
let out = '';
proc.stdout.on('data', (d) => (out += d));
proc.stderr.on('data', (d) => (out += d));
for (let i = 0; i < 300 && !/listening on http:\/\/[^:]+:(\d+)/.test(out); i++) await sleep(50);
const port = Number(/listening on http:\/\/[^:]+:(\d+)/.exec(out)[1]);
execFileSync('prlimit', ['--pid', String(proc.pid), '--nofile=256:256']);

/** Server file descriptors that are TCP sockets from `address`. */
function held(address) {
  const hex = address.split('.').reverse().map((b) => Number(b).toString(16).padStart(2, '0')).join('').toUpperCase();
  const inodes = new Set();
  for (const line of readFileSync('/proc/net/tcp', 'utf8').split('\n').slice(1)) {
    const f = line.trim().split(/\s+/);
    if (f.length > 9 && f[2].startsWith(`${hex}:`) && Number.parseInt(f[1].split(':')[1], 16) === port) inodes.add(f[9]);
  }
  let n = 0;
  for (const fd of readdirSync(`/proc/${proc.pid}/fd`)) {
    try {
      const m = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${proc.pid}/fd/${fd}`));
      if (m && inodes.has(m[1])) n++;
    } catch {}
  }
  return n;
}

const flood = [];
const started = Date.now();
for (let i = 0; i < 300; i++) {
  const s = connect({ port, host: '127.0.0.1', localAddress: '127.0.0.2' }, () => s.write('GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n'));
  s.on('error', () => {});
  s.resume();
  flood.push(s);
}

function healthz() {
  return new Promise((resolve) => {
    const t = Date.now();
    const req = request({ host: '127.0.0.1', port, path: '/healthz', localAddress: '127.0.0.3', timeout: 5000 }, (res) => {
      res.resume();
      res.on('end', () => resolve({ ok: res.statusCode === 200, ms: Date.now() - t }));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', (e) => resolve({ ok: false, ms: Date.now() - t, err: e.code ?? e.message }));
    req.end();
  });
}
function wsHello() {
  return new Promise((resolve) => {
    const t = Date.now();
    const ws = new WebSocket(`ws://127.0.0.1:${port}/ws`, { localAddress: '127.0.0.3', handshakeTimeout: 5000 });
    const done = (r) => {
      ws.terminate();
      resolve({ ...r, ms: Date.now() - t });
    };
    ws.on('open', () => ws.send(JSON.stringify({ type: 'hello', id: 1 })));
    ws.on('message', (d) => done({ ok: JSON.parse(d.toString()).type === 'ack' }));
    ws.on('error', (e) => done({ ok: false, err: e.code ?? e.message }));
  });
}

await sleep(200);
const others = [];
for (let i = 0; i < 16; i++) others.push(await healthz(), await wsHello());
while (Date.now() - started < 8000) await sleep(100);
const at8 = held('127.0.0.2');
const ok = others.filter((r) => r.ok);
const slowest = Math.max(...others.map((r) => r.ms));
const errs = [...new Set(others.filter((r) => !r.ok).map((r) => r.err))];
console.log(
  JSON.stringify({
    cli: CLI,
    floodHeldAt8s: at8,
    otherAddress: { answered: ok.length, of: others.length, slowestMs: slowest, errors: errs },
  }),
);
for (const s of flood) s.destroy();
proc.kill('SIGKILL');
