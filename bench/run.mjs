#!/usr/bin/env node
// `npm run bench [-- --quick|--smoke] [--profile] [--no-redis] [--only=main,idle,redis,profile,scale,peerjs,whep,ywebrtc] [--heartbeat-ms=N]`
//
// Starts the baseline relay (bench/baseline-relay.mjs) and Herald (dist/cli.js serve), each as
// its own process pinned to core 0, and drives them with bench/load.mjs pinned to core 1: the
// same load, the same run. Prints a table with Herald/baseline ratios and writes
// bench/results/<timestamp>.json. See docs/performance.md for the method.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { availableParallelism, cpus, loadavg } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { summarizeProfile } from './profile-summary.mjs';
import { freePort } from './free-port.mjs';

const HERE = dirname(fileURLToPath(import.meta.url));
const ROOT = resolve(HERE, '..');
const RESULTS = join(HERE, 'results');
const PROBE = pathToFileURL(join(HERE, 'probe.mjs')).href;

const argv = process.argv.slice(2);
const flag = (name) => argv.includes(`--${name}`);
/** `--name=value` or `--name value` (as `npm run bench -- --only scale` passes it). */
const opt = (name) => {
  const joined = argv.find((a) => a.startsWith(`--${name}=`));
  if (joined) return joined.slice(name.length + 3);
  const at = argv.indexOf(`--${name}`);
  return at >= 0 && argv[at + 1] && !argv[at + 1].startsWith('--') ? argv[at + 1] : undefined;
};
const MODE = flag('smoke') ? 'smoke' : flag('quick') ? 'quick' : 'full';

/** Parameters per mode. `full` is the issue's load; `quick` is the same shape, shorter. */
const P = {
  full: { reps: 2, pairs: 200, window: 8, warmupMs: 1500, measureMs: 4000, rttRate: 5000, rttPairs: 200, rttWarmupMs: 1000, rttMeasureMs: 5000, stormViewers: 2000, stormReps: 2, idleConns: 10000, idleSettleMs: 1000, heartbeatMs: 25000, idleThrMeasureMs: 4000, quietWaitMs: 2000, redis: true, profile: false, scaleConns: 100000, scaleBaseConns: 10000 },
  quick: { reps: 1, pairs: 200, window: 8, warmupMs: 400, measureMs: 1000, rttRate: 5000, rttPairs: 200, rttWarmupMs: 300, rttMeasureMs: 1000, stormViewers: 1000, stormReps: 1, idleConns: 1000, idleSettleMs: 200, heartbeatMs: 2000, idleThrMeasureMs: 1000, quietWaitMs: 0, redis: true, redisQuick: true, profile: false, scaleConns: 10000, scaleBaseConns: 1000 },
  smoke: { reps: 1, pairs: 4, window: 4, warmupMs: 100, measureMs: 300, rttRate: 200, rttPairs: 4, rttWarmupMs: 100, rttMeasureMs: 300, stormViewers: 20, stormReps: 1, idleConns: 0, heartbeatMs: 1000, quietWaitMs: 0, redis: false, profile: false, scaleConns: 0 },
}[MODE];
// Herald runs with this heartbeat (full: its default), and an idle window holds for two of its
// intervals plus a second: a window shorter than what it measures would miss the pings.
if (opt('heartbeat-ms')) P.heartbeatMs = Number(opt('heartbeat-ms'));
P.idleMeasureMs = 2 * P.heartbeatMs + 1000;
if (flag('no-redis')) P.redis = false;
if (flag('profile')) P.profile = true;
const ONLY = opt('only')?.split(',');
const want = (group) => (ONLY ? ONLY.includes(group) : group !== 'scale' && (group !== 'profile' || P.profile));

