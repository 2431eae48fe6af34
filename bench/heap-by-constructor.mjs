#!/usr/bin/env node
// Memory per idle connection, by constructor: starts Herald (dist/cli.js) with
// --heapsnapshot-signal, takes a heap snapshot with no clients and one with N idle joined
// connections (N/2 pairs, as in the bench), and prints what the difference is made of.
//
//   node bench/heap-by-constructor.mjs [seed|json|peerjs|peerserver] [connections=2000]
//
// The generator is this process (not the server), so the server's heap holds only its own
// per-connection state. Loopback only.
import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import WebSocket from 'ws';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const target = process.argv[2] ?? 'json';
const conns = Number(process.argv[3] ?? 2000);
const dir = mkdtempSync(join(tmpdir(), 'herald-heap-'));
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// `peerserver`: the same PeerJS clients against the real PeerServer (bench/peer-server.mjs), to compare.
const serverArgs = target === 'peerserver' ? [join(ROOT, 'bench', 'peer-server.mjs')] : [join(ROOT, 'dist', 'cli.js'), 'serve', '--port', '0', '--host', '127.0.0.1'];
const server = spawn(process.execPath, ['--expose-gc', '--heapsnapshot-signal=SIGUSR2', ...serverArgs], {
  cwd: dir,
  env: { ...process.env, LOG_LEVEL: 'warn', HERALD_JOIN_TIMEOUT_MS: '0', HERALD_MAX_CONNECTIONS_PER_IP: '0', HERALD_RATE_BURST: '1000000000', HERALD_RATE_PER_SECOND: '1000000000' },
  stdio: ['ignore', 'pipe', 'pipe'],
});
const port = await new Promise((res, rej) => {
  let out = '';
  const t = setTimeout(() => rej(new Error(`no start: ${out}`)), 20000);
  const on = (d) => {
    out += d;
    const m = /listening on http:\/\/[^:]+:(\d+)/.exec(out);
    if (m) {
      clearTimeout(t);
      res(Number(m[1]));
    }
  };
  server.stdout.on('data', on);
  server.stderr.on('data', on);
});

async function snapshot() {
  const before = new Set(readdirSync(dir));
  server.kill('SIGUSR2');
  for (let i = 0; i < 600; i++) {
    await sleep(100);
    const fresh = readdirSync(dir).filter((f) => f.endsWith('.heapsnapshot') && !before.has(f));
    if (fresh.length) {
      // Wait until the file is complete JSON (it is written in pieces).
      for (let k = 0; k < 600; k++) {
        await sleep(500);
        try {
          return { file: join(dir, fresh[0]), snap: JSON.parse(readFileSync(join(dir, fresh[0]), 'utf8')) };
        } catch {}
      }
      throw new Error('snapshot never completed');
    }
  }
  throw new Error('no snapshot');
}

/** Self size and count per constructor name (node type + name) of a .heapsnapshot. */
function byConstructor({ snap }) {
  const { node_fields: fields, node_types: [types] } = snap.snapshot.meta;
  const F = fields.length;
  const iType = fields.indexOf('type');
  const iName = fields.indexOf('name');
  const iSize = fields.indexOf('self_size');
  const out = new Map();
  const { nodes, strings } = snap;
  for (let i = 0; i < nodes.length; i += F) {
    const type = types[nodes[i + iType]];
    const name = type === 'object' || type === 'closure' ? strings[nodes[i + iName]] : `(${type})`;
    const key = type === 'closure' ? `closure ${name}` : name;
    const e = out.get(key) ?? { count: 0, size: 0 };
    e.count++;
    e.size += nodes[i + iSize];
    out.set(key, e);
  }
  return out;
}

const clients = [];
function open(path) {
  const ws = new WebSocket(`ws://127.0.0.1:${port}${path}`, { perMessageDeflate: false });
  clients.push(ws);
  return new Promise((res, rej) => {
    ws.once('open', () => res(ws));
    ws.once('error', rej);
  });
}
function next(ws, pred) {
  return new Promise((res) => {
    const on = (d) => {
      const t = d.toString();
      if (pred(t)) {
        ws.off('message', on);
        res(t);
      }
    };
    ws.on('message', on);
  });
}

const empty = byConstructor(await snapshot());
for (let i = 0; i < conns / 2; i++) {
  if (target === 'peerjs' || target === 'peerserver') {
    // Registered PeerJS peers (no rooms): the client waits for OPEN.
    // OPEN may come in the same packet as the upgrade: listen before the socket opens.
    for (const id of [`a${i}`, `b${i}`]) {
      const ws = new WebSocket(`ws://127.0.0.1:${port}/peerjs?key=peerjs&id=${id}&token=t${id}`, { perMessageDeflate: false });
      clients.push(ws);
      await next(ws, (t) => t.includes('"OPEN"'));
    }
  } else if (target === 'seed') {
    const a = await open(`/webrtc/sender/r${i}`);
    const b = await open(`/webrtc/reader/u${i}`);
    const joined = next(a, (t) => t === `join|u${i}`);
    b.send(`join|r${i}`);
    await joined;
  } else {
    const a = await open('/ws');
    const b = await open('/ws');
    for (const [ws, id, role] of [[a, `a${i}`, 'broadcaster'], [b, `b${i}`, 'viewer']]) {
      const w = next(ws, (t) => t.startsWith('{"type":"ack","id":1'));
      ws.send(JSON.stringify({ type: 'hello', id: 1, peerId: id }));
      await w;
      const j = next(ws, (t) => t.startsWith('{"type":"ack","id":2'));
      ws.send(JSON.stringify({ type: 'join', id: 2, room: `r${i}`, role }));
      await j;
    }
  }
}
await sleep(500);
const full = byConstructor(await snapshot());
const rows = [];
let total = 0;
for (const [k, e] of full) {
  const b = empty.get(k) ?? { count: 0, size: 0 };
  const d = { name: k, count: e.count - b.count, size: e.size - b.size };
  total += d.size;
  if (d.size > 0) rows.push(d);
}
rows.sort((x, y) => y.size - x.size);
console.log(`${target}: ${conns} idle connections; JS heap growth ${(total / 1024 / conns).toFixed(2)} KB per connection`);
console.log('bytes/conn  objects/conn  constructor');
for (const r of rows.slice(0, 30)) console.log(`${(r.size / conns).toFixed(0).padStart(9)}  ${(r.count / conns).toFixed(2).padStart(12)}  ${r.name}`);
for (const ws of clients) ws.terminate();
server.kill('SIGTERM');
rmSync(dir, { recursive: true, force: true });
process.exit(0);
