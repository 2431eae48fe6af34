// Herald bench load generator: its own process, pinned by run.mjs to its own core.
//
//   node bench/load.mjs '<json spec>'
//
// spec = { target: 'baseline'|'peerjs'|'seed'|'json', urls: [ws://127.0.0.1:P, ...], serverPids: [..],
//          scenarios: [{ kind: 'throughput'|'rtt'|'idle'|'storm', ... }] }
//
// Prints one line `RESULT <json>` per scenario and `DONE` at the end. Every wait has a
// deadline; every loop is bounded. Loopback only: the URLs come from run.mjs, and local
// source addresses are 127.0.0.x.
import { readFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { performance } from 'node:perf_hooks';
import WebSocket from 'ws';

const spec = JSON.parse(process.argv[2] ?? '{}');
const TARGET = spec.target;
const URLS = spec.urls ?? [];
const PIDS = spec.serverPids ?? [];
for (const u of URLS) {
  const host = new URL(u).hostname;
  if (!/^127\.\d+\.\d+\.\d+$/.test(host) && host !== '[::1]' && host !== 'localhost') throw new Error(`not loopback: ${u}`);
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const log = (...a) => process.stderr.write(`[load ${TARGET}] ${a.join(' ')}\n`);

// ---------- CPU and memory probes ----------

const CLK_TCK = 100;
/** utime+stime of a process in µs, from /proc/<pid>/stat. */
function procCpuUs(pid) {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return ((Number(f[11]) + Number(f[12])) * 1e6) / CLK_TCK; // fields 14, 15
  } catch {
    return NaN;
  }
}
function procRssKb(pid) {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) : NaN;
  } catch {
    return NaN;
  }
}
/** Busy time of the whole machine (all cpus) in µs, from /proc/stat. */
function machineBusyUs() {
  try {
    const f = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0].trim().split(/\s+/).slice(1).map(Number);
    const idle = f[3] + (f[4] || 0);
    const total = f.slice(0, 8).reduce((a, b) => a + b, 0);
    return ((total - idle) * 1e6) / CLK_TCK;
  } catch {
    return NaN;
  }
}
function snapshot() {
  const c = process.cpuUsage();
  return { t: performance.now(), gen: c.user + c.system, srv: PIDS.map(procCpuUs), busy: machineBusyUs() };
}
/** CPU use between two snapshots, as % of one core, and server µs. */
function cpuBetween(s0, s1) {
  const wallUs = (s1.t - s0.t) * 1000;
  const srvUs = s1.srv.reduce((a, v, i) => a + (v - s0.srv[i]), 0);
  const genUs = s1.gen - s0.gen;
  // Everything else the machine ran meanwhile (other engineers' test suites), in % of one core.
  const othersPct = (100 * (s1.busy - s0.busy - srvUs - genUs)) / wallUs;
  return { wallMs: s1.t - s0.t, genPct: (100 * genUs) / wallUs, srvPct: (100 * srvUs) / wallUs, srvUs, othersPct };
}
/**
 * The machine is shared: waits (at most `spec.quietWaitMs`) for a moment when everything
 * else on it uses less than `spec.quietPct`% of one core, sampled over 500 ms windows.
 * Returns how long it waited and what the others used in the last window.
 */
async function waitQuiet() {
  const maxMs = spec.quietWaitMs ?? 0;
  const t0 = performance.now();
  let others = NaN;
  for (let i = 0; i < 200; i++) {
    const s0 = snapshot();
    await sleep(500);
    others = cpuBetween(s0, snapshot()).othersPct;
    if (others < (spec.quietPct ?? 50) || performance.now() - t0 >= maxMs) break;
  }
  return { quietWaitMs: Math.round(performance.now() - t0), othersBeforePct: others };
}

async function gcServers() {
  for (const pid of PIDS) {
    try {
      process.kill(pid, 'SIGUSR2'); // bench/probe.mjs: global.gc()
    } catch {}
  }
  await sleep(400);
}

// ---------- a client socket ----------

let nextLocal = 0;
/**
 * Spread connections over source addresses 127.0.0.2, 127.0.0.3, ... (`spec.sourceAddrs` of
 * them, 8 by default): each gives its own ~28k ephemeral ports towards one server port, so
 * 10k sockets (100k with 16 addresses) never run out of ports.
 */
const SOURCE_ADDRS = Math.min(250, spec.sourceAddrs ?? 8);
function localAddress() {
  return `127.0.0.${2 + (nextLocal++ % SOURCE_ADDRS)}`;
}

