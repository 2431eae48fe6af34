#!/usr/bin/env node
// `npm run bench [-- --quick|--smoke] [--profile] [--no-redis] [--only=main,idle,redis,profile]`
//
// Starts the baseline relay (bench/baseline-relay.mjs) and Herald (dist/cli.js serve), each as
// its own process pinned to core 0, and drives them with bench/load.mjs pinned to core 1: the
// same load, the same run. Prints a table with Herald/baseline ratios and writes
// bench/results/<timestamp>.json. See docs/performance.md for the method.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { availableParallelism, cpus, loadavg } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { summarizeProfile } from './profile-summary.mjs';

const HERE = dirname(fileURLToPath(import.meta.url));
const ROOT = resolve(HERE, '..');
const RESULTS = join(HERE, 'results');
const PROBE = pathToFileURL(join(HERE, 'probe.mjs')).href;

const argv = process.argv.slice(2);
const flag = (name) => argv.includes(`--${name}`);
const opt = (name) => argv.find((a) => a.startsWith(`--${name}=`))?.split('=')[1];
const MODE = flag('smoke') ? 'smoke' : flag('quick') ? 'quick' : 'full';

/** Parameters per mode. `full` is the issue's load; `quick` is the same shape, shorter. */
const P = {
  full: { reps: 2, pairs: 200, window: 8, warmupMs: 1500, measureMs: 4000, rttRate: 5000, rttPairs: 200, rttWarmupMs: 1000, rttMeasureMs: 5000, stormViewers: 2000, stormReps: 2, idleConns: 10000, idleSettleMs: 1000, idleMeasureMs: 15000, idleThrMeasureMs: 4000, quietWaitMs: 2000, redis: true, profile: false },
  quick: { reps: 1, pairs: 200, window: 8, warmupMs: 400, measureMs: 1000, rttRate: 5000, rttPairs: 200, rttWarmupMs: 300, rttMeasureMs: 1000, stormViewers: 1000, stormReps: 1, idleConns: 1000, idleSettleMs: 200, idleMeasureMs: 1000, idleThrMeasureMs: 1000, quietWaitMs: 0, redis: true, redisQuick: true, profile: false },
  smoke: { reps: 1, pairs: 4, window: 4, warmupMs: 100, measureMs: 300, rttRate: 200, rttPairs: 4, rttWarmupMs: 100, rttMeasureMs: 300, stormViewers: 20, stormReps: 1, idleConns: 0, quietWaitMs: 0, redis: false, profile: false },
}[MODE];
if (flag('no-redis')) P.redis = false;
if (flag('profile')) P.profile = true;
const ONLY = opt('only')?.split(',');
const want = (group) => (ONLY ? ONLY.includes(group) : group !== 'profile' || P.profile);

const TARGETS = ['baseline', 'seed', 'json'];
const NCPU = typeof availableParallelism === 'function' ? availableParallelism() : cpus().length;
const TASKSET = NCPU >= 2 && spawnSync('taskset', ['-c', '0', 'true']).status === 0;
const SERVER_CORE = '0';
const LOAD_CORE = '1';

const children = new Set();
function cleanup() {
  for (const c of children) {
    try {
      c.kill('SIGKILL');
    } catch {}
  }
}
process.on('exit', cleanup);
for (const sig of ['SIGINT', 'SIGTERM']) {
  process.on(sig, () => {
    cleanup();
    process.exit(130);
  });
}
const startedAt = Date.now();
const HARD_LIMIT_MS = MODE === 'full' ? 15 * 60_000 : 3 * 60_000;
/** What has been measured so far (written out even if the run is cut short). */
let partial;
setTimeout(() => {
  console.error(`bench: hard time limit (${HARD_LIMIT_MS / 60000} min) reached; aborting`);
  if (partial) {
    try {
      mkdirSync(RESULTS, { recursive: true });
      writeFileSync(join(RESULTS, `partial-${Date.now()}.json`), JSON.stringify(partial, null, 2));
    } catch {}
  }
  process.exit(2);
}, HARD_LIMIT_MS).unref();

