// npm run chaos [-- --short] [--clients N] [--json]
//
// A chaos soak of a whole cluster (docs/operations.md "Chaos soak"): HAProxy (health checks on
// /readyz) in front of three Herald instances and one Redis; SDK-like JSON clients (hello with
// lastSeq, acks, resume with their token, rejoin when not resumed, as client/signaling.ts does)
// stay in rooms of four and signal each other continuously, each signal with an id. Meanwhile
// the script SIGKILLs one instance, drains another with SIGTERM, restarts Redis and black-holes
// one instance's Redis link (a TCP proxy here that stops forwarding without closing anything).
// It prints what was sent, delivered, reported unavailable, lost and duplicated, and how long
// the clients took to be back in their rooms after each fault. `--json` prints the result as
// one JSON line at the end (the test in test/integration/chaos.test.ts reads it).
// Needs `npm run build` (it runs dist/cli.js), redis-server and haproxy. Loopback only.
import { spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { createServer, connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import WebSocket from 'ws';
import { freePort } from '../bench/free-port.mjs';

const args = process.argv.slice(2);
const flag = (name) => args.includes(`--${name}`);
const option = (name, fallback) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? Number(args[i + 1]) : fallback;
};
const SHORT = flag('short');
const CLIENTS = option('clients', SHORT ? 40 : 400);
/** Pause between faults (the clients keep signalling throughout). */
const SPACING_MS = option('spacing', SHORT ? 9000 : 30_000);
const SIGNAL_EVERY_MS = 1000;
const ROOM_SIZE = 4;
const CLI = fileURLToPath(new URL('../dist/cli.js', import.meta.url));
const HAPROXY = process.env.HAPROXY ?? 'haproxy';
const children = new Set();
const log = (...a) => console.log(`[chaos ${((Date.now() - T0) / 1000).toFixed(1)}s]`, ...a);
const T0 = Date.now();
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

process.on('exit', () => {
  for (const c of children) c.kill('SIGKILL');
});

function run(cmd, argv, env = {}) {
  const child = spawn(cmd, argv, { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  child.output = '';
  child.stdout.on('data', (d) => (child.output = (child.output + d).slice(-20_000)));
  child.stderr.on('data', (d) => (child.output = (child.output + d).slice(-20_000)));
  child.exited = new Promise((r) => child.once('exit', (code, signal) => r({ code, signal })));
  children.add(child);
  child.once('exit', () => children.delete(child));
  return child;
}

async function until(what, probe, timeoutMs = 30_000) {
  const start = Date.now();
  while (!(await probe())) {
    if (Date.now() - start > timeoutMs) throw new Error(`chaos: timed out waiting for ${what}`);
    await sleep(50);
  }
  return Date.now() - start;
}

async function status(url) {
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(1000) });
    await res.arrayBuffer();
    return res.status;
  } catch {
    return 0;
  }
}