const pendingUncork = [];
let flushScheduled = false;
function flushCorks() {
  flushScheduled = false;
  for (let i = 0; i < pendingUncork.length; i++) {
    const c = pendingUncork[i];
    c.corked = false;
    c.sock?.uncork();
  }
  pendingUncork.length = 0;
}
const TEXT = { binary: false };

class Client {
  constructor(url) {
    this.ws = new WebSocket(url, {
      perMessageDeflate: false,
      skipUTF8Validation: true,
      handshakeTimeout: 15000,
      localAddress: localAddress(),
    });
    this.inbox = [];
    this.waiter = null;
    this.onmsg = null; // fast path during a run: (data: Buffer) => void
    this.corked = false;
    this.closed = false;
    this.ws.once('open', () => {
      this.sock = this.ws._socket;
    });
    this.ws.on('message', (data) => {
      if (this.onmsg !== null) return this.onmsg(data);
      this.inbox.push(data.toString());
      this.waiter?.();
    });
    this.ws.on('close', () => {
      this.closed = true;
      this.waiter?.();
    });
    this.ws.on('error', (err) => {
      this.error = err;
      this.waiter?.();
    });
  }

  opened(ms = 15000) {
    if (this.ws.readyState === WebSocket.OPEN) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error('open timeout')), ms);
      this.ws.once('open', () => {
        clearTimeout(t);
        resolve();
      });
      this.ws.once('error', (e) => {
        clearTimeout(t);
        reject(e);
      });
      this.ws.once('close', (code, reason) => {
        clearTimeout(t);
        reject(new Error(`closed ${code} ${reason}`));
      });
    });
  }

  /** Waits for (and removes) the first queued message matching `pred`. */
  async expect(pred, what, ms = 15000) {
    const deadline = performance.now() + ms;
    for (;;) {
      const i = this.inbox.findIndex(pred);
      if (i >= 0) return this.inbox.splice(i, 1)[0];
      if (this.closed) throw new Error(`closed while waiting for ${what}`);
      const left = deadline - performance.now();
      if (left <= 0) throw new Error(`timeout waiting for ${what}; got ${JSON.stringify(this.inbox.slice(-3)).slice(0, 300)}`);
      await new Promise((r) => {
        const t = setTimeout(r, left);
        this.waiter = () => {
          clearTimeout(t);
          r();
        };
      });
      this.waiter = null;
    }
  }

  /** Sends a text frame; sends made in one tick leave in one write (cork until nextTick). */
  send(frame) {
    if (!this.corked && this.sock) {
      this.corked = true;
      this.sock.cork();
      pendingUncork.push(this);
      if (!flushScheduled) {
        flushScheduled = true;
        process.nextTick(flushCorks);
      }
    }
    this.ws.send(frame, TEXT);
  }

  sendText(s) {
    this.ws.send(s);
  }

  close() {
    if (this.ws.readyState === WebSocket.OPEN || this.ws.readyState === WebSocket.CONNECTING) {
      try {
        this.ws.close(1000, 'bench done');
      } catch {
        this.ws.terminate();
      }
    }
  }
}

async function closeAll(clients, ms = 5000) {
  for (const c of clients) c.close();
  const deadline = performance.now() + ms;
  while (clients.some((c) => !c.closed) && performance.now() < deadline) await sleep(50);
  for (const c of clients) if (!c.closed) c.ws.terminate();
}

/** Runs `fn` over `items` with at most `limit` in flight. */
async function pool(items, limit, fn) {
  let next = 0;
  const workers = Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (next < items.length) {
      const i = next++;
      await fn(items[i], i);
    }
  });
  await Promise.all(workers);
}

// ---------- payloads and frames, per protocol ----------

// SDP lines end in CRLF, which JSON carries as the escapes \r\n: a real description is not one
// long run of plain characters, and a JSON relay has to scan and unescape them.
const SDP_FILLER = 'v=0\r\no=- 4611731400430051336 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\na=group:BUNDLE 0 1\r\na=msid-semantic: WMS stream\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111 63 103\r\nc=IN IP4 0.0.0.0\r\na=rtcp:9 IN IP4 0.0.0.0\r\na=ice-ufrag:abcd\r\na=ice-pwd:0123456789abcdefghijkl\r\na=fingerprint:sha-256 AB:CD:EF:01:23:45:67:89\r\na=setup:actpass\r\na=mid:0\r\na=sendrecv\r\na=rtpmap:111 opus/48000/2\r\n';
const CANDIDATE_FILLER = 'candidate:842163049 1 udp 1677729535 203.0.113.7 56143 typ srflx raddr 10.0.0.2 rport 56143 generation 0 ufrag abcd network-id 1 network-cost 10 ';
function filler(n, text = SDP_FILLER) {
  let s = '';
  while (s.length < n) s += text;
  return s.slice(0, Math.max(0, n));
}

