import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHerald, type Running } from '../helpers/herald.js';
import { JsonClient, uid } from '../helpers/json-client.js';

/**
 * Malformed JSON-protocol frames, generated deterministically from a seeded PRNG. Each must
 * be answered with exactly one `bad-request` (echoing the id when the frame carried a valid
 * one), leave the socket usable, and reach no one else. Validity below is the protocol's, as
 * docs/protocol.md states it, written out independently of the server's schemas.
 */

const SEED = 0x5eed_f00d;
const FRAME_CAP = 64 * 1024;

/** mulberry32: small, fast, deterministic. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

interface Case {
  name: string;
  frame: string | Buffer;
  /** The id the error must echo; undefined when the frame carried no valid id. */
  id: number | undefined;
}

const TYPES = ['hello', 'join', 'leave', 'signal'] as const;
type Type = (typeof TYPES)[number];

const validId = (v: unknown) => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
const depth = (v: unknown): number =>
  v === null || typeof v !== 'object' ? 0 : 1 + Math.max(0, ...(Array.isArray(v) ? v : Object.values(v)).map(depth));
/** Which values each field accepts (docs/protocol.md). */
const VALID: Record<string, (v: unknown) => boolean> = {
  type: (v) => typeof v === 'string' && (TYPES as readonly string[]).includes(v),
  id: validId,
  peerId: (v) => typeof v === 'string' && /^[A-Za-z0-9_.:@~-]{1,64}$/.test(v),
  resumeToken: (v) => typeof v === 'string' && v.length >= 1 && v.length <= 128,
  room: (v) => typeof v === 'string' && v.length >= 1 && v.length <= 128 && !/[\u0000-\u001f\u007f]/.test(v),
  role: (v) => v === 'broadcaster' || v === 'viewer' || v === 'peer',
  to: (v) => typeof v === 'string' && v.length >= 1 && v.length <= 200,
  data: (v) => v !== undefined && depth(v) <= 32,
};
const FIELDS: Record<Type, { required: string[]; optional: string[] }> = {
  hello: { required: ['id'], optional: ['peerId', 'resumeToken'] },
  join: { required: ['id', 'room', 'role'], optional: [] },
  leave: { required: ['id', 'room'], optional: [] },
  signal: { required: ['room', 'to', 'data'], optional: ['id'] },
};

const nest = (levels: number, leaf: unknown = 0): unknown => {
  let v = leaf;
  for (let i = 0; i < levels; i++) v = i % 2 ? { k: v } : [v];
  return v;
};

