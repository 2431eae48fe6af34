#!/usr/bin/env node
// y-webrtc signaling bench: Herald's /y-webrtc against y-webrtc's own bin/server.js in one run.
//
//   node bench/ywebrtc.mjs [--mode=full|quick] [--out=<dir>]     (npm run bench -- --only ywebrtc)
//
// Each server runs as its own process (node --expose-gc --import probe.mjs, so memory is read
// after a full GC), pinned to core 0 when `taskset` works; the load is this process, the same
// generator for both. Phases, per server:
//   - fan-out throughput for topics of 2, 8 and 32 subscribers: one publisher per topic keeps a
//     window of publishes in flight (each one's echo to the sender frees a slot, as the sender is
//     a subscriber too); deliveries per second counted at every subscriber;
//   - latency: in topics of 8 at low load, publish → arrival at another subscriber (p50, p99);
//   - memory per connection: RSS and heap growth over N idle sockets, each subscribed to a topic;
//   - cross-instance (Herald only: the reference has none): two instances on a redis-server,
//     topics of 8 with subscribers on both, publishers on one.
// Loopback only; every loop is bounded in count and time.
import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath, pathToFileURL } from 'node:url';
import WebSocket from 'ws';
import { freePort } from './free-port.mjs';

const HERE = dirname(fileURLToPath(import.meta.url));
const ROOT = resolve(HERE, '..');
const PROBE = pathToFileURL(join(HERE, 'probe.mjs')).href;
const LOOPBACK = pathToFileURL(join(HERE, 'loopback-listen.mjs')).href;
const REFERENCE = join(ROOT, 'node_modules', 'y-webrtc', 'bin', 'server.js');
const argv = process.argv.slice(2);
const opt = (name) => argv.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

const MODES = {
  full: { reps: 3, subscribers: 256, window: 4, warmupMs: 1000, measureMs: 4000, latencyMsgs: 1000, idleConns: 4000 },
  quick: { reps: 1, subscribers: 128, window: 4, warmupMs: 300, measureMs: 1500, latencyMsgs: 300, idleConns: 1000 },
};
const MODE = opt('mode') ?? 'full';
const P = MODES[MODE];
if (!P) throw new Error(`unknown mode ${MODE}`);
const TASKSET = spawnSync('taskset', ['-c', '0', 'true']).status === 0;
const PAYLOAD = 'x'.repeat(600); // about an encrypted y-webrtc signal (base64 of an SDP or candidate)
const children = new Set();

function pinned(cmd, args) {
  return TASKSET ? ['taskset', ['-c', '0', cmd, ...args]] : [cmd, args];
}


