#!/usr/bin/env node
// PeerJS protocol bench: Herald against the real PeerServer (the `peer` package) in one run.
//
//   node bench/peerjs.mjs [--mode=full|quick|smoke] [--out=<dir>]     (npm run bench runs it last)
//
// Each server runs as its own process pinned to core 0 (node --expose-gc --import probe.mjs, so
// RSS is read after a full GC); the load runs in a child of this file pinned to core 1, the same
// generator for both. Phases, per server:
//   - relay msg/s at 2.5 KB and 250 B: pairs of PeerJS clients, A sends CANDIDATEs to B by `dst`
//     with a window in flight per pair, B answers each one; every relayed message counts;
//   - memory per idle connection: RSS growth over N registered PeerJS sockets (10k in full);
//   - idle CPU: those N sockets each sending HEARTBEAT every 5 s (as the client does), server
//     CPU over a window of >= 30 s (full).
// Loopback only; every loop is bounded in count and time. Self-contained: nothing here is shared
// with bench/run.mjs but probe.mjs.
import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, cpus, loadavg, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath, pathToFileURL } from 'node:url';

const HERE = dirname(fileURLToPath(import.meta.url));
const ROOT = resolve(HERE, '..');
const PROBE = pathToFileURL(join(HERE, 'probe.mjs')).href;
const argv = process.argv.slice(2);
const opt = (name) => argv.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

const MODES = {
  full: { reps: 3, pairs: 200, window: 8, warmupMs: 1500, measureMs: 4000, idleConns: 10000, heartbeatMs: 5000, idleSettleMs: 2000, idleMeasureMs: 30000 },
  quick: { reps: 1, pairs: 200, window: 8, warmupMs: 400, measureMs: 1000, idleConns: 1000, heartbeatMs: 5000, idleSettleMs: 500, idleMeasureMs: 5000 },
  smoke: { reps: 1, pairs: 4, window: 4, warmupMs: 100, measureMs: 300, idleConns: 50, heartbeatMs: 5000, idleSettleMs: 100, idleMeasureMs: 500 },
};

if (argv.includes('--serve-peer')) await servePeer();
else if (opt('load')) await load(JSON.parse(opt('load')));
else await run();

// ---------- the reference server, as its own process ----------

async function servePeer() {
  const { PeerServer } = await import('peer');
  const app = PeerServer({ port: 0, host: '127.0.0.1', path: '/', concurrent_limit: 1e9 }, (server) => {
    console.log(`peer listening on http://127.0.0.1:${server.address().port}`);
  });
  app.on('error', () => undefined); // unparseable messages are re-emitted as errors
}

// ---------- the runner ----------