/**
 * The message bodies: an SDP-like session description `{type, sdp}` for the 2.5 KB frames and
 * an ICE-candidate-like `{candidate, sdpMid, sdpMLineIndex, usernameFragment}` for the 250 B
 * ones, what a WebRTC app really sends. `text` is the padded string member.
 */
function body(size, text, answer = false) {
  if (size >= 1000) return { type: answer ? 'answer' : 'offer', sdp: text };
  return { candidate: text, sdpMid: '0', sdpMLineIndex: 0, usernameFragment: 'abcd' };
}

/**
 * Sizes a body so that `frame(body)` is exactly `size` bytes (ASCII; CRLF counts as the 4
 * characters of its JSON escapes): returns the body. `frame` wraps a body into the frame a
 * client sends.
 */
function sizedBody(size, frame, answer) {
  const base = size >= 1000 ? SDP_FILLER : CANDIDATE_FILLER;
  let text = filler(size, base);
  while (text && frame(body(size, text, answer)).length > size) text = text.slice(0, -1);
  while (frame(body(size, text, answer)).length < size) text += ' ';
  return body(size, text, answer);
}

/**
 * Each driver builds the frames one pair exchanges, sized so the frame a client sends is
 * `size` bytes on every protocol, and the exact length of what the other side receives.
 *   setupPair(tag, i, urlA, urlB) -> { a, b, toB, atB, toA, atA }
 * a sends `toB`, b receives `atB` bytes; b sends `toA`, a receives `atA` bytes. The relay
 * baseline and the seed protocol carry the body as opaque JSON text; the JSON protocol and
 * PeerServer as a JSON value.
 */