// ---- Redis ----
const redisPort = await freePort();
let redis;
async function startRedis() {
  redis = run('redis-server', ['--port', String(redisPort), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--protected-mode', 'no', '--loglevel', 'warning']);
  await until('redis', async () => {
    const ok = await new Promise((resolve) => {
      const s = connect(redisPort, '127.0.0.1', () => s.write('PING\r\n'));
      s.once('data', (d) => {
        s.destroy();
        resolve(String(d).startsWith('+PONG'));
      });
      s.once('error', () => resolve(false));
    });
    return ok;
  });
}

// ---- a proxy that can black-hole (no FIN, no RST) ----
function partitionProxy(target) {
  const pairs = new Set();
  let holding;
  const held = [];
  const server = createServer((client) => {
    client.on('error', () => {});
    if (holding) {
      client.pause();
      held.push(client);
      return;
    }
    const upstream = connect(target, '127.0.0.1');
    upstream.on('error', () => {});
    const pair = [client, upstream];
    pairs.add(pair);
    client.pipe(upstream).pipe(client);
    const drop = () => {
      pairs.delete(pair);
      client.destroy();
      upstream.destroy();
    };
    client.on('close', drop);
    upstream.on('close', drop);
  });
  return {
    server,
    listen: () => new Promise((r) => server.listen(0, '127.0.0.1', () => r(server.address().port))),
    partition() {
      holding = [...pairs];
      for (const [c, u] of holding) {
        c.unpipe(u);
        u.unpipe(c);
        c.pause();
        u.pause();
      }
    },
    heal() {
      for (const [c, u] of holding ?? []) {
        c.pipe(u).pipe(c);
        c.resume();
        u.resume();
      }
      holding = undefined;
      for (const s of held.splice(0)) s.destroy();
    },
    close() {
      for (const [c, u] of pairs) {
        c.destroy();
        u.destroy();
      }
      server.close();
    },
  };
}

// ---- Herald instances ----
const names = ['h1', 'h2', 'h3'];
const ports = await Promise.all(names.map(() => freePort()));
await startRedis();
const proxy = partitionProxy(redisPort);
const proxyPort = await proxy.listen();
const instances = [];
function startInstance(i) {
  const redisUrl = `redis://127.0.0.1:${i === 2 ? proxyPort : redisPort}`; // h3 reaches Redis through the proxy
  const child = run(process.execPath, [CLI, 'serve', '--port', String(ports[i]), '--host', '127.0.0.1'], {
    REDIS_URL: redisUrl,
    LOG_LEVEL: 'warn',
    HERALD_MAX_CONNECTIONS_PER_IP: '100000', // every client arrives from HAProxy's address
    HERALD_DRAIN_GRACE_MS: '500',
    HERALD_DRAIN_DEADLINE_MS: '4000',
  });
  instances[i] = child;
  return until(`${names[i]} ready`, async () => (await status(`http://127.0.0.1:${ports[i]}/readyz`)) === 200);
}
await Promise.all(names.map((_, i) => startInstance(i)));

// ---- HAProxy ----
const lbPort = await freePort();
const dir = mkdtempSync(join(tmpdir(), 'herald-chaos-'));
const cfg = join(dir, 'haproxy.cfg');
writeFileSync(
  cfg,
  `global
  maxconn 2000
defaults
  mode http
  timeout connect 2s
  timeout client 60s
  timeout server 60s
  timeout tunnel 1h
frontend herald
  bind 127.0.0.1:${lbPort}
  default_backend instances
backend instances
  balance roundrobin
  option httpchk GET /readyz
  http-check expect status 200
  default-server inter 500 fall 2 rise 2
${names.map((n, i) => `  server ${n} 127.0.0.1:${ports[i]} check`).join('\n')}
`,
);
const haproxy = run(HAPROXY, ['-f', cfg, '-db']);
await until('haproxy', async () => (await status(`http://127.0.0.1:${lbPort}/healthz`)) === 200, 10_000).catch((err) => {
  throw new Error(`${err.message}: ${haproxy.output}`);
});
log(`redis :${redisPort}, instances ${ports.map((p, i) => `${names[i]} :${p}`).join(', ')} (h3 through a proxy), haproxy :${lbPort}`);

// ---- SDK-like clients ----
const url = `ws://127.0.0.1:${lbPort}/ws`;
const counts = { sent: 0, acked: 0, reported: 0, refused: 0, delivered: 0, duplicated: 0, outOfOrder: 0, unansweredOnDrop: 0 };
/** Signals not answered yet, by `${client}:${n}`: [sent at, sender]. */
const outstanding = new Map();
/** Delivered (from, n) pairs, for duplicates; per (from → to) the last n, for order. */
const seen = new Set();
const lastFrom = new Map();
/** Acked signals, and signals unanswered when their sender's socket dropped, not (yet) seen at the receiver. */
const unreceived = new Map();

class Client {
  constructor(index) {
    this.index = index;
    this.id = `chaos-${process.pid}-${index}`;
    this.room = `chaos-room-${Math.floor(index / ROOM_SIZE)}`;
    this.mates = [];
    for (let j = Math.floor(index / ROOM_SIZE) * ROOM_SIZE; j < Math.min(CLIENTS, (Math.floor(index / ROOM_SIZE) + 1) * ROOM_SIZE); j++) if (j !== index) this.mates.push(`chaos-${process.pid}-${j}`);
    this.lastSeq = 0;
    this.resumeToken = undefined;
    this.inRoom = false;
    this.nextId = 1;
    this.n = 0;
    this.pending = new Map(); // request id → what it is
    this.drops = 0;
    this.backAt = 0;
  }

  open() {
    const ws = new WebSocket(url);
    this.ws = ws;
    ws.on('open', () => {
      const hello = { type: 'hello', id: this.nextId++, peerId: this.id, lastSeq: this.lastSeq };
      if (this.resumeToken) hello.resumeToken = this.resumeToken;
      this.pending.set(hello.id, { kind: 'hello' });
      ws.send(JSON.stringify(hello));
    });
    ws.on('message', (data) => this.onMessage(JSON.parse(String(data))));
    ws.on('error', () => {});
    ws.on('close', () => this.onClose());
  }

  onClose() {
    if (stopping) return;
    this.inRoom = false;
    this.drops++;
    // What was unanswered on the dead socket: its fate is unknown to this client (a real SDK
    // would see the drop); it counts apart, and as lost only if never delivered.
    for (const [, p] of this.pending) {
      if (p.kind !== 'signal') continue;
      outstanding.delete(p.key);
      counts.unansweredOnDrop++;
      if (!seen.has(p.key)) unreceived.set(p.key, { acked: false });
    }
    this.pending.clear();
    setTimeout(() => this.open(), 100 + Math.random() * 200);
  }

  send(msg) {
    if (this.ws?.readyState === WebSocket.OPEN) this.ws.send(JSON.stringify(msg));
  }

  onMessage(m) {
    if (m.seq !== undefined) {
      if (m.seq <= this.lastSeq) return; // a replay of what was taken already
      this.lastSeq = m.seq;
      this.ackDue = true;
    }
    if (m.type === 'ack' || (m.type === 'error' && m.id !== undefined)) {
      const p = this.pending.get(m.id);
      if (!p) return;
      this.pending.delete(m.id);
      if (p.kind === 'hello') {
        if (m.type === 'error') {
          // The resume token is unknown (its instance died): start afresh.
          this.resumeToken = undefined;
          this.lastSeq = 0;
          this.ws.close();
          return;
        }
        this.resumeToken = m.resumeToken;
        if (!m.resumed) this.lastSeq = 0;
        if (m.resumed && m.rooms.some((r) => r.room === this.room)) this.back();
        else {
          const id = this.nextId++;
          this.pending.set(id, { kind: 'join' });
          this.send({ type: 'join', id, room: this.room, role: 'peer' });
        }
      } else if (p.kind === 'join') {
        if (m.type === 'ack') this.back();
        else setTimeout(() => this.ws.readyState === WebSocket.OPEN && this.rejoin(), 500);
      } else if (p.kind === 'signal') {
        outstanding.delete(p.key);
        if (m.type === 'ack') {
          counts.acked++;
          if (!seen.has(p.key)) unreceived.set(p.key, { acked: true, at: Date.now() - T0, to: p.to });
        } else if (m.code === 'unavailable') counts.reported++;
        else counts.refused++; // e.g. not-found: the room-mate is not in the room right now
      }
      return;
    }
    if (m.type === 'signal' && m.data?.chaos) {
      const key = `${m.from}:${m.data.n}`;
      if (seen.has(key)) counts.duplicated++;
      else {
        seen.add(key);
        counts.delivered++;
        unreceived.delete(key);
      }
      const pair = `${m.from}>${this.id}`;
      if ((lastFrom.get(pair) ?? 0) > m.data.n) counts.outOfOrder++;
      lastFrom.set(pair, Math.max(lastFrom.get(pair) ?? 0, m.data.n));
    }
  }

  rejoin() {
    const id = this.nextId++;
    this.pending.set(id, { kind: 'join' });
    this.send({ type: 'join', id, room: this.room, role: 'peer' });
  }

  back() {
    this.inRoom = true;
    this.backAt = Date.now();
  }

  tick() {
    if (this.ackDue) {
      this.ackDue = false;
      this.send({ type: 'ack', seq: this.lastSeq });
    }
    if (!this.inRoom || this.mates.length === 0 || this.ws.readyState !== WebSocket.OPEN) return;
    const to = this.mates[this.n % this.mates.length];
    const n = ++this.n;
    const id = this.nextId++;
    const key = `${this.id}:${n}`;
    this.pending.set(id, { kind: 'signal', key, to });
    outstanding.set(key, Date.now());
    counts.sent++;
    this.send({ type: 'signal', id, room: this.room, to, data: { chaos: 1, n } });
  }
}

let stopping = false;
const clients = Array.from({ length: CLIENTS }, (_, i) => new Client(i));
for (const c of clients) c.open();
await until('every client in its room', () => clients.every((c) => c.inRoom), 60_000);
log(`${CLIENTS} clients in ${Math.ceil(CLIENTS / ROOM_SIZE)} rooms`);
const ticker = setInterval(() => {
  for (const c of clients) if (Math.random() < 100 / SIGNAL_EVERY_MS) c.tick();
}, 100);

// ---- faults ----
const faults = [];
async function fault(name, act) {
  const before = new Map(clients.map((c) => [c, c.drops]));
  const at = Date.now();
  log(`fault: ${name}`);
  await act();
  // Back: every client whose socket dropped is in its room again; the others still are.
  const backMs = await until(`clients back after ${name}`, () => clients.every((c) => c.inRoom), 60_000).then(() => {
    let worst = 0;
    for (const c of clients) if (c.drops > before.get(c)) worst = Math.max(worst, c.backAt - at);
    return worst;
  });
  const dropped = clients.filter((c) => c.drops > before.get(c)).length;
  faults.push({ fault: name, clientsDropped: dropped, clientsBack: clients.filter((c) => c.inRoom).length, backWithinMs: backMs });
  log(`  ${dropped} clients reconnected; ${clients.filter((c) => c.inRoom).length}/${CLIENTS} in their rooms; the last back ${backMs} ms after the fault`);
  await sleep(SPACING_MS);
}

await sleep(SPACING_MS / 2);
await fault('SIGKILL h1', async () => {
  instances[0].kill('SIGKILL');
  await instances[0].exited;
  await sleep(2000);
  await startInstance(0);
});
await fault('SIGTERM (drain) h2', async () => {
  instances[1].kill('SIGTERM');
  await instances[1].exited;
  await startInstance(1);
});
await fault('restart Redis', async () => {
  redis.kill('SIGKILL');
  await redis.exited;
  await sleep(1000);
  await startRedis();
});
await fault("black-hole h3's Redis link for 8 s", async () => {
  proxy.partition();
  await sleep(8000);
  proxy.heal();
});

// ---- settle and count ----
clearInterval(ticker);
await until('every signal answered', () => outstanding.size === 0, 30_000).catch(() => {});
await until('acknowledged signals to arrive', () => unreceived.size === 0, 10_000).catch(() => {});
stopping = true;
// Lost: acknowledged (or never answered on a live socket) and never delivered. A signal whose
// sender's socket died before its answer, and that never arrived, counts apart: the client saw
// its connection drop (as with any network), so it was not lost silently.
const unreceivedList = [...unreceived.values()];
const lost = unreceivedList.filter((u) => u.acked).length + outstanding.size;
const undeliveredOnDrop = unreceivedList.filter((u) => !u.acked).length;
if (lost) log('lost:', JSON.stringify([...unreceived].filter(([, u]) => u.acked).slice(0, 20)), 'unanswered:', JSON.stringify([...outstanding].slice(0, 20)));
const result = {
  clients: CLIENTS,
  sent: counts.sent,
  delivered: counts.delivered,
  acked: counts.acked,
  reportedUnavailable: counts.reported,
  refused: counts.refused,
  unansweredOnDroppedSocket: counts.unansweredOnDrop,
  undeliveredOnDroppedSocket: undeliveredOnDrop,
  lost,
  duplicated: counts.duplicated,
  outOfOrder: counts.outOfOrder,
  faults,
};
log(
  `sent ${result.sent}, delivered ${result.delivered}, reported unavailable ${result.reportedUnavailable}, refused ${result.refused}, ` +
    `unanswered on a dropped socket ${result.unansweredOnDroppedSocket} (of which never delivered ${undeliveredOnDrop}), lost ${result.lost}, duplicated ${result.duplicated}, out of order ${result.outOfOrder}`,
);
for (const f of faults) log(`  ${f.fault}: ${f.clientsDropped} reconnected, ${f.clientsBack}/${CLIENTS} back in their rooms within ${f.backWithinMs} ms`);
if (flag('json')) console.log(`CHAOS-RESULT ${JSON.stringify(result)}`);

for (const c of clients) c.ws.terminate();
haproxy.kill('SIGTERM');
for (const i of instances) i.kill('SIGKILL');
redis.kill('SIGKILL');
proxy.close();
rmSync(dir, { recursive: true, force: true });
process.exit(0);