async function run() {
  const MODE = opt('mode') ?? 'full';
  const P = MODES[MODE];
  if (!P) throw new Error(`unknown mode ${MODE}`);
  const ncpu = typeof availableParallelism === 'function' ? availableParallelism() : cpus().length;
  const taskset = ncpu >= 2 && spawnSync('taskset', ['-c', '0', 'true']).status === 0;
  const pinned = (core, cmd, args) => (taskset ? ['taskset', ['-c', core, cmd, ...args]] : [cmd, args]);
  const children = new Set();
  process.on('exit', () => children.forEach((c) => c.kill('SIGKILL')));
  const say = (...a) => console.error('[bench peerjs]', ...a);
  const started = Date.now();

  function startServer(target) {
    const args = target === 'peer'
      ? ['--expose-gc', '--import', PROBE, join(HERE, 'peerjs.mjs'), '--serve-peer']
      : ['--expose-gc', '--import', PROBE, join(ROOT, 'dist', 'cli.js'), 'serve', '--port', '0', '--host', '127.0.0.1'];
    const env = { ...process.env };
    for (const k of Object.keys(env)) if (k.startsWith('HERALD_') || k === 'REDIS_URL') delete env[k];
    Object.assign(env, { LOG_LEVEL: 'warn', HERALD_RATE_BURST: '1000000000', HERALD_RATE_PER_SECOND: '1000000000', HERALD_DRAIN_GRACE_MS: '0' });
    const [c, a] = pinned('0', process.execPath, args);
    const proc = spawn(c, a, { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
    children.add(proc);
    let out = '';
    return new Promise((res, rej) => {
      const t = setTimeout(() => rej(new Error(`${target} did not start: ${out.slice(-300)}`)), 30_000);
      const onData = (d) => {
        out += d;
        const m = /listening on http:\/\/127\.0\.0\.1:(\d+)/.exec(out);
        if (m) {
          clearTimeout(t);
          res({ proc, port: Number(m[1]) });
        }
      };
      proc.stdout.on('data', onData);
      proc.stderr.on('data', onData);
      proc.once('exit', (code) => rej(new Error(`${target} exited ${code}: ${out.slice(-300)}`)));
    });
  }

  async function stopServer({ proc }) {
    if (proc.exitCode !== null) return;
    const exited = new Promise((r) => proc.once('exit', r));
    proc.kill('SIGTERM');
    const t = setTimeout(() => proc.kill('SIGKILL'), 8000);
    await exited;
    clearTimeout(t);
    children.delete(proc);
  }

  function runLoad(spec) {
    const [c, a] = pinned('1', process.execPath, [join(HERE, 'peerjs.mjs'), `--load=${JSON.stringify(spec)}`]);
    const proc = spawn(c, a, { cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'] });
    children.add(proc);
    let out = '';
    proc.stdout.on('data', (d) => (out += d));
    return new Promise((res) => {
      const t = setTimeout(() => proc.kill('SIGKILL'), 300_000);
      proc.once('exit', (code) => {
        clearTimeout(t);
        children.delete(proc);
        const results = out.split('\n').filter((l) => l.startsWith('RESULT ')).map((l) => JSON.parse(l.slice(7)));
        if (code !== 0) results.push({ kind: 'load', error: `load exited ${code}` });
        res(results);
      });
    });
  }

  // Idle first: its memory baseline is the freshly started server.
  // Both servers run side by side (the one not under load idles). The idle phase comes first,
  // so its memory baseline is a fresh server; the relay phases then alternate between the two,
  // in turn, `reps` times, and each reports its median, so a noisy moment on a shared machine
  // hits both rather than one.
  const servers = {};
  for (const target of ['peer', 'herald']) servers[target] = await startServer(target);
  const load1 = async (target, sc) => {
    const [r] = await runLoad({ target, url: `ws://127.0.0.1:${servers[target].port}`, pid: servers[target].proc.pid, scenarios: [sc] });
    return r;
  };
  const results = { peer: [], herald: [] };
  if (P.idleConns > 0) {
    for (const target of ['peer', 'herald']) {
      say(`${target}: idle`);
      results[target].push(await load1(target, { kind: 'idle', label: 'idle', conns: P.idleConns, ...P }));
    }
  }
  for (let rep = 0; rep < P.reps; rep++) {
    for (const size of [2500, 250]) {
      for (const target of rep % 2 === 0 ? ['peer', 'herald'] : ['herald', 'peer']) {
        say(`${target}: relay ${size} B, run ${rep + 1}/${P.reps}`);
        results[target].push(await load1(target, { kind: 'throughput', label: `thr${size}`, size, ...P }));
      }
    }
  }
  for (const target of ['peer', 'herald']) await stopServer(servers[target]);

  const median = (xs) => {
    const v = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
    return v.length ? v[Math.floor(v.length / 2)] : undefined;
  };
  const get = (t, label) => {
    const runs = results[t].filter((r) => r.label === label && !r.error);
    if (runs.length === 0) return undefined;
    return Object.fromEntries(['msgPerSec', 'srvUsPerMsg', 'rssKbPerConn', 'heapKbPerConn', 'srvCpuPct'].map((k) => [k, median(runs.map((r) => r[k]))]));
  };
  const rows = [
    ['PeerJS relay 2.5 KB, msg/s', (t) => get(t, 'thr2500')?.msgPerSec, 'higher', '≥ 1.5×'],
    ['PeerJS relay 250 B, msg/s', (t) => get(t, 'thr250')?.msgPerSec, 'higher', '≥ 1.5×'],
    ['PeerJS relay 2.5 KB, server µs per msg', (t) => get(t, 'thr2500')?.srvUsPerMsg, 'lower', '(CPU cost)'],
    ['PeerJS relay 250 B, server µs per msg', (t) => get(t, 'thr250')?.srvUsPerMsg, 'lower', '(CPU cost)'],
    [`PeerJS memory per idle conn (${P.idleConns}), KB`, (t) => get(t, 'idle')?.rssKbPerConn, 'lower', '≤ 1×'],
    [`PeerJS JS heap per idle conn (${P.idleConns}), KB`, (t) => get(t, 'idle')?.heapKbPerConn, 'lower', '(live objects)'],
    [`PeerJS idle CPU (${P.idleConns}, HEARTBEAT every ${P.heartbeatMs / 1000} s, ${P.idleMeasureMs / 1000} s), % of a core`, (t) => get(t, 'idle')?.srvCpuPct, 'lower', '≤ 1×'],
  ];
  const fmt = (v) => (v === undefined || Number.isNaN(v) ? 'n/a' : v >= 100 ? Math.round(v).toLocaleString('en-US') : v.toFixed(2));
  const lines = ['| benchmark | peer | herald | herald/peer | goal |', '|---|---|---|---|---|'];
  const ratios = {};
  for (const [name, pick, , goal] of rows) {
    const [p, h] = [pick('peer'), pick('herald')];
    const ratio = p && h !== undefined ? h / p : NaN;
    ratios[name] = ratio;
    lines.push(`| ${name} | ${fmt(p)} | ${fmt(h)} | ${Number.isNaN(ratio) ? 'n/a' : `${ratio.toFixed(2)}×`} | ${goal} |`);
  }
  const table = lines.join('\n');
  const errors = Object.entries(results).flatMap(([t, rs]) => rs.filter((r) => r.error).map((r) => `${t} ${r.label ?? r.kind}: ${r.error}`));
  const saved = { meta: { mode: MODE, date: new Date().toISOString(), node: process.version, cpus: ncpu, pinned: taskset, loadavgEnd: loadavg(), durationSec: (Date.now() - started) / 1000 }, results, ratios, table };
  const outDir = join(opt('out') ?? join(HERE, 'results'), 'peerjs');
  mkdirSync(outDir, { recursive: true });
  const file = join(outDir, `peerjs-${saved.meta.date.replace(/[:.]/g, '-')}.json`);
  writeFileSync(file, JSON.stringify(saved, null, 2));
  console.log(`\nPeerJS protocol (${MODE}): Herald against PeerServer (peer 1.0.x), same run, same generator, ${taskset ? 'servers on core 0, generator on core 1' : 'unpinned'}; relay: median of ${P.reps} alternating runs; load average at end ${loadavg().map((x) => x.toFixed(2)).join(' ')}\n`);
  console.log(table);
  if (errors.length) console.log(`\npeerjs failures:\n${errors.map((e) => `- ${e}`).join('\n')}`);
  console.log(`\npeerjs results: ${file.startsWith(ROOT) ? file.slice(ROOT.length + 1) : file}`);
}

// ---------- the load generator (child process) ----------

async function load(spec) {
  const { default: WebSocket } = await import('ws');
  const host = new URL(spec.url).hostname;
  if (!/^127\.\d+\.\d+\.\d+$/.test(host)) throw new Error(`not loopback: ${spec.url}`);
  const log = (...a) => process.stderr.write(`[load peerjs ${spec.target}] ${a.join(' ')}\n`);

  const cpuUs = () => {
    try {
      const f = readFileSync(`/proc/${spec.pid}/stat`, 'utf8');
      const x = f.slice(f.lastIndexOf(')') + 2).split(' ');
      return ((Number(x[11]) + Number(x[12])) * 1e6) / 100;
    } catch {
      return NaN;
    }
  };
  const rssKb = () => {
    try {
      return Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${spec.pid}/status`, 'utf8'))[1]);
    } catch {
      return NaN;
    }
  };
  const gc = async () => {
    try {
      process.kill(spec.pid, 'SIGUSR2'); // bench/probe.mjs: global.gc(), then memoryUsage() to a file
    } catch {}
    await sleep(500);
  };
  /** The server's live JS heap after the last gc(), in KB (bench/probe.mjs writes it). */
  const heapUsedKb = () => {
    try {
      return JSON.parse(readFileSync(join(tmpdir(), `herald-probe-${spec.pid}.json`), 'utf8')).heapUsed / 1024;
    } catch {
      return NaN;
    }
  };

  let seq = 0;
  const run = `${process.pid}x${Date.now().toString(36)}`;
  /** Opens a PeerJS socket for a fresh id and resolves once the server said OPEN. */
  function connect() {
    const id = `b${run}n${++seq}`;
    const ws = new WebSocket(`${spec.url}/peerjs?key=peerjs&id=${id}&token=t${seq}&version=1.5.5`, {
      perMessageDeflate: false,
      skipUTF8Validation: true,
      localAddress: `127.0.0.${2 + (seq % 8)}`, // 10k sockets never run out of ephemeral ports
    });
    return new Promise((res, rej) => {
      const t = setTimeout(() => rej(new Error('OPEN timeout')), 20_000);
      ws.once('message', (d) => {
        clearTimeout(t);
        if (String(d) !== '{"type":"OPEN"}') return rej(new Error(`expected OPEN, got ${String(d).slice(0, 100)}`));
        res({ id, ws });
      });
      ws.once('error', (e) => {
        clearTimeout(t);
        rej(e);
      });
    });
  }
  /** Sends a frame; what one tick sends to a socket leaves in one write (as bench/load.mjs does). */
  const corked = [];
  const uncorkAll = () => {
    for (const sock of corked) sock.uncork();
    corked.length = 0;
  };
  function send(ws, text) {
    const sock = ws._socket;
    if (sock && !sock.writableCorked) {
      if (corked.length === 0) process.nextTick(uncorkAll);
      sock.cork();
      corked.push(sock);
    }
    ws.send(text);
  }
  async function connectMany(n) {
    const out = [];
    for (let i = 0; i < n; i += 250) out.push(...(await Promise.all(Array.from({ length: Math.min(250, n - i) }, connect))));
    return out;
  }
  const closeAll = async (socks) => {
    for (const s of socks) s.ws.terminate();
    await sleep(500);
  };
  /** A CANDIDATE for `dst` whose frame is exactly `size` bytes. */
  function frame(dst, size) {
    const head = `{"type":"CANDIDATE","dst":"${dst}","payload":{"type":"data","connectionId":"dc_bench","candidate":{"candidate":"`;
    const tail = '","sdpMid":"0","sdpMLineIndex":0}}}';
    return head + 'x'.repeat(Math.max(0, size - head.length - tail.length)) + tail;
  }

  async function throughput(sc) {
    const a = await connectMany(sc.pairs);
    const b = await connectMany(sc.pairs);
    let received = 0;
    let running = true;
    const inflight = new Array(sc.pairs).fill(0);
    for (let i = 0; i < sc.pairs; i++) {
      const toB = frame(b[i].id, sc.size);
      const toA = frame(a[i].id, sc.size);
      b[i].ws.on('message', () => {
        received++;
        send(b[i].ws, toA);
      });
      a[i].ws.on('message', () => {
        received++;
        inflight[i]--;
        if (running) {
          inflight[i]++;
          send(a[i].ws, toB);
        }
      });
      for (let k = 0; k < sc.window; k++) {
        inflight[i]++;
        send(a[i].ws, toB);
      }
    }
    await sleep(sc.warmupMs);
    const [r0, c0, t0] = [received, cpuUs(), performance.now()];
    await sleep(sc.measureMs);
    const [r1, c1, t1] = [received, cpuUs(), performance.now()];
    running = false;
    const deadline = performance.now() + 3000;
    while (inflight.some((x) => x > 0) && performance.now() < deadline) await sleep(20);
    await closeAll([...a, ...b]);
    const wallMs = t1 - t0;
    return { kind: 'throughput', label: sc.label, size: sc.size, pairs: sc.pairs, window: sc.window, relayed: r1 - r0, msgPerSec: ((r1 - r0) * 1000) / wallMs, srvCpuPct: (100 * (c1 - c0)) / (wallMs * 1000), srvUsPerMsg: (c1 - c0) / (r1 - r0), lost: inflight.reduce((x, y) => x + Math.max(0, y), 0) };
  }

  async function idle(sc) {
    await gc();
    const [rss0, heap0] = [rssKb(), heapUsedKb()];
    const socks = await connectMany(sc.conns);
    let closed = 0;
    for (const s of socks) s.ws.once('close', () => closed++);
    // Every socket sends HEARTBEAT every heartbeatMs, spread evenly over the interval.
    const TICK = 100;
    const perTick = Math.ceil(socks.length / (sc.heartbeatMs / TICK));
    let next = 0;
    const beat = setInterval(() => {
      for (let k = 0; k < perTick; k++) {
        const s = socks[next++ % socks.length];
        if (s.ws.readyState === 1) s.ws.send('{"type":"HEARTBEAT"}');
      }
    }, TICK);
    await sleep(sc.idleSettleMs);
    await gc();
    const [rss1, heap1] = [rssKb(), heapUsedKb()];
    rmSync(join(tmpdir(), `herald-probe-${spec.pid}.json`), { force: true });
    const [c0, t0] = [cpuUs(), performance.now()];
    await sleep(sc.idleMeasureMs);
    const [c1, t1] = [cpuUs(), performance.now()];
    clearInterval(beat);
    const droppedMeanwhile = closed;
    await closeAll(socks);
    return { kind: 'idle', label: sc.label, conns: socks.length, rssKbBefore: rss0, rssKbAfter: rss1, rssKbPerConn: (rss1 - rss0) / socks.length, heapKbPerConn: (heap1 - heap0) / socks.length, srvCpuPct: (100 * (c1 - c0)) / ((t1 - t0) * 1000), measuredMs: t1 - t0, droppedMeanwhile };
  }

  for (const sc of spec.scenarios) {
    let result;
    const t = performance.now();
    try {
      result = sc.kind === 'throughput' ? await throughput(sc) : await idle(sc);
    } catch (err) {
      result = { kind: sc.kind, label: sc.label, error: String(err?.message ?? err) };
    }
    log(`${sc.label} done in ${((performance.now() - t) / 1000).toFixed(1)} s`);
    process.stdout.write(`RESULT ${JSON.stringify(result)}\n`);
  }
  process.exit(0);
}