const J = JSON.stringify;
const drivers = {
  baseline: {
    isRelay: () => true,
    frames(A, B, size) {
      const out = (to, answer) => {
        const b = sizedBody(size, (x) => `${to}\n${J(x)}`, answer);
        return J(b);
      };
      const pb = out(B, false);
      const pa = out(A, true);
      return { toB: `${B}\n${pb}`, atB: A.length + 1 + pb.length, toA: `${A}\n${pa}`, atA: B.length + 1 + pa.length };
    },
    async setupPair(tag, i, urlA, urlB) {
      const A = `${tag}a${i}`;
      const B = `${tag}b${i}`;
      const a = new Client(`${urlA}/?id=${A}`);
      const b = new Client(`${urlB}/?id=${B}`);
      await Promise.all([a.opened(), b.opened()]);
      a.sendText(`${B}\nhi`);
      await b.expect((m) => m === `${A}\nhi`, 'baseline probe');
      return { a, b, A, B };
    },
  },
  peerjs: {
    // {"type":"OFFER"|"ANSWER"|"CANDIDATE",…; OPEN, LEAVE, EXPIRE, ERROR are not relayed messages.
    isRelay: (d) => (d[9] === 0x4f && d[10] === 0x46) || (d[9] === 0x41 && d[10] === 0x4e) || (d[9] === 0x43 && d[10] === 0x41),
    frames(A, B, size) {
      const sdp = size >= 1000;
      const mk = (type, dst, answer) => {
        const wrap = (x) => ({ type, dst, payload: sdp ? { sdp: x } : { candidate: x } });
        const b = sizedBody(size, (x) => J(wrap(x)), answer);
        return { frame: J(wrap(b)), payload: wrap(b).payload };
      };
      const toB = mk(sdp ? 'OFFER' : 'CANDIDATE', B, false);
      const toA = mk(sdp ? 'ANSWER' : 'CANDIDATE', A, true);
      // PeerServer forwards {type, src, dst, payload}.
      return {
        toB: toB.frame,
        atB: J({ type: sdp ? 'OFFER' : 'CANDIDATE', src: A, dst: B, payload: toB.payload }).length,
        toA: toA.frame,
        atA: J({ type: sdp ? 'ANSWER' : 'CANDIDATE', src: B, dst: A, payload: toA.payload }).length,
      };
    },
    async open(url, id) {
      const c = new Client(`${url}/peerjs?key=peerjs&id=${id}&token=t${id}`);
      await c.opened();
      await c.expect((m) => m === '{"type":"OPEN"}', 'peerjs OPEN');
      return c;
    },
    async setupPair(tag, i, urlA, urlB) {
      const A = `${tag}a${i}`;
      const B = `${tag}b${i}`;
      const [a, b] = await Promise.all([this.open(urlA, A), this.open(urlB, B)]);
      a.sendText(J({ type: 'CANDIDATE', dst: B, payload: { probe: 1 } }));
      await b.expect((m) => m.includes('"probe":1'), 'peerjs probe');
      return { a, b, A, B };
    },
  },
  seed: {
    // offer|… or answer|…; anything else (error|…, join|…) is not a relayed message.
    isRelay: (d) => d[0] === 0x6f || (d[0] === 0x61 && d[1] === 0x6e),
    frames(A, B, size, room, user) {
      const pb = J(sizedBody(size, (x) => `offer|${user}|${J(x)}`, false));
      const pa = J(sizedBody(size, (x) => `answer|${room}|${J(x)}`, true));
      return {
        toB: `offer|${user}|${pb}`,
        atB: `offer|${room}|`.length + pb.length,
        toA: `answer|${room}|${pa}`,
        atA: `answer|${user}|`.length + pa.length,
      };
    },
    async setupPair(tag, i, urlA, urlB) {
      const room = `${tag}r${i}`;
      const user = `${tag}u${i}`;
      const a = new Client(`${urlA}/webrtc/sender/${room}`);
      const b = new Client(`${urlB}/webrtc/reader/${user}`);
      await Promise.all([a.opened(), b.opened()]);
      b.sendText(`join|${room}`);
      await a.expect((m) => m === `join|${user}`, 'seed join');
      return { a, b, room, user, A: `sender/${room}`, B: user };
    },
  },
  json: {
    // {"type":"signal",…; pushes such as counts/peer-joined/error are not relayed messages.
    isRelay: (d) => d[9] === 0x73 && d[10] === 0x69,
    frames(A, B, size, room) {
      const mk = (to, answer) => {
        const wrap = (x) => J({ type: 'signal', room, to, data: x });
        return sizedBody(size, wrap, answer);
      };
      const bb = mk(B, false);
      const ba = mk(A, true);
      return {
        toB: J({ type: 'signal', room, to: B, data: bb }),
        atB: J({ type: 'signal', room, from: A, data: bb }).length,
        toA: J({ type: 'signal', room, to: A, data: ba }),
        atA: J({ type: 'signal', room, from: B, data: ba }).length,
      };
    },
    async hello(c, peerId) {
      await c.opened();
      c.sendText(J({ type: 'hello', id: 1, peerId }));
      await c.expect((m) => m.startsWith('{"type":"ack","id":1,'), 'welcome');
    },
    async joinRoom(c, room, role) {
      c.sendText(J({ type: 'join', id: 2, room, role }));
      await c.expect((m) => m.startsWith('{"type":"ack","id":2,'), `join ${role}`);
    },
    async setupPair(tag, i, urlA, urlB) {
      const room = `${tag}r${i}`;
      const A = `${tag}a${i}`;
      const B = `${tag}b${i}`;
      const a = new Client(`${urlA}/ws`);
      const b = new Client(`${urlB}/ws`);
      await Promise.all([this.hello(a, A), this.hello(b, B)]);
      await this.joinRoom(a, room, 'broadcaster');
      await this.joinRoom(b, room, 'viewer');
      await a.expect((m) => m.includes('"type":"peer-joined"'), 'peer-joined');
      return { a, b, room, A, B };
    },
  },
};
const driver = drivers[TARGET];
if (!driver) throw new Error(`unknown target ${TARGET}`);

const isRelay = driver.isRelay;
let others = 0;
let firstOther;
function noteOther(data) {
  others++;
  const text = data.toString();
  // Pushes a protocol may send besides relayed messages are fine; errors are not.
  if (firstOther === undefined && /error/.test(text.slice(0, 20))) firstOther = text.slice(0, 160);
}
let firstBad;
function noteBad(data, expected) {
  if (firstBad === undefined) firstBad = `expected ${expected} bytes, got ${data.length}: ${data.toString().slice(0, 160)}`;
}

let tagSeq = 0;
function newTag() {
  return `t${process.pid % 1000}x${tagSeq++}`;
}

async function setupPairs(n, split, concurrency = 64) {
  const tag = newTag();
  const urlA = URLS[0];
  const urlB = split && URLS.length > 1 ? URLS[1] : URLS[0];
  const pairs = new Array(n);
  await pool([...Array(n).keys()], concurrency, async (i) => {
    pairs[i] = await driver.setupPair(tag, i, urlA, urlB);
  });
  return pairs;
}