function generate(room: string, to: string): Case[] {
  const rnd = prng(SEED);
  const int = (lo: number, hi: number) => lo + Math.floor(rnd() * (hi - lo + 1));
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)]!;
  let nextId = 1000;
  const cases: Case[] = [];

  const str = (len: number) => {
    const alphabet = 'abcXYZ019 _-/|\\"\'\u0000\u0007\u007f\u00e9\u20ac\ud83c\udfa5{}[]:,';
    let s = '';
    for (let i = 0; i < len; i++) s += alphabet[int(0, alphabet.length - 1)];
    return s;
  };
  const junk = (): unknown =>
    pick<() => unknown>([
      () => null,
      () => pick([true, false]),
      () => pick([0, -1, 1, 1.5, -0.5, 1e21, 1e308, -1e308, 2 ** 53, Number.MAX_SAFE_INTEGER]),
      () => pick(['', ' ', 'x', 'hello', 'HELLO', 'peer ', 'a/b', '\u0000']),
      () => str(int(1, 300)),
      () => 'y'.repeat(int(129, 40_000)),
      () => [],
      () => pick([[1], [null], ['peer'], [[[]]]]),
      () => ({}),
      () => pick<unknown>([{ a: 1 }, { type: 'hello' }, { id: 1 }, { toString: 'x' }]),
      () => nest(int(2, 40)),
    ])();
  const valid = (type: Type, id = nextId++): Record<string, unknown> => {
    switch (type) {
      case 'hello':
        return { type, id };
      case 'join':
        return { type, id, room, role: 'peer' };
      case 'leave':
        return { type, id, room };
      case 'signal':
        return { type, id, room, to, data: { tag: 'never' } };
    }
  };
  const add = (name: string, msg: Record<string, unknown>) =>
    cases.push({ name, frame: JSON.stringify(msg), id: validId(msg.id) ? (msg.id as number) : undefined });

  // 1. Every field of every type, given values of the wrong type or out of range.
  for (const type of TYPES) {
    const { required, optional } = FIELDS[type];
    for (const field of [...required, ...optional]) {
      for (let n = 0; n < 12; ) {
        const v = junk();
        if (VALID[field]!(v)) continue;
        n++;
        add(`${type}.${field} = ${JSON.stringify(v)?.slice(0, 40)}`, { ...valid(type), [field]: v });
      }
    }
  }
  // 2. Wrong type names.
  for (const t of ['', 'HELLO', 'Join', 'signal ', 'ack', 'error', 'pong', 'subscribe', 'constructor', '__proto__', 'toString', 'hasOwnProperty']) {
    add(`type ${JSON.stringify(t)}`, { ...valid(pick(TYPES)), type: t });
  }
  for (let n = 0; n < 8; n++) {
    const v = junk();
    if (!VALID.type!(v)) add(`type = ${JSON.stringify(v)?.slice(0, 40)}`, { ...valid(pick(TYPES)), type: v });
  }
  // 3. Missing fields, one at a time and all at once.
  for (const type of TYPES) {
    for (const field of ['type', ...FIELDS[type].required]) {
      const msg = valid(type);
      delete msg[field];
      add(`${type} without ${field}`, msg);
    }
    add(`${type} with only its type`, { type });
  }
  // 4. Extra fields, including the ones prototype pollution rides on (written by hand:
  //    JSON.stringify would not emit `__proto__` as an own key).
  const extraKeys = ['__proto__', 'constructor', 'prototype', 'toString', 'valueOf', 'hasOwnProperty', '__defineGetter__', 'then', 'extra', 'ID'];
  for (const type of TYPES) {
    for (const key of extraKeys) {
      const body = JSON.stringify(valid(type));
      const value = key === '__proto__' ? '{"polluted":"yes","type":"hello"}' : JSON.stringify(junk() ?? null);
      const frame = `{${JSON.stringify(key)}:${value},${body.slice(1)}`;
      cases.push({ name: `${type} + ${key}`, frame, id: JSON.parse(body).id });
    }
  }
  for (const key of ['__proto__', 'constructor']) {
    const id = nextId++;
    cases.push({ name: `only ${key}`, frame: `{"${key}":{"type":"hello","id":${id}},"id":${id}}`, id });
    cases.push({ name: `nested ${key}`, frame: `{"type":"join","id":${id + 1},"room":{"${key}":{"x":1}},"role":"peer"}`, id: id + 1 });
    nextId++;
  }
  // 5. Not objects.
  for (const frame of ['null', 'true', 'false', '0', '-1', '1e999', '"hello"', '""', '[]', '[{"type":"hello","id":1}]', '[null]', '{"type":"hello","id":1}'.repeat(0) + '[1,2,3]']) {
    cases.push({ name: `top-level ${frame.slice(0, 30)}`, frame, id: undefined });
  }
  // 6. Not JSON at all: garbage, and every kind of truncation of a valid message.
  for (const frame of ['', ' ', 'hello', "{'type':'hello'}", '{"type":"hello","id":1,}', '{"type":"hello" "id":1}', 'NaN', '{"id":NaN}', '{"id":Infinity}', 'undefined', '{"type":"hello","id":01}', '\u0000', '{"a":"\\x41"}']) {
    cases.push({ name: `not JSON ${JSON.stringify(frame).slice(0, 30)}`, frame, id: undefined });
  }
  for (let n = 0; n < 16; n++) {
    const body = JSON.stringify(valid(pick(TYPES)));
    const cut = int(1, body.length - 1);
    cases.push({ name: `truncated at ${cut}`, frame: body.slice(0, cut), id: undefined });
  }
  // 6b. SDP-bearing signals (an escape on every line) broken where the relay's raw-data scanner
  //     works: cut inside or right after an escape, an escaped closing quote, bad escapes, raw
  //     control characters, a truncated \u escape.
  {
    const sdp = 'v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\na=x:"q" \\\r\n'.repeat(8);
    const body = JSON.stringify({ type: 'signal', id: nextId++, room, to, data: { type: 'offer', sdp } });
    for (let n = 0; n < 12; n++) {
      const at = body.indexOf('\\', int(60, body.length - 60));
      cases.push({ name: `sdp signal cut inside an escape at ${at + 1}`, frame: body.slice(0, at + 1), id: undefined });
      cases.push({ name: `sdp signal cut after an escape at ${at + 2}`, frame: body.slice(0, at + 2), id: undefined });
    }
    const broken: [string, string][] = [
      ['closing brace missing', body.slice(0, -1)],
      ['closing quote escaped', body.replace(/"\}\}$/, '\\"}}')],
      ['bad escape \\x', body.replace('\\r\\n', '\\x41')],
      ['raw CR LF inside the string', body.replace('\\r\\n', '\r\n')],
      ['truncated \\u escape', body.replace('\\r\\n', '\\u12')],
      ['lone backslash before the end', body.replace(/"\}\}$/, '\\')],
      ['second data member unterminated', body.slice(0, -1) + ',"data":{"sdp":"x}'],
    ];
    for (const [name, frame] of broken) cases.push({ name: `sdp signal: ${name}`, frame, id: undefined });
  }
  // 7. Deep nesting, within the frame cap.
  cases.push({ name: '10k [ balanced', frame: '['.repeat(10_000) + ']'.repeat(10_000), id: undefined });
  cases.push({ name: '10k [ unbalanced', frame: '['.repeat(10_000), id: undefined });
  cases.push({ name: '5k {"a": balanced', frame: '{"a":'.repeat(5_000) + '1' + '}'.repeat(5_000), id: undefined });
  for (const levels of [33, 34, 100, 1000, 10_000, 30_000]) {
    const id = nextId++;
    const data = '['.repeat(levels) + ']'.repeat(levels);
    cases.push({ name: `signal data nested ${levels} deep`, frame: `{"type":"signal","id":${id},"room":"${room}","to":"${to}","data":${data}}`, id });
  }
  for (const levels of [33, 500]) {
    const id = nextId++;
    const data = '{"d":'.repeat(levels) + 'null' + '}'.repeat(levels);
    cases.push({ name: `signal data objects nested ${levels} deep`, frame: `{"type":"signal","id":${id},"room":"${room}","to":"${to}","data":${data}}`, id });
  }
  {
    const id = nextId++;
    cases.push({ name: 'room nested 5k deep', frame: `{"type":"join","id":${id},"room":${'['.repeat(5000)}${']'.repeat(5000)},"role":"peer"}`, id });
    cases.push({ name: 'id nested 5k deep', frame: `{"type":"join","id":${'['.repeat(5000)}1${']'.repeat(5000)},"room":"r","role":"peer"}`, id: undefined });
  }
  // 8. Ids that are not request ids: negative, fractional, huge, strings, other types.
  for (const type of TYPES) {
    for (const bad of [-1, -1000, -0.5, 0.1, 1.5, 2 ** 53, 2 ** 64, 1e21, 1e308, -1e308, '7', '', null, true, [7], { id: 7 }]) {
      add(`${type} id ${JSON.stringify(bad)}`, { ...valid(type), id: bad });
    }
  }
  // 9. Huge strings, just under the frame cap.
  for (const field of ['type', 'room', 'to', 'role', 'peerId', 'extra']) {
    const type: Type = field === 'to' ? 'signal' : field === 'peerId' ? 'hello' : 'join';
    const msg = valid(type);
    msg[field] = 'z'.repeat(FRAME_CAP - 300);
    add(`huge ${field}`, msg);
  }
  {
    const id = nextId++;
    const bigKeys = Array.from({ length: 2000 }, (_, i) => `"k${i}":${i}`).join(',');
    cases.push({ name: 'join + 2000 extra keys', frame: `{"type":"join","id":${id},"room":"r","role":"peer",${bigKeys}}`, id });
  }
  // 10. Binary frames, even when they hold a valid message.
  for (const type of TYPES) cases.push({ name: `binary ${type}`, frame: Buffer.from(JSON.stringify(valid(type))), id: undefined });

  return cases;
}

describe('JSON protocol fuzz', () => {
  let server: Running;
  let a: JsonClient;
  let b: JsonClient;
  const room = uid('fuzz');

  beforeAll(async () => {
    // Generous rate limits: this test sends far more than a real client would, on purpose.
    server = await startHerald({ rateBurst: 1_000_000, ratePerSecond: 1_000_000, joinTimeoutMs: 0 });
    a = await JsonClient.connect(server.ws);
    b = await JsonClient.connect(server.ws);
    await a.join(room, 'peer');
    await b.join(room, 'peer');
    await a.nextJson('peer-joined');
  });
  afterAll(async () => {
    a?.socket.ws.terminate();
    b?.socket.ws.terminate();
    await server?.stop();
  });

  it('generates the same hundreds of malformed frames every run', () => {
    const one = generate(room, 'x');
    const two = generate(room, 'x');
    expect(one.length).toBeGreaterThanOrEqual(300);
    expect(one.map((c) => c.frame.toString())).toEqual(two.map((c) => c.frame.toString()));
    for (const c of one) expect(Buffer.byteLength(c.frame), c.name).toBeLessThan(FRAME_CAP);
  });

  it('answers each with one bad-request, keeps the socket usable, and tells no one else', async () => {
    const cases = generate(room, b.peerId);
    const probes: string[] = [];
    for (const c of cases) {
      a.socket.send(c.frame);
      // A valid request right behind it: it must succeed, and its ack must come right after
      // the error (exactly one reply for the bad frame, nothing else in between).
      const tag = uid('probe');
      probes.push(tag);
      const probeId = a.takeId();
      a.send({ type: 'signal', id: probeId, room, to: b.peerId, data: { tag } });
      const reply = await a.nextMessage();
      const expected: Record<string, unknown> = { type: 'error', code: 'bad-request', message: expect.any(String) };
      if (c.id !== undefined) expected.id = c.id;
      expect(reply, c.name).toEqual(expected);
      expect(await a.nextMessage(), c.name).toEqual({ type: 'ack', id: probeId });
    }
    // b got the probes, in order, and nothing else: the last probe came after the last bad frame.
    for (const tag of probes) await b.nextSignal(tag);
    expect(b.pendingJson()).toEqual([]);
    expect(b.receivedJson().filter((m) => !String(m.data?.tag).startsWith('probe')).map((m) => m.type)).toEqual(['ack', 'ack']);
    expect(a.pendingJson()).toEqual([]);
    // No frame polluted a prototype of the (in-process) server.
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect(Object.keys(Object.prototype)).toEqual([]);
  });

  it('answers malformed frames before hello with bad-request too, and hello still works', async () => {
    const c = await JsonClient.open(server.ws);
    try {
      const cases = generate(room, b.peerId).filter((_, i) => i % 5 === 0);
      for (const k of cases) {
        c.socket.send(k.frame);
        const reply = await c.nextMessage();
        expect(reply, k.name).toMatchObject({ type: 'error', code: 'bad-request' });
        expect(reply.id, k.name).toBe(k.id);
      }
      expect(await c.hello()).toMatchObject({ type: 'ack', resumed: false });
      await c.join(room, 'peer');
      const tag = uid('after');
      await c.signal(room, b.peerId, { tag });
      expect(await b.nextSignal(tag)).toMatchObject({ from: c.peerId });
    } finally {
      c.socket.ws.terminate();
    }
  });

  it('relays data holding __proto__ and constructor keys verbatim, polluting nothing', async () => {
    const tag = uid('proto');
    const id = a.takeId();
    a.send(`{"type":"signal","id":${id},"room":"${room}","to":"${b.peerId}","data":{"tag":"${tag}","__proto__":{"polluted":1},"constructor":{"prototype":{"polluted":2}}}}`);
    expect(await a.reply(id)).toEqual({ type: 'ack', id });
    const got = await b.nextSignal(tag);
    expect(Object.keys(got.data)).toEqual(['tag', '__proto__', 'constructor']);
    expect(got.data.constructor).toEqual({ prototype: { polluted: 2 } });
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });

  it('relays an SDP (escapes on every line, quotes, backslashes) exactly as sent', async () => {
    const tag = uid('sdp');
    const sdp = 'v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\na=x:"q" \\ \\\\"\r\n'.repeat(60);
    await a.signal(room, b.peerId, { tag, type: 'offer', sdp });
    expect((await b.nextSignal(tag)).data).toEqual({ tag, type: 'offer', sdp });
  });

  it('relays the data JSON.parse kept when a frame repeats data (the last), never the first', async () => {
    const tag = uid('dup');
    const id = a.takeId();
    a.send(`{"type":"signal","id":${id},"room":"${room}","to":"${b.peerId}","data":{"tag":"${tag}","n":1},"data":{"tag":"${tag}","n":2}}`);
    expect(await a.reply(id)).toEqual({ type: 'ack', id });
    expect((await b.nextSignal(tag)).data).toEqual({ tag, n: 2 });
    // A key written with escapes is the same key to JSON.parse: still the last one wins.
    const tag2 = uid('esc');
    const id2 = a.takeId();
    a.send(`{"type":"signal","id":${id2},"room":"${room}","to":"${b.peerId}","data":{"tag":"${tag2}","n":1},"d\\u0061ta":{"tag":"${tag2}","n":2}}`);
    expect(await a.reply(id2)).toEqual({ type: 'ack', id: id2 });
    expect((await b.nextSignal(tag2)).data).toEqual({ tag: tag2, n: 2 });
  });

  it('relays data nested exactly 32 levels deep (the cap), and refuses 33', async () => {
    const tag = uid('deep');
    const ok = nest(31, tag);
    expect(depth(ok)).toBe(31);
    await a.signal(room, b.peerId, { tag, ok });
    const got = await b.nextSignal(tag);
    expect(got.data.ok).toEqual(ok);
    await expect(a.signal(room, b.peerId, nest(33))).rejects.toMatchObject({ code: 'bad-request' });
  });
});