/** The minimal relay, the PeerJS server (`peer` package), and Herald on each protocol. */
const TARGETS = ['baseline', 'peerjs', 'seed', 'json'];
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
  console.error(`bench: hard time limit (${HARD_LIMIT_MS / 60000} min) reached; aborting with what was measured`);
  if (partial) {
    try {
      const outDir = opt('out') ? resolve(opt('out')) : RESULTS;
      mkdirSync(outDir, { recursive: true });
      const file = join(outDir, `partial-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
      partial.meta.loadavgEnd = loadavg();
      partial.meta.durationSec = (Date.now() - startedAt) / 1000;
      writeFileSync(file, JSON.stringify(partial, null, 2));
      console.log(`\nPARTIAL run (hard time limit), load average at end ${partial.meta.loadavgEnd.map((x) => x.toFixed(2)).join(' ')}\n`);
      console.log(buildTable(partial));
      console.log(`\nresults: ${file}`);
    } catch (e) {
      console.error('could not write partial results:', e);
    }
  }
  process.exit(2);
}, HARD_LIMIT_MS).unref();

const say = (...a) => console.error(`[bench +${((Date.now() - startedAt) / 1000).toFixed(1)}s]`, ...a);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function pinned(core, cmd, args) {
  return TASKSET ? ['taskset', ['-c', core, cmd, ...args]] : [cmd, args];
}


/** Spawns a pinned process and resolves once a stdout/stderr line matches `ready`. */
function startProcess(name, cmd, args, env, ready, core = SERVER_CORE, timeoutMs = 90_000) {
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
    HERALD_HEARTBEAT_MS: String(P.heartbeatMs),
    ...extra,
  };
}

async function startServer(target, { redisUrl, nodeFlags = [], wrap } = {}) {
  if (target === 'peerjs') {
    const s = await startProcess('peerjs', process.execPath, ['--expose-gc', '--import', PROBE, join(HERE, 'peer-server.mjs')], { ...process.env, HOST: '127.0.0.1', PORT: '0' }, /listening on http:\/\/127\.0\.0\.1:(\d+)/);
    return { ...s, url: `ws://127.0.0.1:${s.match[1]}` };
  }
  if (target === 'baseline') {
    const s = await startProcess('baseline', process.execPath, ['--expose-gc', '--import', PROBE, join(HERE, 'baseline-relay.mjs')], { ...process.env, HOST: '127.0.0.1', PORT: '0' }, /listening on http:\/\/127\.0\.0\.1:(\d+)/);
    return { ...s, url: `ws://127.0.0.1:${s.match[1]}` };
  }
  const env = heraldEnv(redisUrl ? { REDIS_URL: redisUrl } : {});
  const args = ['--expose-gc', '--import', PROBE, ...nodeFlags, join(ROOT, 'dist', 'cli.js'), 'serve', '--port', '0', '--host', '127.0.0.1'];
  const [cmd, cargs] = wrap ? wrap(process.execPath, args) : [process.execPath, args];
  const s = await startProcess('herald', cmd, cargs, env, /herald listening on http:\/\/[^:]+:(\d+)/);
  return { ...s, url: `ws://127.0.0.1:${s.match[1]}` };
}

/**
 * Starts bench/load.mjs (pinned to its own core) with `scenarios`. `done` resolves to its
 * results. With `lockstep`, it waits for `go()` before each scenario (and idle window) and
 * `waitFor(what)` resolves when it prints `WAIT <what>`.
 */
function startLoad(target, urls, pids, scenarios, { timeLimitMs = 240_000, lockstep = false, extra = {}, wrap } = {}) {
  const spec = JSON.stringify({ target, urls, serverPids: pids, scenarios, timeLimitMs, quietWaitMs: P.quietWaitMs, quietPct: 50, lockstep, ...extra });
  const [c0, a0] = pinned(LOAD_CORE, process.execPath, [...(extra.nodeFlags ?? []), join(HERE, 'load.mjs'), spec]);
  const [c, a] = wrap ? wrap(c0, a0) : [c0, a0];
  const proc = spawn(c, a, { cwd: ROOT, stdio: [lockstep ? 'pipe' : 'ignore', 'pipe', 'pipe'] });
  children.add(proc);
  let out = '';
  let err = '';
  const waits = [];
  const seen = [];
  let partialLine = '';
  proc.stdout.on('data', (d) => {
    out += d;
    const lines = (partialLine + d).split('\n');
    partialLine = lines.pop();
    for (const line of lines) if (line.startsWith('WAIT ')) seen.push(line.slice(5));
    for (const w of waits.splice(0)) w();
  });
  proc.stderr.on('data', (d) => {
    err += d;
    process.stderr.write(d);
  });
  let exited = false;
  const done = new Promise((res) => {
    const t = setTimeout(() => proc.kill('SIGKILL'), timeLimitMs + 15_000);
    proc.once('exit', (code) => {
      exited = true;
      for (const w of waits.splice(0)) w();
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
  return {
    done,
    go: () => !exited && proc.stdin?.write('GO\n'),
    /** Resolves once the generator has printed `WAIT <what>` (or exited). */
    async waitFor(what) {
      for (;;) {
        const i = seen.indexOf(what);
        if (i >= 0) return void seen.splice(i, 1);
        if (exited) return;
        await new Promise((r) => waits.push(r));
      }
    },
  };
}

function runLoad(target, urls, pids, scenarios, timeLimitMs = 240_000) {
  return startLoad(target, urls, pids, scenarios, { timeLimitMs }).done;
}

// ---------- groups ----------

const thr = (size, extra = {}) => ({ kind: 'throughput', label: `thr${size}`, pairs: P.pairs, window: P.window, size, warmupMs: P.warmupMs, measureMs: P.measureMs, ...extra });
const rttSc = (extra = {}) => ({ kind: 'rtt', label: 'rtt', pairs: P.rttPairs, size: 250, rate: P.rttRate, warmupMs: P.rttWarmupMs, measureMs: P.rttMeasureMs, ...extra });

function mainScenarios() {
  const scenarios = [thr(2500), thr(250), rttSc()];
  for (let k = 0; k < P.stormReps; k++) scenarios.push({ kind: 'storm', label: 'storm', viewers: P.stormViewers, size: 2500 });
  return scenarios;
}
/**
 * Starts one server per target at once (they idle while another is measured: the start-up
 * cost is paid in parallel), then runs each chunk of scenarios against every target in turn
 * (baseline, PeerServer, seed, json, next chunk...), so that the targets are measured minutes
 * apart at most, not a whole session apart: on a shared machine the load from others drifts.
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

/** One session per repetition, one server per target. */
async function groupMain() {
  const runs = Object.fromEntries(TARGETS.map((t) => [t, []]));
  for (let rep = 0; rep < P.reps; rep++) {
    let out;
    try {
      out = await session(`session ${rep + 1}/${P.reps}`, mainScenarios().map((sc) => [sc]));
    } catch (err) {
      if (rep === 0) throw err;
      say(`session ${rep + 1} failed (${err?.message ?? err}); keeping the sessions before it`);
      break;
    }
    for (const t of TARGETS) runs[t].push(out[t]);
  }
  return runs;
}

/**
 * Idle connections, on fresh servers (RSS per connection from a clean start). Each target's
 * generator connects in turn; then all four idle windows run at once, the same stretch of
 * time (two heartbeat intervals) for every target; then each relays 250 B in turn while its
 * idle connections are held.
 */
async function groupIdle() {
  say(`idle: starting servers; ${P.idleConns} connections each, window ${P.idleMeasureMs / 1000} s (2 heartbeat intervals + 1 s)`);
  const servers = await Promise.all(TARGETS.map((t) => startServer(t)));
  const scenarios = [
    { kind: 'idle', label: 'idle', conns: P.idleConns, settleMs: P.idleSettleMs, measureMs: P.idleMeasureMs, connectLimitMs: 240_000 },
    thr(250, { label: 'thr250idle', measureMs: P.idleThrMeasureMs }),
    { kind: 'release', label: 'release' },
  ];
  // The generators connect one after another, then wait: each may live for the whole group.
  const loads = TARGETS.map((t, i) => startLoad(t, [servers[i].url], [servers[i].pid], scenarios, { lockstep: true, timeLimitMs: 720_000 }));
  try {
    for (const [i, l] of loads.entries()) {
      say(`idle: connecting ${TARGETS[i]}`);
      await l.waitFor('idle');
      l.go();
      await l.waitFor('measure');
    }
    say('idle: all targets held; measuring idle CPU');
    for (const l of loads) l.go();
    for (const [i, l] of loads.entries()) {
      await l.waitFor('thr250idle');
      say(`idle: relay 250 B with idle held on ${TARGETS[i]}`);
      l.go();
      await l.waitFor('release');
    }
    for (const l of loads) l.go();
    const results = await Promise.all(loads.map((l) => l.done));
    return Object.fromEntries(TARGETS.map((t, i) => [t, results[i]]));
  } finally {
    await Promise.all(servers.map((s) => stop(s.proc)));
  }
}

/** Runs `cmd args` with its open-file limit raised to `n` (needs the privilege to raise it). */
const withFiles = (n) => (cmd, args) => ['prlimit', [`--nofile=${n}:${n}`, '--', cmd, ...args]];

/**
 * `--only scale`: one Herald (JSON protocol) holding 100,000 idle joined connections. It holds
 * 10,000 first and relays 250 B (the probe), then adds the other 90,000 and measures heartbeat
 * CPU over two intervals and the same probe again. Clients are spread over 16 source
 * addresses; both processes get a raised open-file limit.
 */
async function groupScale() {
  // Each connection is a file descriptor in the server and one in the generator. Without the
  // privilege to raise the hard limit (CAP_SYS_RESOURCE), the bench holds as many as the hard
  // limit allows and says so: it never reports a smaller run as the 100k one.
  let conns = P.scaleConns;
  let files = conns + 5000;
  let limited;
  const canRaise = (n) => spawnSync('prlimit', [`--nofile=${n}:${n}`, '--', 'true']).status === 0;
  if (!canRaise(files)) {
    const hard = Number(spawnSync('sh', ['-c', 'ulimit -Hn']).stdout.toString().trim());
    if (!(hard > 4000) || !canRaise(hard)) return { unavailable: `open-file limit ${hard} and prlimit cannot raise it (see docs/operations.md)` };
    files = hard;
    conns = Math.floor((hard - 2000) / 2) * 2;
    limited = `open-file hard limit is ${hard} and this process may not raise it (no CAP_SYS_RESOURCE): held ${conns}, not ${P.scaleConns}`;
    say(`scale: ${limited}`);
  }
  const baseConns = Math.min(P.scaleBaseConns, Math.round(conns / 20) * 2);
  const target = opt('scale-target') ?? 'json';
  say(`scale: ${conns} ${target} connections, probe at ${baseConns} and ${conns}`);
  const server = await startServer(target, { wrap: withFiles(files), nodeFlags: ['--max-old-space-size=8192'] });
  try {
    const more = conns - baseConns;
    const scenarios = [
      { kind: 'idle', label: 'scaleBase', conns: baseConns, settleMs: P.idleSettleMs, measureMs: 0, concurrency: 512, connectLimitMs: 60_000 },
      thr(250, { label: 'scaleThrBase', measureMs: P.idleThrMeasureMs }),
      { kind: 'idle', label: 'scaleAll', conns: more, settleMs: P.idleSettleMs, measureMs: P.idleMeasureMs, concurrency: 512, connectLimitMs: 240_000 },
      thr(250, { label: 'scaleThrAll', measureMs: P.idleThrMeasureMs }),
    ];
    const results = await startLoad(target, [server.url], [server.pid], scenarios, {
      timeLimitMs: 480_000,
      wrap: withFiles(files),
      extra: { sourceAddrs: 16, nodeFlags: ['--max-old-space-size=8192'] },
    }).done;
    return { target, results, conns, baseConns, limited };
  } finally {
    await stop(server.proc, 20_000);
  }
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
    // With --profile, both instances run under --cpu-prof: instance 1 holds the senders
    // (publisher side), instance 2 the readers (subscriber side) of the split pairs.
    const profDir = join(RESULTS, 'profiles');
    const nodeFlags = P.profile ? ['--cpu-prof', `--cpu-prof-dir=${profDir}`] : [];
    if (P.profile) mkdirSync(profDir, { recursive: true });
    const before = P.profile ? new Set(readdirSync(profDir)) : undefined;
    servers.push(...(await Promise.all([startServer('seed', { redisUrl, nodeFlags }), startServer('seed', { redisUrl, nodeFlags })])));
    const urls = servers.map((s) => s.url);
    const pids = [...servers.map((s) => s.pid), redis.pid];
    const results = await runLoad('seed', urls, pids, P.redisQuick
      ? [thr(250, { label: 'redisCross', split: true })]
      : [thr(250, { label: 'redisLocal' }), thr(250, { label: 'redisCross', split: true }), rttSc({ label: 'rttRedisLocal' }), rttSc({ label: 'rttRedisCross', split: true })]);
    const failed = results.find((r) => r.error);
    if (failed && results.every((r) => r.error)) return { unavailable: failed.error, results };
    if (!P.profile) return { results };
    for (const s of servers) await stop(s.proc);
    const profiles = {};
    for (const [i, s] of servers.entries()) {
      const f = readdirSync(profDir).find((x) => x.endsWith('.cpuprofile') && !before.has(x) && x.includes(`.${s.pid}.`));
      if (f) profiles[i === 0 ? 'instance 1 (senders: publish)' : 'instance 2 (readers: subscribe)'] = { file: join('bench/results/profiles', f), summary: summarizeProfile(join(profDir, f)) };
    }
    return { results, profiles };
  } catch (e) {
    return { unavailable: e.message };
  } finally {
    for (const s of servers) await stop(s.proc);
    await stop(redis.proc);
  }
}

/** A CPU profile of Herald per protocol and message size, each its own server process. */
async function groupProfile() {
  const dir = join(RESULTS, 'profiles');
  mkdirSync(dir, { recursive: true });
  const out = {};
  for (const target of ['seed', 'json']) {
    for (const size of [250, 2500]) {
      const key = `${target} ${size} B`;
      say(`profile: ${key}`);
      const before = new Set(readdirSync(dir));
      const server = await startServer(target, { nodeFlags: ['--cpu-prof', `--cpu-prof-dir=${dir}`] });
      try {
        out[key] = { load: await runLoad(target, [server.url], [server.pid], [thr(size, { measureMs: 6000 })]) };
      } finally {
        await stop(server.proc);
      }
      const fresh = readdirSync(dir).filter((f) => f.endsWith('.cpuprofile') && !before.has(f));
      fresh.sort((x, y) => statSync(join(dir, y)).mtimeMs - statSync(join(dir, x)).mtimeMs);
      if (fresh[0]) {
        out[key].file = join('bench/results/profiles', fresh[0]);
        out[key].summary = summarizeProfile(join(dir, fresh[0]));
      } else out[key].error = 'no profile written';
    }
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
  /**
   * goal: `base` (seed and JSON vs the minimal relay), `peer` (JSON vs PeerServer), `seed`
   * (JSON vs Herald's seed protocol), `abs` (Herald's own figure), `dir` which way is better.
   */
  const metric = (name, pick, digits, goal) => {
    const v = Object.fromEntries(TARGETS.map((t) => [t, pick(t)]));
    rows.push({ name, v, digits, goal });
  };
  const mainBest = (t, label, key, lower) => best(flat(main[t]), label, key, lower);
  const hi = (extra) => ({ dir: 'higher', ...extra });
  const lo = (extra) => ({ dir: 'lower', ...extra });
  metric('relay 2.5 KB SDP, msg/s', (t) => mainBest(t, 'thr2500', 'msgPerSec')?.msgPerSec, 0, hi({ base: 0.9, peer: 1.5 }));
  metric('relay 250 B candidate, msg/s', (t) => mainBest(t, 'thr250', 'msgPerSec')?.msgPerSec, 0, hi({ base: 0.9, peer: 1.5 }));
  metric('server CPU µs/msg, 2.5 KB', (t) => mainBest(t, 'thr2500', 'msgPerSec')?.srvUsPerMsg, 2, lo());
  metric('server CPU µs/msg, 250 B', (t) => mainBest(t, 'thr250', 'msgPerSec')?.srvUsPerMsg, 2, lo());
  // Capacity: messages per second of server CPU (1e6 / µs per msg), from each target's best
  // (lowest-cost) run. On a shared machine the server rarely gets a whole core; this is what
  // it would relay if it had one, and it does not depend on how much CPU others took.
  const cap = (t, label) => {
    const rs = by(flat(main[t]), label).filter((r) => r.srvUsPerMsg > 0);
    return rs.length ? 1e6 / Math.min(...rs.map((r) => r.srvUsPerMsg)) : undefined;
  };
  metric('relay capacity 2.5 KB, msg per server CPU-s', (t) => cap(t, 'thr2500'), 0, hi({ base: 0.9, peer: 1.5 }));
  metric('relay capacity 250 B, msg per server CPU-s', (t) => cap(t, 'thr250'), 0, hi({ base: 0.9, peer: 1.5 }));
  const rttBest = (t) => best(flat(main[t]), 'rtt', 'p99', true);
  metric(`RTT p50 ms @ ${P.rttRate} msg/s`, (t) => rttBest(t)?.p50, 3, lo());
  metric(`RTT p99 ms @ ${P.rttRate} msg/s`, (t) => rttBest(t)?.p99, 3, lo());
  if (P.idleConns) {
    const idleR = (t) => by(idle[t], 'idle')[0];
    // Marginal: RSS growth from N/2 to N connections over N/2 (bench/load.mjs, idle()).
    metric(`RSS KB per idle conn (marginal, ${P.idleConns / 2} → ${P.idleConns})`, (t) => idleR(t)?.kbPerConn, 2, lo({ base: 1.15 }));
    metric(`RSS KB per idle conn (0 → ${P.idleConns}, fresh process)`, (t) => idleR(t)?.kbPerConnFromStart, 2, lo());
    metric(`idle CPU % core (${P.idleConns} conns, ${P.idleMeasureMs / 1000} s = 2 heartbeats)`, (t) => idleR(t)?.idleCpuPct, 2, lo({ abs: 1 }));
    metric(`relay 250 B w/ ${P.idleConns} idle, msg/s`, (t) => by(idle[t], 'thr250idle')[0]?.msgPerSec, 0, hi({ base: 0.9 }));
    metric(`server CPU µs/msg, 250 B w/ idle`, (t) => by(idle[t], 'thr250idle')[0]?.srvUsPerMsg, 2, lo());
  }
  metric(`join storm ${P.stormViewers} viewers, ms`, (t) => mainBest(t, 'storm', 'ms', true)?.ms, 0, lo({ seed: 1.25 }));
  // The storm's wall time is bounded by the generator (its broadcaster answers every join):
  // the server CPU the storm cost is the server-side figure.
  metric(`join storm, server CPU ms`, (t) => {
    const rs = by(flat(main[t]), 'storm').filter((r) => Number.isFinite(r.ms));
    return rs.length ? Math.min(...rs.map((r) => (r.srvCpuPct * r.ms) / 100)) : undefined;
  }, 0, lo());
  if (P.idleConns) {
    metric(`connect + join ${P.idleConns} idle, s`, (t) => by(idle[t], 'idle')[0]?.connectMs / 1000, 1, lo());
  }

  const cell = (row, t, vs, limit) => {
    const a = row.v[t];
    const b = row.v[vs];
    if (!Number.isFinite(a) || !Number.isFinite(b) || b === 0) return 'n/a';
    const r = a / b;
    if (limit === undefined) return `${r.toFixed(2)}×`;
    const ok = row.goal.dir === 'higher' ? r >= limit : r <= limit;
    return `${r.toFixed(2)}× ${ok ? '✓' : '✗'}`;
  };
  const absMark = (row, t) => {
    const h = row.v[t];
    if (row.goal.abs === undefined || !Number.isFinite(h)) return '';
    return (row.goal.dir === 'higher' ? h >= row.goal.abs : h <= row.goal.abs) ? ' ✓' : ' ✗';
  };
  const goalText = (g) => {
    const op = g.dir === 'higher' ? '≥' : '≤';
    const parts = [];
    if (g.base !== undefined) parts.push(`seed, json ${op} ${g.base}× base`);
    if (g.peer !== undefined) parts.push(`json ${op} ${g.peer}× peer`);
    if (g.seed !== undefined) parts.push(`json ${op} ${g.seed}× seed`);
    if (g.abs !== undefined) parts.push(`${op} ${g.abs} (abs)`);
    return parts.length ? parts.join('; ') : '(info)';
  };
  const lines = [];
  if (res.main || res.idle) lines.push('| benchmark | baseline | PeerServer | Herald seed | seed/base | Herald JSON | json/base | json/peer | json/seed | target |');
  if (res.main || res.idle) lines.push('|---|---:|---:|---:|---:|---:|---:|---:|---:|---|');
  for (const row of rows) {
    if (TARGETS.every((t) => !Number.isFinite(row.v[t]))) continue; // a group not run
    const g = row.goal;
    lines.push(
      `| ${row.name} | ${fmt(row.v.baseline, row.digits)} | ${fmt(row.v.peerjs, row.digits)} | ${fmt(row.v.seed, row.digits)}${absMark(row, 'seed')} | ${cell(row, 'seed', 'baseline', g.base)} | ${fmt(row.v.json, row.digits)}${absMark(row, 'json')} | ${cell(row, 'json', 'baseline', g.base)} | ${cell(row, 'json', 'peerjs', g.peer)} | ${cell(row, 'json', 'seed', g.seed)} | ${goalText(g)} |`,
    );
  }

  // CPU during each throughput measurement: is the server saturated, is the generator?
  const cpuLines = ['', '| CPU during measurement, % of one core: server / generator / everything else on the machine | baseline | PeerServer | Herald seed | Herald JSON |', '|---|---:|---:|---:|---:|'];
  const cpuRow = (name, pick) => {
    const c = (r) => (r ? `${fmt(r.srvCpuPct)} / ${fmt(r.genCpuPct)} / ${fmt(r.othersCpuPct)}` : 'n/a');
    if (TARGETS.some((t) => pick(t))) cpuLines.push(`| ${name} | ${TARGETS.map((t) => c(pick(t))).join(' | ')} |`);
  };
  cpuRow('relay 2.5 KB', (t) => mainBest(t, 'thr2500', 'msgPerSec'));
  cpuRow('relay 250 B', (t) => mainBest(t, 'thr250', 'msgPerSec'));
  cpuRow(`RTT @ ${P.rttRate} msg/s`, (t) => rttBest(t));
  if (P.idleConns) cpuRow(`relay 250 B w/ ${P.idleConns} idle`, (t) => by(idle[t], 'thr250idle')[0]);
  cpuRow('join storm', (t) => mainBest(t, 'storm', 'ms', true));
  if (res.main || res.idle) lines.push(...cpuLines);

  if (res.scale) {
    lines.push('');
    if (res.scale.unavailable) lines.push(`scale: unavailable (${res.scale.unavailable})`);
    else {
      const r = res.scale.results ?? [];
      const get = (label) => r.find((x) => x.label === label && !x.error);
      const base = get('scaleBase');
      const all = get('scaleAll');
      const tb = get('scaleThrBase');
      const ta = get('scaleThrAll');
      const total = all ? all.held : undefined;
      lines.push(`| scale: one Herald instance, ${res.scale.target} protocol | value | target |`);
      lines.push('|---|---:|---|');
      lines.push(`| connections held | ${fmt(total)} (${fmt(all?.open)} open) | ${fmt(P.scaleConns)}${res.scale.limited ? ' ✗' : ''} |`);
      if (res.scale.limited) lines.push(`| limited | ${res.scale.limited} | |`);
      lines.push(`| RSS total, MB | ${fmt(all ? all.rssTotalKb / 1024 : undefined, 0)} | (info) |`);
      const rssPer = all && base ? (all.rssAfterKb - base.rssBeforeKb) / total : undefined;
      lines.push(`| RSS KB per connection: marginal (last ${fmt(all ? all.conns - Math.floor(all.conns / 4) * 2 : undefined)} added) / all ${fmt(total)} over the fresh process (after full GC) | ${fmt(all?.kbPerConn, 2)} / ${fmt(rssPer, 2)} | (info) |`);
      lines.push(`| connect rate, connections/s (hello + join, ${fmt(all?.conns)} connections) | ${fmt(all?.connectPerSec)} | (info) |`);
      lines.push(`| heartbeat CPU % core with ${fmt(total)} idle (${P.idleMeasureMs / 1000} s = 2 intervals) | ${fmt(all?.idleCpuPct, 2)} | (info; ≤ 1% at 10k) |`);
      lines.push(`| relay 250 B, msg/s, ${fmt(base?.held)} held | ${fmt(tb?.msgPerSec)} | |`);
      lines.push(`| relay 250 B, msg/s, ${fmt(total)} held | ${fmt(ta?.msgPerSec)} | |`);
      const ratio = ta && tb ? ta.msgPerSec / tb.msgPerSec : undefined;
      lines.push(`| ratio ${fmt(total)} / ${fmt(base?.held)} held | ${ratio === undefined ? 'n/a' : `${ratio.toFixed(2)}× ${ratio >= 0.9 ? '✓' : '✗'}`} | ≥ 0.9× |`);
      const cb = tb?.srvUsPerMsg;
      const ca = ta?.srvUsPerMsg;
      lines.push(`| server CPU µs/msg, ${fmt(base?.held)} / ${fmt(total)} held | ${fmt(cb, 2)} / ${fmt(ca, 2)} | (info) |`);
      // Capacity (msg per server CPU-s) does not depend on how much CPU the rest of a shared
      // machine left the server during each probe.
      const capRatio = ca > 0 && cb > 0 ? cb / ca : undefined;
      lines.push(`| capacity ratio ${fmt(total)} / ${fmt(base?.held)} held (msg per server CPU-s) | ${capRatio === undefined ? 'n/a' : `${capRatio.toFixed(2)}× ${capRatio >= 0.9 ? '✓' : '✗'}`} | ≥ 0.9× |`);
      for (const x of r.filter((x) => x.error)) lines.push(`scale ${x.label}: error: ${x.error}`);
    }
  }

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
  // A group that fails (on a loaded machine a server may not start in time) is reported as
  // such; the groups measured before and after it are kept.
  const guarded = async (name, fn) => {
    try {
      return await fn();
    } catch (err) {
      say(`${name} failed: ${err?.message ?? err}`);
      (res.failed ??= []).push(`${name}: ${err?.message ?? err}`);
      return undefined;
    }
  };
  if (P.idleConns && want('idle')) res.idle = await guarded('idle', groupIdle);
  if (want('main')) res.main = await guarded('main', groupMain);
  if (P.scaleConns && want('scale')) res.scale = await guarded('scale', groupScale);
  if (P.redis && want('redis')) res.redis = await guarded('redis', groupRedis);
  if (want('profile') && (P.profile || ONLY?.includes('profile'))) res.profile = await guarded('profile', groupProfile);
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
  scan({ main: res.main, idle: res.idle, scale: res.scale }, '');
  for (const f of res.failed ?? []) errors.push(`group ${f}`);
  console.log(`\nHerald bench (${MODE}), ${meta.date}, node ${meta.node}, ${NCPU} cpus (${meta.cpuModel}), ${TASKSET ? `server on core ${SERVER_CORE}, generator on core ${LOAD_CORE}` : 'unpinned'}`);
  console.log(`load average at start ${meta.loadavgStart.map((x) => x.toFixed(2)).join(' ')}, at end ${meta.loadavgEnd.map((x) => x.toFixed(2)).join(' ')}; ${meta.durationSec.toFixed(0)} s\n`);
  if (res.main || res.idle || res.redis || res.scale) console.log(table);
  for (const [t, p] of Object.entries(res.redis?.profiles ?? {})) {
    console.log(`\nprofile (cross-instance, ${t}; ${p.file}):`);
    console.log(p.summary.text);
  }
  if (res.profile) {
    for (const [t, p] of Object.entries(res.profile)) {
      console.log(`\nprofile (${t}, Herald under relay load; ${p.file ?? p.error}):`);
      if (p.summary) console.log(p.summary.text);
    }
  }
  if (errors.length) console.log(`\nproblems:\n${errors.map((e) => `- ${e}`).join('\n')}`);
  console.log(`\nresults: ${file.startsWith(ROOT) ? file.slice(ROOT.length + 1) : file}`);
  // The PeerJS protocol against PeerServer: self-contained in bench/peerjs.mjs (which has
  // its own smoke test, test/bench-peerjs-smoke.test.ts).
  if (MODE !== 'smoke' && want('peerjs')) spawnSync(process.execPath, [join(HERE, 'peerjs.mjs'), `--mode=${MODE}`, ...(opt('out') ? [`--out=${opt('out')}`] : [])], { cwd: ROOT, stdio: 'inherit' });
  // WHEP players in Chromium (bench/whep.mjs): POST→201 and POST→first frame, 1 and 8 viewers.
  if (MODE !== 'smoke' && want('whep')) spawnSync(process.execPath, [join(HERE, 'whep.mjs')], { cwd: ROOT, stdio: 'inherit' });
  // y-webrtc against its own bin/server.js: self-contained in bench/ywebrtc.mjs.
  if (MODE !== 'smoke' && want('ywebrtc')) spawnSync(process.execPath, [join(HERE, 'ywebrtc.mjs'), `--mode=${MODE === 'quick' ? 'quick' : 'full'}`, ...(opt('out') ? [`--out=${opt('out')}`] : [])], { cwd: ROOT, stdio: 'inherit' });
}

/** `--table=<results.json>`: prints the table of a saved run again (with this version's rows). */
async function reprint(path) {
  const res = JSON.parse(readFileSync(resolve(path), 'utf8'));
  Object.assign(P, res.meta.params);
  const m = res.meta;
  console.log(`Herald bench (${m.mode}), ${m.date}, node ${m.node}, ${m.cpus} cpus, ${m.pinned ? `server on core ${m.pinned.server}, generator on core ${m.pinned.load}` : 'unpinned'}`);
  console.log(`load average at start ${m.loadavgStart.map((x) => x.toFixed(2)).join(' ')}, at end ${(m.loadavgEnd ?? []).map((x) => x.toFixed(2)).join(' ')}; ${m.durationSec?.toFixed(0) ?? '?'} s\n`);
  console.log(buildTable(res));
}

(opt('table') ? reprint(opt('table')) : main()).then(
  () => process.exit(0),
  (err) => {
    console.error('bench failed:', err);
    process.exit(1);
  },
);