function withFrames(pairs, size) {
  for (const p of pairs) {
    const f = driver.frames(p.A, p.B, size, p.room, p.user);
    p.toB = Buffer.from(f.toB);
    p.toA = Buffer.from(f.toA);
    p.atB = f.atB;
    p.atA = f.atA;
  }
  return pairs;
}

function sentSize(pairs) {
  return pairs[0].toB.length;
}

function detach(pairs) {
  for (const p of pairs) {
    p.a.onmsg = null;
    p.b.onmsg = null;
  }
}

// ---------- scenarios ----------

/** Closed loop: each pair keeps `window` messages in flight; b echoes each back to a. */
async function throughput(sc, held) {
  const pairs = withFrames(await setupPairs(sc.pairs, sc.split), sc.size);
  let received = 0;
  let bad = 0;
  let running = true;
  for (const p of pairs) {
    p.inflight = 0;
    p.b.onmsg = (data) => {
      if (!isRelay(data)) return noteOther(data);
      received++;
      if (data.length !== p.atB) bad++, noteBad(data, p.atB);
      p.b.send(p.toA);
    };
    p.a.onmsg = (data) => {
      if (!isRelay(data)) return noteOther(data);
      received++;
      if (data.length !== p.atA) bad++, noteBad(data, p.atA);
      p.inflight--;
      if (running) {
        p.inflight++;
        p.a.send(p.toB);
      }
    };
  }
  for (const p of pairs) {
    for (let k = 0; k < sc.window; k++) {
      p.inflight++;
      p.a.send(p.toB);
    }
  }
  await sleep(sc.warmupMs);
  const r0 = received;
  const s0 = snapshot();
  const la0 = loadavg()[0];
  await sleep(sc.measureMs);
  const r1 = received;
  const s1 = snapshot();
  running = false;
  const cpu = cpuBetween(s0, s1);
  const relayed = r1 - r0;
  // Drain what is in flight (bounded), then stop listening.
  const deadline = performance.now() + 3000;
  while (pairs.some((p) => p.inflight > 0) && performance.now() < deadline) await sleep(20);
  const lost = pairs.reduce((a, p) => a + Math.max(0, p.inflight), 0);
  detach(pairs);
  if (!sc.keep) await closeAll(pairs.flatMap((p) => [p.a, p.b]));
  return {
    kind: 'throughput',
    label: sc.label,
    pairs: pairs.length,
    window: sc.window,
    frameBytes: sentSize(pairs),
    heldIdle: held,
    relayed,
    msgPerSec: (relayed * 1000) / cpu.wallMs,
    srvCpuPct: cpu.srvPct,
    genCpuPct: cpu.genPct,
    srvUsPerMsg: cpu.srvUs / relayed,
    othersCpuPct: cpu.othersPct,
    bad,
    lost,
    load1: [la0, loadavg()[0]],
  };
}

/** Open loop at `rate` originals/s over all pairs, round robin; b echoes; RTT measured at a. */
async function rtt(sc) {
  const pairs = withFrames(await setupPairs(sc.pairs, sc.split), sc.size);
  const maxSamples = Math.ceil(sc.rate * (sc.measureMs / 1000) * 1.2) + 1000;
  const samples = new Float64Array(maxSamples);
  let n = 0;
  let recording = false;
  let bad = 0;
  for (const p of pairs) {
    p.sent = []; // send times, FIFO (a pair's messages stay in order)
    p.head = 0;
    p.b.onmsg = (data) => {
      if (!isRelay(data)) return noteOther(data);
      if (data.length !== p.atB) bad++, noteBad(data, p.atB);
      p.b.send(p.toA);
    };
    p.a.onmsg = (data) => {
      const now = performance.now();
      if (!isRelay(data)) return noteOther(data);
      if (data.length !== p.atA) bad++, noteBad(data, p.atA);
      const t = p.sent[p.head++];
      if (p.head > 1024) {
        p.sent = p.sent.slice(p.head);
        p.head = 0;
      }
      if (recording && t > 0 && n < maxSamples) samples[n++] = now - t;
    };
  }
  let offered = 0;
  let rr = 0;
  let stopAt = 0;
  const start = performance.now();
  const total = sc.warmupMs + sc.measureMs;
  let s0;
  let la0;
  await new Promise((resolve) => {
    const tick = () => {
      const now = performance.now();
      const elapsed = now - start;
      if (!recording && elapsed >= sc.warmupMs) {
        recording = true;
        s0 = snapshot();
        la0 = loadavg()[0];
      }
      const due = Math.floor((Math.min(elapsed, total) * sc.rate) / 1000);
      // Bounded catch-up: never more than 200 ms worth of messages in one tick.
      const burst = Math.min(due - offered, Math.ceil(sc.rate / 5));
      for (let k = 0; k < burst; k++) {
        const p = pairs[rr++ % pairs.length];
        p.sent.push(recording ? performance.now() : -1);
        p.a.send(p.toB);
      }
      offered += Math.max(0, burst);
      if (elapsed >= total) return resolve();
      setTimeout(tick, 1);
    };
    tick();
  });
  const s1 = snapshot();
  stopAt = performance.now();
  const deadline = stopAt + 3000;
  while (pairs.some((p) => p.head < p.sent.length) && performance.now() < deadline) await sleep(10);
  const lost = pairs.reduce((a, p) => a + (p.sent.length - p.head), 0);
  detach(pairs);
  await closeAll(pairs.flatMap((p) => [p.a, p.b]));
  const sorted = samples.subarray(0, n).sort();
  const q = (f) => (n ? sorted[Math.min(n - 1, Math.floor(f * n))] : NaN);
  const cpu = cpuBetween(s0, s1);
  return {
    kind: 'rtt',
    label: sc.label,
    pairs: pairs.length,
    frameBytes: sentSize(pairs),
    rate: sc.rate,
    samples: n,
    p50: q(0.5),
    p99: q(0.99),
    p999: q(0.999),
    max: n ? sorted[n - 1] : NaN,
    srvCpuPct: cpu.srvPct,
    genCpuPct: cpu.genPct,
    othersCpuPct: cpu.othersPct,
    bad,
    lost,
    load1: [la0, loadavg()[0]],
  };
}