function start(name, cmd, args, env, ready) {
  const [c, a] = pinned(cmd, args);
  const proc = spawn(c, a, { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
  children.add(proc);
  let out = '';
  return new Promise((res, rej) => {
    const timer = setTimeout(() => rej(new Error(`${name} did not start: ${out.slice(-400)}`)), 30_000);
    const onData = (d) => {
      out += d;
      const m = ready.exec(out);
      if (m) {
        clearTimeout(timer);
        res({ proc, port: Number(m[1]) });
      }
    };
    proc.stdout.on('data', onData);
    proc.stderr.on('data', onData);
    proc.once('exit', (code) => rej(new Error(`${name} exited ${code}: ${out.slice(-400)}`)));
  });
}

async function stop(proc) {
  if (proc.exitCode !== null || proc.signalCode !== null) return;
  const gone = new Promise((r) => proc.once('exit', r));
  proc.kill('SIGKILL');
  await gone;
  children.delete(proc);
}
process.on('exit', () => {
  for (const p of children) p.kill('SIGKILL');
});

function startReference() {
  return start('reference', process.execPath, ['--expose-gc', '--import', PROBE, '--import', LOOPBACK, REFERENCE], { ...process.env, PORT: '0' }, /LISTENING (\d+)/);
}

function startHerald(extra = {}) {
  const env = {
    ...process.env,
    LOG_LEVEL: 'warn',
    HERALD_SECRET: '',
    // The bench measures the relay, not the rate cap (the reference has none).
    HERALD_RATE_BURST: '1000000',
    HERALD_RATE_PER_SECOND: '1000000',
    HERALD_JOIN_TIMEOUT_MS: '0',
    HERALD_MAX_CONNECTIONS: '0',
    ...extra,
  };
  return start('herald', process.execPath, ['--expose-gc', '--import', PROBE, join(ROOT, 'dist', 'cli.js'), 'serve', '--port', '0', '--host', '127.0.0.1'], env, /herald listening on http:\/\/[^:\s]+:(\d+)/);
}

/** Full GC in the server, then its memoryUsage() (bench/probe.mjs). */
async function memory(pid) {
  const file = join(tmpdir(), `herald-probe-${pid}.json`);
  rmSync(file, { force: true });
  process.kill(pid, 'SIGUSR2');
  for (let i = 0; i < 200; i++) {
    await sleep(25);
    try {
      return JSON.parse(readFileSync(file, 'utf8'));
    } catch {}
  }
  throw new Error('no memory probe answer');
}

function open(url) {
  return new Promise((res, rej) => {
    const ws = new WebSocket(url, { perMessageDeflate: false });
    ws.once('open', () => res(ws));
    ws.once('error', rej);
  });
}

/** Opens `n` sockets in batches, each subscribed to `topicOf(i)`; resolves once all answered a ping after subscribing. */
async function subscribers(urlOf, n, topicOf) {
  const sockets = [];
  for (let i = 0; i < n; i += 100) {
    const batch = await Promise.all(Array.from({ length: Math.min(100, n - i) }, (_, k) => open(urlOf(i + k))));
    await Promise.all(
      batch.map((ws, k) => {
        ws.send(JSON.stringify({ type: 'subscribe', topics: [topicOf(i + k)] }));
        ws.send('{"type":"ping"}');
        return new Promise((r) => ws.once('message', r));
      }),
    );
    sockets.push(...batch);
  }
  return sockets;
}

/** Waits until a publish on every topic reports `size` clients (cross-instance joins settled). */
async function settled(publishers, size) {
  await Promise.all(
    publishers.map(async ({ ws, topic }) => {
      for (let i = 0; i < 200; i++) {
        const got = new Promise((r) => ws.once('message', (d) => r(JSON.parse(d.toString()))));
        ws.send(JSON.stringify({ type: 'publish', topic, probe: i }));
        if ((await got).clients === size) return;
        await sleep(50);
      }
      throw new Error(`topic ${topic} never reached ${size} subscribers`);
    }),
  );
}

/** Fan-out throughput: deliveries per second over every subscriber, topics of `size`. */
async function fanout(urls, size, label) {
  const topics = Math.max(1, Math.floor(P.subscribers / size));
  const prefix = `${label}-${size}-${Math.random().toString(36).slice(2, 6)}`;
  // Socket i is member i / topics of topic i % topics; members alternate instances (if several).
  const sockets = await subscribers((i) => urls[Math.floor(i / topics) % urls.length], topics * size, (i) => `${prefix}-${i % topics}`);
  // Publisher of topic t: socket t, its first member (on the first instance).
  const publishers = Array.from({ length: topics }, (_, t) => ({ ws: sockets[t], topic: `${prefix}-${t}` }));
  await settled(publishers, size);
  let delivered = 0;
  let counting = false;
  let running = true;
  const body = (topic) => JSON.stringify({ type: 'publish', topic, data: { type: 'signal', signal: PAYLOAD } });
  for (const ws of sockets) ws.on('message', () => counting && delivered++);
  for (const { ws, topic } of publishers) {
    const msg = body(topic);
    ws.on('message', () => running && ws.send(msg));
    for (let w = 0; w < P.window; w++) ws.send(msg);
  }
  await sleep(P.warmupMs);
  counting = true;
  const t0 = performance.now();
  await sleep(P.measureMs);
  const seconds = (performance.now() - t0) / 1000;
  counting = false;
  running = false;
  const rate = delivered / seconds;
  for (const ws of sockets) ws.terminate();
  await sleep(300);
  return rate;
}

/** Latency in topics of 8 at low load: one publish at a time, publish → arrival at another subscriber. */
async function latency(url) {
  const prefix = `lat-${Math.random().toString(36).slice(2, 6)}`;
  const sockets = await subscribers(() => url, 8, () => prefix);
  await settled([{ ws: sockets[0], topic: prefix }], 8);
  const samples = [];
  const msg = JSON.stringify({ type: 'publish', topic: prefix, data: { signal: PAYLOAD } });
  for (let i = 0; i < P.latencyMsgs; i++) {
    const t0 = performance.now();
    const arrived = new Promise((r) => sockets[7].once('message', r));
    sockets[0].send(msg);
    await arrived;
    samples.push(performance.now() - t0);
  }
  for (const ws of sockets) ws.terminate();
  samples.sort((a, b) => a - b);
  return { p50: samples[Math.floor(samples.length * 0.5)], p99: samples[Math.floor(samples.length * 0.99)] };
}

/** RSS and heap growth per idle subscribed connection (topics of 8). */
async function memoryPerConnection(server) {
  const before = await memory(server.proc.pid);
  const prefix = `mem-${Math.random().toString(36).slice(2, 6)}`;
  const sockets = await subscribers(() => server.url, P.idleConns, (i) => `${prefix}-${Math.floor(i / 8)}`);
  await sleep(500);
  const after = await memory(server.proc.pid);
  for (const ws of sockets) ws.terminate();
  await sleep(500);
  return { rss: (after.rss - before.rss) / P.idleConns, heap: (after.heapUsed - before.heapUsed) / P.idleConns };
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

async function run() {
  if (spawnSync('npx', ['tsc', '-p', 'tsconfig.json'], { cwd: ROOT, stdio: 'inherit' }).status !== 0) throw new Error('build failed');
  const results = { mode: MODE, taskset: TASKSET, reference: {}, herald: {} };
  for (const name of ['reference', 'herald']) {
    const s = await (name === 'reference' ? startReference() : startHerald());
    const url = name === 'reference' ? `ws://127.0.0.1:${s.port}` : `ws://127.0.0.1:${s.port}/y-webrtc`;
    const server = { ...s, url };
    const r = (results[name] = { fanout: {} });
    r.memory = await memoryPerConnection(server);
    for (const size of [2, 8, 32]) {
      const reps = [];
      for (let i = 0; i < P.reps; i++) reps.push(await fanout([url], size, name));
      r.fanout[size] = median(reps);
      console.error(`${name} topics of ${size}: ${Math.round(r.fanout[size])} deliveries/s`);
    }
    r.latency = await latency(url);
    await stop(s.proc);
  }
  results.cross = await crossInstance();
  report(results);
}

/** Two Herald instances on one redis-server; topics of 8, subscribers alternating instances. */
async function crossInstance() {
  if (!spawnSync('redis-server', ['--version']).stdout?.length) return { unavailable: 'redis-server not found' };
  const port = await freePort();
  const redis = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--protected-mode', 'no'], { stdio: 'ignore' });
  children.add(redis);
  await sleep(500);
  const env = { REDIS_URL: `redis://127.0.0.1:${port}` };
  const [a, b] = await Promise.all([startHerald(env), startHerald(env)]);
  const urls = [a, b].map((s) => `ws://127.0.0.1:${s.port}/y-webrtc`);
  const reps = [];
  for (let i = 0; i < P.reps; i++) reps.push(await fanout(urls, 8, 'cross'));
  await Promise.all([stop(a.proc), stop(b.proc), stop(redis)]);
  return { fanout8: median(reps) };
}

function report(r) {
  const f = (x) => (x >= 100 ? Math.round(x).toLocaleString('en-US') : x.toFixed(2));
  const ratio = (h, ref) => `${(h / ref).toFixed(2)}×`;
  const lines = [
    `y-webrtc signaling, mode ${r.mode}${r.taskset ? ', servers pinned to core 0' : ''}: Herald /y-webrtc vs y-webrtc's bin/server.js, same run, same generator`,
    '',
    '| measure | reference | Herald | Herald / reference | goal |',
    '|---|---|---|---|---|',
  ];
  for (const size of [2, 8, 32]) {
    lines.push(`| fan-out, topics of ${size} (deliveries/s) | ${f(r.reference.fanout[size])} | ${f(r.herald.fanout[size])} | ${ratio(r.herald.fanout[size], r.reference.fanout[size])} | ≥ 1.5× |`);
  }
  lines.push(`| latency p50, topic of 8 (ms) | ${f(r.reference.latency.p50)} | ${f(r.herald.latency.p50)} | ${ratio(r.herald.latency.p50, r.reference.latency.p50)} | |`);
  lines.push(`| latency p99, topic of 8 (ms) | ${f(r.reference.latency.p99)} | ${f(r.herald.latency.p99)} | ${ratio(r.herald.latency.p99, r.reference.latency.p99)} | |`);
  lines.push(`| RSS per idle subscribed connection (bytes) | ${f(r.reference.memory.rss)} | ${f(r.herald.memory.rss)} | ${ratio(r.herald.memory.rss, r.reference.memory.rss)} | ≤ 1.0× |`);
  lines.push(`| heap per idle subscribed connection (bytes) | ${f(r.reference.memory.heap)} | ${f(r.herald.memory.heap)} | ${ratio(r.herald.memory.heap, r.reference.memory.heap)} | |`);
  if (r.cross.fanout8) lines.push(`| cross-instance fan-out, topics of 8 on 2 instances + Redis (deliveries/s) | n/a | ${f(r.cross.fanout8)} | ${ratio(r.cross.fanout8, r.herald.fanout[8])} of one instance | |`);
  else lines.push(`| cross-instance | n/a | ${r.cross.unavailable} | | |`);
  const text = lines.join('\n');
  console.log(text);
  const out = opt('out');
  if (out) {
    mkdirSync(out, { recursive: true });
    writeFileSync(join(out, 'ywebrtc.json'), JSON.stringify(r, null, 2));
    writeFileSync(join(out, 'ywebrtc.md'), text + '\n');
  }
}

await run();
process.exit(0);