const say = (...a) => console.error(`[bench +${((Date.now() - startedAt) / 1000).toFixed(1)}s]`, ...a);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function pinned(core, cmd, args) {
  return TASKSET ? ['taskset', ['-c', core, cmd, ...args]] : [cmd, args];
}

function freePort() {
  return new Promise((res, rej) => {
    const s = createServer();
    s.once('error', rej);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => res(port));
    });
  });
}

/** Spawns a pinned process and resolves once a stdout/stderr line matches `ready`. */
function startProcess(name, cmd, args, env, ready, core = SERVER_CORE, timeoutMs = 30_000) {
  const [c, a] = pinned(core, cmd, args);
  const proc = spawn(c, a, { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
  children.add(proc);
  let out = '';
  return new Promise((res, rej) => {
    const timer = setTimeout(() => fail(new Error(`${name} did not start in ${timeoutMs} ms: ${out.slice(-500)}`)), timeoutMs);
    const fail = (err) => {
      clearTimeout(timer);
      stop(proc);
      rej(err);
    };
    const onData = (d) => {
      out += d;
      const m = ready.exec(out);
      if (m) {
        clearTimeout(timer);
        proc.stdout.removeAllListeners('data');
        proc.stdout.resume();
        res({ proc, pid: proc.pid, match: m, output: () => out });
      }
    };
    proc.stdout.on('data', onData);
    proc.stderr.on('data', (d) => {
      out += d;
      if (out.length > 20000) out = out.slice(-10000);
      onData('');
    });
    proc.once('exit', (code, sig) => fail(new Error(`${name} exited (${code ?? sig}) at start: ${out.slice(-500)}`)));
  });
}

async function stop(proc, ms = 8000) {
  if (proc.exitCode !== null || proc.signalCode !== null) return children.delete(proc);
  const exited = new Promise((r) => proc.once('exit', r));
  proc.kill('SIGTERM');
  const t = setTimeout(() => proc.kill('SIGKILL'), ms);
  await exited;
  clearTimeout(t);
  children.delete(proc);
}

function heraldEnv(extra = {}) {
  const env = { ...process.env };
  for (const k of Object.keys(env)) if (k.startsWith('HERALD_') || k === 'REDIS_URL' || k === 'TURN_SECRET') delete env[k];
  return {
    ...env,
    HOST: '127.0.0.1',
    PORT: '0',
    LOG_LEVEL: 'warn',
    HERALD_RATE_BURST: '1000000000',
    HERALD_RATE_PER_SECOND: '1000000000',
    HERALD_JOIN_TIMEOUT_MS: '0',
    HERALD_MAX_CONNECTIONS_PER_IP: '0',
    HERALD_MAX_CONNECTIONS: '0',
    HERALD_DRAIN_GRACE_MS: '0',
    HERALD_DRAIN_DEADLINE_MS: '2000',
    ...extra,
  };
}

async function startServer(target, { redisUrl, nodeFlags = [] } = {}) {
  if (target === 'baseline') {
    const s = await startProcess('baseline', process.execPath, ['--expose-gc', '--import', PROBE, join(HERE, 'baseline-relay.mjs')], { ...process.env, HOST: '127.0.0.1', PORT: '0' }, /listening on http:\/\/127\.0\.0\.1:(\d+)/);
    return { ...s, url: `ws://127.0.0.1:${s.match[1]}` };
  }
  const env = heraldEnv(redisUrl ? { REDIS_URL: redisUrl } : {});
  const s = await startProcess('herald', process.execPath, ['--expose-gc', '--import', PROBE, ...nodeFlags, join(ROOT, 'dist', 'cli.js'), 'serve', '--port', '0', '--host', '127.0.0.1'], env, /herald listening on http:\/\/[^:]+:(\d+)/);
  return { ...s, url: `ws://127.0.0.1:${s.match[1]}` };
}

/** Runs bench/load.mjs (pinned to its own core) with `scenarios`; resolves to its results. */
function runLoad(target, urls, pids, scenarios, timeLimitMs = 240_000) {
  const spec = JSON.stringify({ target, urls, serverPids: pids, scenarios, timeLimitMs, quietWaitMs: P.quietWaitMs, quietPct: 50 });
  const [c, a] = pinned(LOAD_CORE, process.execPath, [join(HERE, 'load.mjs'), spec]);
  const proc = spawn(c, a, { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  children.add(proc);
  let out = '';
  let err = '';
  proc.stdout.on('data', (d) => (out += d));
  proc.stderr.on('data', (d) => {
    err += d;
    process.stderr.write(d);
  });
  return new Promise((res) => {
    const t = setTimeout(() => proc.kill('SIGKILL'), timeLimitMs + 15_000);
    proc.once('exit', (code) => {
      clearTimeout(t);
      children.delete(proc);
      const results = out
        .split('\n')
        .filter((l) => l.startsWith('RESULT '))
        .map((l) => JSON.parse(l.slice(7)));
      if (code !== 0) results.push({ kind: 'load', error: `load generator exited ${code}: ${err.slice(-300)}` });
      res(results);
    });
  });
}

// ---------- groups ----------

const thr = (size, extra = {}) => ({ kind: 'throughput', label: `thr${size}`, pairs: P.pairs, window: P.window, size, warmupMs: P.warmupMs, measureMs: P.measureMs, ...extra });
const rttSc = (extra = {}) => ({ kind: 'rtt', label: 'rtt', pairs: P.rttPairs, size: 250, rate: P.rttRate, warmupMs: P.rttWarmupMs, measureMs: P.rttMeasureMs, ...extra });

function mainScenarios() {
  const scenarios = [thr(2500), thr(250), rttSc()];
  for (let k = 0; k < P.stormReps; k++) scenarios.push({ kind: 'storm', label: 'storm', viewers: P.stormViewers, size: 2500 });
  return scenarios;
}
function idleScenarios() {
  return [
    { kind: 'idle', label: 'idle', conns: P.idleConns, settleMs: P.idleSettleMs, measureMs: P.idleMeasureMs },
    thr(250, { label: 'thr250idle', measureMs: P.idleThrMeasureMs }),
  ];
}

/**
 * Starts one server per target at once (they idle while another is measured: the start-up
 * cost is paid in parallel), then runs each chunk of scenarios against every target in turn
 * (baseline, seed, json, next chunk...), so that the targets are measured minutes apart at
 * most, not a whole session apart: on a shared machine the load from others drifts.
 */
async function session(name, chunks) {
  say(`${name}: starting servers`);
  const servers = await Promise.all(TARGETS.map((t) => startServer(t)));
  const out = Object.fromEntries(TARGETS.map((t) => [t, []]));
  try {
    for (const chunk of chunks) {
      for (const [i, target] of TARGETS.entries()) {
        say(`${name}: ${chunk.map((c) => c.label).join(', ')} on ${target}`);
        out[target].push(...(await runLoad(target, [servers[i].url], [servers[i].pid], chunk)));
      }
    }
  } finally {
    await Promise.all(servers.map((s) => stop(s.proc)));
  }
  return out;
}

/**
 * One session per repetition, one server per target. The first session starts with the idle
 * test on the fresh server (so RSS per connection is measured from a clean start), relays
 * 250 B while the idle connections are held, releases them, then runs the main benchmarks.
 */
async function groupMain() {
  const runs = Object.fromEntries(TARGETS.map((t) => [t, []]));
  const idle = {};
  const withIdle = P.idleConns > 0 && want('idle');
  for (let rep = 0; rep < P.reps; rep++) {
    const first = rep === 0 && withIdle;
    const chunks = [...(first ? [[...idleScenarios(), { kind: 'release', label: 'release' }]] : []), ...(want('main') ? mainScenarios().map((sc) => [sc]) : [])];
    const out = await session(`session ${rep + 1}/${P.reps}`, chunks);
    for (const t of TARGETS) {
      runs[t].push(out[t].filter((r) => !String(r.label).includes('idle') && r.kind !== 'release'));
      if (first) idle[t] = out[t].filter((r) => String(r.label).includes('idle'));
    }
    if (!want('main')) break;
  }
  return { runs, idle: withIdle ? idle : undefined };
}

async function groupRedis() {
  if (!spawnSync('redis-server', ['--version']).stdout?.length) return { unavailable: 'redis-server not found on PATH' };
  const port = await freePort();
  let redis;
  const servers = [];
  try {
    redis = await startProcess('redis-server', 'redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--protected-mode', 'no', '--loglevel', 'notice'], process.env, /Ready to accept connections|ready to accept/i, SERVER_CORE, 10_000).catch(async (e) => {
      throw new Error(`redis-server did not start: ${e.message}`);
    });
  } catch (e) {
    return { unavailable: e.message };
  }
  const redisUrl = `redis://127.0.0.1:${port}`;
  try {
    say('redis: starting 2 Herald instances');
    servers.push(...(await Promise.all([startServer('seed', { redisUrl }), startServer('seed', { redisUrl })])));
    const urls = servers.map((s) => s.url);
    const pids = [...servers.map((s) => s.pid), redis.pid];
    const results = await runLoad('seed', urls, pids, P.redisQuick
      ? [thr(250, { label: 'redisCross', split: true })]
      : [thr(250, { label: 'redisLocal' }), thr(250, { label: 'redisCross', split: true }), rttSc({ label: 'rttRedisLocal' }), rttSc({ label: 'rttRedisCross', split: true })]);
    const failed = results.find((r) => r.error);
    if (failed && results.every((r) => r.error)) return { unavailable: failed.error, results };
    return { results };
  } catch (e) {
    return { unavailable: e.message };
  } finally {
    for (const s of servers) await stop(s.proc);
    await stop(redis.proc);
  }
}

async function groupProfile() {
  const dir = join(RESULTS, 'profiles');
  mkdirSync(dir, { recursive: true });
  const out = {};
  for (const target of ['seed', 'json']) {
    say(`profile: ${target}`);
    const before = new Set(readdirSync(dir));
    const server = await startServer(target, { nodeFlags: ['--cpu-prof', `--cpu-prof-dir=${dir}`] });
    try {
      out[target] = { load: await runLoad(target, [server.url], [server.pid], [thr(250, { measureMs: 6000 }), thr(2500, { measureMs: 6000 })]) };
    } finally {
      await stop(server.proc);
    }
    const fresh = readdirSync(dir).filter((f) => f.endsWith('.cpuprofile') && !before.has(f));
    fresh.sort((x, y) => statSync(join(dir, y)).mtimeMs - statSync(join(dir, x)).mtimeMs);
    if (fresh[0]) {
      out[target].file = join('bench/results/profiles', fresh[0]);
      out[target].summary = summarizeProfile(join(dir, fresh[0]));
    } else out[target].error = 'no profile written';
  }
  return out;
}

// ---------- table ----------

const by = (list, label) => (list ?? []).filter((r) => r.label === label && !r.error);
const best = (list, label, key, lower = false) => {
  const rs = by(list, label).filter((r) => Number.isFinite(r[key]));
  if (!rs.length) return undefined;
  return rs.reduce((a, b) => ((lower ? b[key] < a[key] : b[key] > a[key]) ? b : a));
};
const flat = (runs) => (runs ?? []).flat();

function fmt(v, digits = 0) {
  if (v === undefined || v === null || !Number.isFinite(v)) return 'n/a';
  if (Math.abs(v) >= 1000 && digits === 0) return Math.round(v).toLocaleString('en-US');
  return v.toFixed(digits);
}

function buildTable(res) {
  const rows = [];
  const main = res.main ?? {};
  const idle = res.idle ?? {};
  const metric = (name, pick, digits, goal) => {
    const v = Object.fromEntries(TARGETS.map((t) => [t, pick(t)]));
    rows.push({ name, v, digits, goal });
  };
  const mainBest = (t, label, key, lower) => best(flat(main[t]), label, key, lower);
  metric('relay 2.5 KB, msg/s', (t) => mainBest(t, 'thr2500', 'msgPerSec')?.msgPerSec, 0, { dir: 'higher', ratio: 0.9 });
  metric('relay 250 B, msg/s', (t) => mainBest(t, 'thr250', 'msgPerSec')?.msgPerSec, 0, { dir: 'higher', ratio: 0.9 });
  metric('server CPU µs/msg, 2.5 KB', (t) => mainBest(t, 'thr2500', 'msgPerSec')?.srvUsPerMsg, 2, { dir: 'lower' });
  metric('server CPU µs/msg, 250 B', (t) => mainBest(t, 'thr250', 'msgPerSec')?.srvUsPerMsg, 2, { dir: 'lower' });
  // Capacity: messages per second of server CPU (1e6 / µs per msg), from each target's best
  // (lowest-cost) run. On a shared machine the server rarely gets a whole core; this is what
  // it would relay if it had one, and it does not depend on how much CPU others took.
  const cap = (t, label) => {
    const rs = by(flat(main[t]), label).filter((r) => r.srvUsPerMsg > 0);
    return rs.length ? 1e6 / Math.min(...rs.map((r) => r.srvUsPerMsg)) : undefined;
  };
  metric('relay capacity 2.5 KB, msg per server CPU-s', (t) => cap(t, 'thr2500'), 0, { dir: 'higher', ratio: 0.9 });
  metric('relay capacity 250 B, msg per server CPU-s', (t) => cap(t, 'thr250'), 0, { dir: 'higher', ratio: 0.9 });
  const rttBest = (t) => best(flat(main[t]), 'rtt', 'p99', true);
  metric(`RTT p50 ms @ ${P.rttRate} msg/s`, (t) => rttBest(t)?.p50, 3, { dir: 'lower' });
  metric(`RTT p99 ms @ ${P.rttRate} msg/s`, (t) => rttBest(t)?.p99, 3, { dir: 'lower', ratio: 1.2 });
  metric(`RTT p99.9 ms @ ${P.rttRate} msg/s`, (t) => rttBest(t)?.p999, 3, { dir: 'lower' });
  if (P.idleConns) {
    const idleR = (t) => by(idle[t], 'idle')[0];
    metric(`RSS KB per idle conn (${P.idleConns})`, (t) => idleR(t)?.kbPerConn, 2, { dir: 'lower', ratio: 1.15 });
    metric(`idle CPU % core (${P.idleConns} conns)`, (t) => idleR(t)?.idleCpuPct, 2, { dir: 'lower', abs: 1 });
    metric(`relay 250 B w/ ${P.idleConns} idle, msg/s`, (t) => by(idle[t], 'thr250idle')[0]?.msgPerSec, 0, { dir: 'higher', ratio: 0.9 });
    metric(`server CPU µs/msg, 250 B w/ idle`, (t) => by(idle[t], 'thr250idle')[0]?.srvUsPerMsg, 2, { dir: 'lower' });
    metric(`relay capacity 250 B w/ idle, msg per server CPU-s`, (t) => {
      const u = by(idle[t], 'thr250idle')[0]?.srvUsPerMsg;
      return u > 0 ? 1e6 / u : undefined;
    }, 0, { dir: 'higher', ratio: 0.9 });
  }
  metric(`join storm ${P.stormViewers} viewers, ms`, (t) => mainBest(t, 'storm', 'ms', true)?.ms, 0, { dir: 'lower', ratio: 1.2 });
  // The storm's wall time is bounded by the generator (its broadcaster answers every join):
  // the server CPU the storm cost is the server-side figure.
  metric(`join storm, server CPU ms`, (t) => {
    const rs = by(flat(main[t]), 'storm').filter((r) => Number.isFinite(r.ms));
    return rs.length ? Math.min(...rs.map((r) => (r.srvCpuPct * r.ms) / 100)) : undefined;
  }, 0, { dir: 'lower' });
  if (P.idleConns) {
    metric(`connect + join ${P.idleConns} idle, s`, (t) => by(idle[t], 'idle')[0]?.connectMs / 1000, 1, { dir: 'lower' });
  }

  const verdict = (row, t) => {
    const b = row.v.baseline;
    const h = row.v[t];
    if (!Number.isFinite(h)) return '';
    if (row.goal.abs !== undefined) return h < row.goal.abs ? ' ✓' : ' ✗';
    if (row.goal.ratio === undefined || !Number.isFinite(b) || b === 0) return '';
    const r = h / b;
    return (row.goal.dir === 'higher' ? r >= row.goal.ratio : r <= row.goal.ratio) ? ' ✓' : ' ✗';
  };
  const ratio = (row, t) => {
    const b = row.v.baseline;
    const h = row.v[t];
    if (!Number.isFinite(b) || !Number.isFinite(h) || b === 0) return 'n/a';
    return `${(h / b).toFixed(2)}×${verdict(row, t)}`;
  };
  const goalText = (g) => (g.abs !== undefined ? `< ${g.abs}% (abs)` : g.ratio === undefined ? '(info)' : `${g.dir === 'higher' ? '≥' : '≤'} ${g.ratio}×`);
  const lines = [];
  lines.push('| benchmark | baseline | Herald seed | seed/base | Herald JSON | json/base | target |');
  lines.push('|---|---:|---:|---:|---:|---:|---|');
  for (const row of rows) {
    lines.push(`| ${row.name} | ${fmt(row.v.baseline, row.digits)} | ${fmt(row.v.seed, row.digits)} | ${ratio(row, 'seed')} | ${fmt(row.v.json, row.digits)} | ${ratio(row, 'json')} | ${goalText(row.goal)} |`);
  }

  // CPU during each throughput measurement: is the server saturated, is the generator?
  const cpuLines = ['', '| CPU during measurement, % of one core: server / generator / everything else on the machine | baseline | Herald seed | seed/base srv | Herald JSON | json/base srv |', '|---|---:|---:|---:|---:|---:|'];
  const cpuRow = (name, pick) => {
    const v = Object.fromEntries(TARGETS.map((t) => [t, pick(t)]));
    const cell = (r) => (r ? `${fmt(r.srvCpuPct)} / ${fmt(r.genCpuPct)} / ${fmt(r.othersCpuPct)}` : 'n/a');
    const rr = (t) => (v[t] && v.baseline ? `${(v[t].srvCpuPct / v.baseline.srvCpuPct).toFixed(2)}×` : 'n/a');
    cpuLines.push(`| ${name} | ${cell(v.baseline)} | ${cell(v.seed)} | ${rr('seed')} | ${cell(v.json)} | ${rr('json')} |`);
  };
  cpuRow('relay 2.5 KB', (t) => mainBest(t, 'thr2500', 'msgPerSec'));
  cpuRow('relay 250 B', (t) => mainBest(t, 'thr250', 'msgPerSec'));
  cpuRow(`RTT @ ${P.rttRate} msg/s`, (t) => rttBest(t));
  if (P.idleConns) cpuRow(`relay 250 B w/ ${P.idleConns} idle`, (t) => by(idle[t], 'thr250idle')[0]);
  cpuRow('join storm', (t) => mainBest(t, 'storm', 'ms', true));
  lines.push(...cpuLines);

  // Cross-instance over Redis.
  if (res.redis) {
    lines.push('');
    if (res.redis.unavailable) {
      lines.push(`redis: unavailable (${res.redis.unavailable})`);
    } else {
      const r = res.redis.results ?? [];
      const single = mainBest('seed', 'thr250', 'msgPerSec');
      const singleRtt = rttBest('seed');
      const get = (label) => r.find((x) => x.label === label && !x.error);
      const local = get('redisLocal');
      const cross = get('redisCross');
      const rl = get('rttRedisLocal');
      const rc = get('rttRedisCross');
      const rat = (a, b, goal, dir) => {
        if (!Number.isFinite(a) || !Number.isFinite(b) || b === 0) return 'n/a';
        const x = a / b;
        const ok = goal === undefined ? '' : (dir === 'higher' ? x >= goal : x <= goal) ? ' ✓' : ' ✗';
        return `${x.toFixed(2)}×${ok}`;
      };
      lines.push('| cross-instance (seed, 250 B; 2 instances + redis on the server core) | single instance, in-memory | 1 instance + Redis | 2 instances, cross | cross/single | target |');
      lines.push('|---|---:|---:|---:|---:|---|');
      lines.push(`| relay, msg/s | ${fmt(single?.msgPerSec)} | ${fmt(local?.msgPerSec)} | ${fmt(cross?.msgPerSec)} | ${rat(cross?.msgPerSec, single?.msgPerSec, 0.5, 'higher')} | ≥ 0.5× |`);
      lines.push(`| server CPU µs/msg (all server processes) | ${fmt(single?.srvUsPerMsg, 2)} | ${fmt(local?.srvUsPerMsg, 2)} | ${fmt(cross?.srvUsPerMsg, 2)} | ${rat(cross?.srvUsPerMsg, single?.srvUsPerMsg)} | (info) |`);
      const capOf = (r) => (r?.srvUsPerMsg > 0 ? 1e6 / r.srvUsPerMsg : undefined);
      lines.push(`| relay capacity, msg per server CPU-s (all server processes) | ${fmt(capOf(single))} | ${fmt(capOf(local))} | ${fmt(capOf(cross))} | ${rat(capOf(cross), capOf(single), 0.5, 'higher')} | ≥ 0.5× |`);
      lines.push(`| RTT p99 ms @ ${P.rttRate} msg/s | ${fmt(singleRtt?.p99, 3)} | ${fmt(rl?.p99, 3)} | ${fmt(rc?.p99, 3)} | ${rat(rc?.p99, singleRtt?.p99)} | (info) |`);
      lines.push(`| RTT p50 ms @ ${P.rttRate} msg/s | ${fmt(singleRtt?.p50, 3)} | ${fmt(rl?.p50, 3)} | ${fmt(rc?.p50, 3)} | ${rat(rc?.p50, singleRtt?.p50)} | (info) |`);
      for (const x of r.filter((x) => x.error)) lines.push(`redis ${x.label}: error: ${x.error}`);
    }
  }
  return lines.join('\n');
}

// ---------- main ----------

async function main() {
  if (!existsSync(join(ROOT, 'dist', 'cli.js'))) {
    say('dist/cli.js missing: building Herald (tsc -p tsconfig.json)');
    const b = spawnSync('npx', ['tsc', '-p', 'tsconfig.json'], { cwd: ROOT, stdio: 'inherit' });
    if (b.status !== 0) throw new Error('build failed; run `npm run build` first');
  }
  mkdirSync(RESULTS, { recursive: true });
  const meta = {
    mode: MODE,
    date: new Date().toISOString(),
    node: process.version,
    cpus: NCPU,
    cpuModel: cpus()[0]?.model,
    pinned: TASKSET ? { server: SERVER_CORE, load: LOAD_CORE } : false,
    loadavgStart: loadavg(),
    params: P,
  };
  say(`mode ${MODE}; ${NCPU} cpus; ${TASKSET ? `server pinned to core ${SERVER_CORE}, generator to core ${LOAD_CORE}` : 'NOT pinned (taskset unavailable or 1 cpu)'}; load average ${loadavg().map((x) => x.toFixed(2)).join(' ')}`);
  const res = { meta };
  partial = res;
  if (want('main') || (P.idleConns && want('idle'))) {
    const { runs, idle } = await groupMain();
    if (want('main')) res.main = runs;
    if (idle) res.idle = idle;
  }
  if (P.redis && want('redis')) res.redis = await groupRedis();
  if (want('profile') && (P.profile || ONLY?.includes('profile'))) res.profile = await groupProfile();
  meta.loadavgEnd = loadavg();
  meta.durationSec = (Date.now() - startedAt) / 1000;
  const table = buildTable(res);
  res.table = table;
  const outDir = opt('out') ? resolve(opt('out')) : RESULTS;
  mkdirSync(outDir, { recursive: true });
  const file = join(outDir, `${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
  writeFileSync(file, JSON.stringify(res, null, 2));
  const errors = [];
  const scan = (x, where) => {
    if (Array.isArray(x)) x.forEach((y) => scan(y, where));
    else if (x && typeof x === 'object') {
      if (typeof x.error === 'string') errors.push(`${where}${x.label ? ` ${x.label}` : ''}: ${x.error}`);
      if (x.bad) errors.push(`${where} ${x.label}: ${x.bad} malformed messages`);
      if (x.lost) errors.push(`${where} ${x.label}: ${x.lost} messages still in flight 3 s after the load stopped (the server fell behind; on a shared machine, usually starved of CPU)`);
      for (const [k, v] of Object.entries(x)) if (typeof v === 'object') scan(v, `${where}/${k}`);
    }
  };
  scan({ main: res.main, idle: res.idle }, '');
  console.log(`\nHerald bench (${MODE}), ${meta.date}, node ${meta.node}, ${NCPU} cpus (${meta.cpuModel}), ${TASKSET ? `server on core ${SERVER_CORE}, generator on core ${LOAD_CORE}` : 'unpinned'}`);
  console.log(`load average at start ${meta.loadavgStart.map((x) => x.toFixed(2)).join(' ')}, at end ${meta.loadavgEnd.map((x) => x.toFixed(2)).join(' ')}; ${meta.durationSec.toFixed(0)} s\n`);
  if (res.main || res.idle || res.redis) console.log(table);
  if (res.profile) {
    for (const [t, p] of Object.entries(res.profile)) {
      console.log(`\nprofile (${t}, Herald under relay load; ${p.file ?? p.error}):`);
      if (p.summary) console.log(p.summary.text);
    }
  }
  if (errors.length) console.log(`\nproblems:\n${errors.map((e) => `- ${e}`).join('\n')}`);
  console.log(`\nresults: ${file.startsWith(ROOT) ? file.slice(ROOT.length + 1) : file}`);
}

/** `--table=<results.json>`: prints the table of a saved run again (with this version's rows). */
async function reprint(path) {
  const res = JSON.parse(readFileSync(resolve(path), 'utf8'));
  Object.assign(P, res.meta.params);
  const m = res.meta;
  console.log(`Herald bench (${m.mode}), ${m.date}, node ${m.node}, ${m.cpus} cpus, ${m.pinned ? `server on core ${m.pinned.server}, generator on core ${m.pinned.load}` : 'unpinned'}`);
  console.log(`load average at start ${m.loadavgStart.map((x) => x.toFixed(2)).join(' ')}, at end ${m.loadavgEnd.map((x) => x.toFixed(2)).join(' ')}; ${m.durationSec.toFixed(0)} s\n`);
  console.log(buildTable(res));
}

(opt('table') ? reprint(opt('table')) : main()).then(
  () => process.exit(0),
  (err) => {
    console.error('bench failed:', err);
    process.exit(1);
  },
);