/**
 * N more idle connections (baseline, PeerServer: N clients; Herald: N/2 joined pairs), added
 * to those already held: RSS per added connection, connect rate, and the server's CPU over
 * `measureMs` with nothing sent (0: not measured). Keeps them for what follows. With
 * `spec.lockstep` the window starts only when run.mjs says so, so that every target's idle
 * window is the same stretch of time.
 */
async function idle(sc, state) {
  await gcServers();
  const rss0 = PIDS.map(procRssKb).reduce((a, b) => a + b, 0);
  const t0 = performance.now();
  const tag = newTag();
  const clients = [];
  const n = sc.conns;
  const deadline = performance.now() + (sc.connectLimitMs ?? 120_000);
  const inTime = () => {
    if (performance.now() > deadline) throw new Error(`could not connect ${n} within ${(sc.connectLimitMs ?? 120_000) / 1000} s (${clients.length} connected)`);
  };
  const connect = async (from, count) => {
    if (TARGET === 'baseline') {
      await pool([...Array(count).keys()], sc.concurrency ?? 256, async (k) => {
        inTime();
        const c = new Client(`${URLS[0]}/?id=${tag}i${from + k}`);
        clients.push(c);
        await c.opened();
      });
    } else if (TARGET === 'peerjs') {
      await pool([...Array(count).keys()], sc.concurrency ?? 256, async (k) => {
        inTime();
        clients.push(await drivers.peerjs.open(URLS[0], `${tag}i${from + k}`));
      });
    } else {
      // Pairs joined in their own room: a sender/broadcaster and a reader/viewer each.
      await pool([...Array(count / 2).keys()], (sc.concurrency ?? 256) / 2, async (k) => {
        inTime();
        const p = await driver.setupPair(tag, from / 2 + k, URLS[0], URLS[0]);
        clients.push(p.a, p.b);
      });
    }
  };
  // Connected in two halves, with RSS read after a full GC after each: the second half's RSS
  // growth over its connections is the marginal cost of one connection, free of what a fresh
  // process's RSS does on its first allocations (fresh servers differ by 10-20 MB there).
  const half = Math.floor(n / 4) * 2;
  let connectHalfMs;
  let rssMid;
  let t1;
  try {
    await connect(0, half);
    connectHalfMs = performance.now() - t0;
    await sleep(sc.settleMs ?? 0);
    await gcServers();
    rssMid = PIDS.map(procRssKb).reduce((a, b) => a + b, 0);
    t1 = performance.now();
    await connect(half, n - half);
  } catch (err) {
    // Stay in lockstep: run.mjs waits for this generator to reach its idle window.
    if (sc.measureMs > 0) await awaitGo('measure');
    throw err;
  }
  for (const c of clients) c.inbox.length = 0;
  const connectMs = connectHalfMs + performance.now() - t1;
  state.held.push(...clients);
  await sleep(sc.settleMs ?? 0);
  await gcServers();
  const rss1 = PIDS.map(procRssKb).reduce((a, b) => a + b, 0);
  let cpu;
  let la0;
  if (sc.measureMs > 0) {
    await awaitGo('measure');
    const s0 = snapshot();
    la0 = loadavg()[0];
    await sleep(sc.measureMs);
    cpu = cpuBetween(s0, snapshot());
  }
  const open = state.held.filter((c) => !c.closed).length;
  return {
    kind: 'idle',
    label: sc.label,
    conns: n,
    held: state.held.length,
    open,
    connectMs,
    connectPerSec: (n * 1000) / connectMs,
    rssBeforeKb: rss0,
    rssMidKb: rssMid,
    rssAfterKb: rss1,
    kbPerConn: (rss1 - rssMid) / (n - half),
    kbPerConnFromStart: (rss1 - rss0) / n,
    rssTotalKb: rss1,
    idleCpuPct: cpu?.srvPct,
    othersCpuPct: cpu?.othersPct,
    idleMs: cpu?.wallMs,
    genCpuPct: cpu?.genPct,
    load1: [la0, loadavg()[0]],
  };
}

/**
 * Join storm: `viewers` connected clients join one broadcaster at once; the broadcaster
 * answers each join with an offer; timed until every viewer has its offer.
 */
async function storm(sc) {
  const tag = newTag();
  const url = URLS[0];
  const n = sc.viewers;
  // The broadcaster's answer to each join: an SDP-like offer of `size` bytes of SDP text.
  const offer = { type: 'offer', sdp: filler(sc.size) };
  while (J(offer).length > sc.size) offer.sdp = offer.sdp.slice(0, -1);
  const offerText = J(offer);
  let bcast;
  let viewers;
  let joinFrame;
  let isOffer;
  let onJoin;
  if (TARGET === 'baseline') {
    const B = `${tag}B`;
    bcast = new Client(`${url}/?id=${B}`);
    await bcast.opened();
    viewers = [];
    await pool([...Array(n).keys()], 128, async (i) => {
      const v = new Client(`${url}/?id=${tag}v${i}`);
      viewers[i] = v;
      await v.opened();
    });
    joinFrame = () => `${B}\njoin`;
    isOffer = (data) => data.length > 100;
    onJoin = (text) => {
      const from = text.slice(0, text.indexOf('\n'));
      bcast.send(`${from}\n${offerText}`);
    };
  } else if (TARGET === 'seed') {
    const room = `${tag}S`;
    bcast = new Client(`${url}/webrtc/sender/${room}`);
    await bcast.opened();
    viewers = [];
    await pool([...Array(n).keys()], 128, async (i) => {
      const v = new Client(`${url}/webrtc/reader/${tag}v${i}`);
      viewers[i] = v;
      await v.opened();
    });
    joinFrame = () => `join|${room}`;
    isOffer = (data) => data[0] === 0x6f; // 'o'ffer|room|sdp
    onJoin = (text) => {
      if (!text.startsWith('join|')) return;
      bcast.send(`offer|${text.slice(5)}|${offerText}`);
    };
  } else if (TARGET === 'peerjs') {
    // PeerServer has no rooms or joins: a viewer's join is emulated by a small message to
    // the broadcaster, which answers with the offer.
    const B = `${tag}B`;
    bcast = await drivers.peerjs.open(url, B);
    viewers = [];
    await pool([...Array(n).keys()], 128, async (i) => {
      viewers[i] = await drivers.peerjs.open(url, `${tag}v${i}`);
    });
    const joinMsg = J({ type: 'CANDIDATE', dst: B, payload: { join: true } });
    joinFrame = () => joinMsg;
    isOffer = (data) => data[9] === 0x4f && data[10] === 0x46; // {"type":"OF(FER)
    // The generator must stay cheaper than the servers: the offer's JSON is made once, and the
    // sender's id is read off the frame ({"type":"CANDIDATE","src":"<id>",…}) without parsing it.
    const head = '{"type":"CANDIDATE","src":"';
    onJoin = (text) => {
      if (!text.startsWith(head)) return;
      const src = text.slice(head.length, text.indexOf('"', head.length));
      bcast.send(`{"type":"OFFER","dst":"${src}","payload":{"sdp":${offerText}}}`);
    };
  } else {
    const room = `${tag}S`;
    bcast = new Client(`${url}/ws`);
    await drivers.json.hello(bcast, `${tag}B`);
    await drivers.json.joinRoom(bcast, room, 'broadcaster');
    viewers = [];
    await pool([...Array(n).keys()], 128, async (i) => {
      const v = new Client(`${url}/ws`);
      viewers[i] = v;
      await drivers.json.hello(v, `${tag}v${i}`);
    });
    const joinMsg = JSON.stringify({ type: 'join', id: 2, room, role: 'viewer' });
    joinFrame = () => joinMsg;
    isOffer = (data) => data[9] === 0x73; // {"type":"s(ignal)
    // As for PeerServer: the offer's JSON is made once, and the viewer's id is read off
    // {"type":"peer-joined","room":…,"peer":{"id":"<id>",…} without parsing the frame.
    const roomJson = J(room);
    onJoin = (text) => {
      if (!text.startsWith('{"type":"peer-joined"')) return;
      const at = text.indexOf('"peer":{"id":"') + 14;
      const id = text.slice(at, text.indexOf('"', at));
      bcast.send(`{"type":"signal","room":${roomJson},"to":"${id}","data":${offerText}}`);
    };
  }
  bcast.inbox.length = 0;
  let done = 0;
  let finished;
  const all = new Promise((r) => (finished = r));
  bcast.onmsg = (data) => onJoin(data.toString());
  for (const v of viewers) {
    v.inbox.length = 0;
    v.got = false;
    v.onmsg = (data) => {
      if (!v.got && isOffer(data)) {
        v.got = true;
        if (++done === n) finished();
      }
    };
  }
  const s0 = snapshot();
  const t0 = performance.now();
  for (const v of viewers) v.send(joinFrame());
  const timeout = new Promise((r) => setTimeout(r, sc.timeoutMs ?? 30000));
  await Promise.race([all, timeout]);
  const ms = performance.now() - t0;
  const s1 = snapshot();
  const cpu = cpuBetween(s0, s1);
  bcast.onmsg = null;
  for (const v of viewers) v.onmsg = null;
  await closeAll([bcast, ...viewers]);
  return { kind: 'storm', label: sc.label, viewers: n, completed: done, ms: done === n ? ms : NaN, srvCpuPct: cpu.srvPct, genCpuPct: cpu.genPct, othersCpuPct: cpu.othersPct, load1: loadavg()[0] };
}

// ---------- lockstep with run.mjs ----------

// With `spec.lockstep`, the generator prints `WAIT <what>` and waits for a `GO` line on stdin
// before each scenario (and before an idle window): run.mjs decides who runs when.
let gos = 0;
let goWaiter = null;
if (spec.lockstep) {
  process.stdin.setEncoding('utf8');
  process.stdin.on('data', (d) => {
    gos += d.split('\n').filter((l) => l === 'GO').length;
    goWaiter?.();
  });
}
async function awaitGo(what) {
  if (!spec.lockstep) return;
  process.stdout.write(`WAIT ${what}\n`);
  while (gos === 0) await new Promise((r) => (goWaiter = r));
  goWaiter = null;
  gos--;
}

// ---------- main ----------

const hardStop = setTimeout(() => {
  log('hard time limit reached; exiting');
  process.exit(3);
}, spec.timeLimitMs ?? 300_000);
hardStop.unref();

const state = { held: [] };
try {
  for (const sc of spec.scenarios) {
    let result;
    await awaitGo(sc.label ?? sc.kind);
    const scStart = performance.now();
    try {
      const quiet = spec.quietWaitMs && sc.kind !== 'release' ? await waitQuiet() : undefined;
      if (sc.kind === 'throughput') result = await throughput(sc, state.held.length);
      else if (sc.kind === 'rtt') result = await rtt(sc);
      else if (sc.kind === 'idle') result = await idle(sc, state);
      else if (sc.kind === 'storm') result = await storm(sc);
      else if (sc.kind === 'release') {
        const n = state.held.length;
        await closeAll(state.held, 10000);
        state.held = [];
        await sleep(300);
        result = { kind: 'release', label: sc.label, closed: n };
      }
      else throw new Error(`unknown scenario ${sc.kind}`);
      if (quiet) Object.assign(result, quiet);
    } catch (err) {
      result = { kind: sc.kind, label: sc.label, error: String(err?.message ?? err) };
      log(`${sc.label ?? sc.kind} failed: ${result.error}`);
    }
    if (firstBad) result.firstBad = firstBad;
    if (firstOther) result.error = `server answered with an error: ${firstOther}`;
    result.otherPushes = others;
    firstBad = firstOther = undefined;
    others = 0;
    log(`${sc.label ?? sc.kind} done in ${((performance.now() - scStart) / 1000).toFixed(1)} s`);
    process.stdout.write(`RESULT ${JSON.stringify(result)}\n`);
  }
} finally {
  if (state.held.length) await closeAll(state.held, 8000);
}
process.stdout.write('DONE\n');
process.exit(0);
