import { SignJWT } from 'jose';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startHerald, type Running } from '../helpers/herald.js';
import { waitFor } from '../helpers/instances.js';
import { refusedStatus } from '../helpers/socket.js';
import { tokenMinter } from '../helpers/tokens.js';
import { YSocket } from '../helpers/ywebrtc-targets.js';

/**
 * What Herald adds to y-webrtc's protocol (docs/y-webrtc.md): tokens refused at the upgrade
 * (y-webrtc reconnects at once after a close, so a refusal must be an HTTP status), topics
 * bounded by the token, caps, bad input, heartbeat, drain, metrics. Real sockets, in-process
 * Herald; the reference server has none of this.
 */

const SECRET = 'y-webrtc-test-secret-0123456789';
const mint = tokenMinter(SECRET);
let seq = 0;
const uid = (p: string) => `${p}-${++seq}-${Math.random().toString(36).slice(2, 8)}`;
const sockets: YSocket[] = [];

async function connect(url: string): Promise<YSocket> {
  const s = await YSocket.connect(url);
  sockets.push(s);
  return s;
}

/** A socket subscribed to `topics`, confirmed (its marker came back after the subscribe). */
async function subscribed(url: string, ...topics: string[]): Promise<YSocket> {
  const s = await connect(url);
  s.subscribe(...topics);
  expect(await s.drain()).toEqual([]);
  return s;
}

/** One counter of herald_errors_total for the ywebrtc protocol. */
async function errors(server: Running, code: string): Promise<number> {
  const text = await (await fetch(`${server.http}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(`herald_errors_total{code="${code}",protocol="ywebrtc"}`));
  return Number(line?.split(' ')[1] ?? 0);
}

afterEach(() => {
  for (const s of sockets.splice(0)) s.ws.terminate();
});

describe('y-webrtc tokens', () => {
  let server: Running;
  let url: string;
  beforeAll(async () => {
    server = await startHerald({ secret: SECRET, allowedOrigins: 'http://app.example', maxConnectionsPerIp: 0 });
    url = `${server.ws}/y-webrtc`;
  });
  afterAll(() => server.stop());

  it('a missing, badly signed or expired token is refused at the upgrade with 401', async () => {
    expect(await refusedStatus(url)).toBe(401);
    expect(await refusedStatus(`${url}?token=${await mint('u', '*', ['peer'], 'another-secret-0123456789abcdef')}`)).toBe(401);
    const expired = await new SignJWT({ room: '*', roles: ['peer'] })
      .setProtectedHeader({ alg: 'HS256' })
      .setSubject('u')
      .setExpirationTime(Math.floor(Date.now() / 1000) - 60)
      .sign(new TextEncoder().encode(SECRET));
    expect(await refusedStatus(`${url}?token=${expired}`)).toBe(401);
    expect(await refusedStatus(`${url}?token=not.a.jwt`)).toBe(401);
  });

  it('a token without the peer role, or a forbidden origin, is refused with 403', async () => {
    expect(await refusedStatus(`${url}?token=${await mint('u', '*', ['viewer', 'broadcaster', 'admin'])}`)).toBe(403);
    const good = await mint('u', '*', ['peer']);
    expect(await refusedStatus(`${url}?token=${good}`, { origin: 'http://evil.example' })).toBe(403);
    // The same token from the allowed origin opens (any further query string is allowed).
    const s = await connect(`${url}?token=${good}&x=1`);
    s.json({ type: 'ping' });
    expect(await s.next()).toBe('{"type":"pong"}');
  });

  it("a token's room bounds its topics: the allowed one works, a forbidden one in the same subscribe is skipped and counted", async () => {
    const [mine, other] = [uid('mine'), uid('other')];
    const before = await errors(server, 'forbidden');
    const a = await subscribed(`${url}?token=${await mint('a', mine, ['peer'])}`, other, mine);
    const watcher = await subscribed(`${url}?token=${await mint('w', '*', ['peer'])}`, other, mine);
    a.publish(mine, { n: 1 });
    a.publish(other, { n: 2 }); // not subscribed: dropped
    expect(await watcher.nextMessage()).toMatchObject({ topic: mine, n: 1, clients: 2 });
    expect(await a.nextMessage()).toMatchObject({ topic: mine, n: 1, clients: 2 });
    expect(await watcher.drain()).toEqual([]);
    expect(await a.drain()).toEqual([]);
    // The refused subscribe and the refused publish; the socket stays open.
    expect(await errors(server, 'forbidden')).toBe(before + 2);
  });

  it('a connection lives no longer than its token: closed 4401 at exp', async () => {
    const soon = await new SignJWT({ room: '*', roles: ['peer'] })
      .setProtectedHeader({ alg: 'HS256' })
      .setSubject('u')
      .setExpirationTime(Math.floor(Date.now() / 1000) + 2)
      .sign(new TextEncoder().encode(SECRET));
    const s = await connect(`${url}?token=${soon}`);
    expect((await s.closed).code).toBe(4401);
  });
});

describe('y-webrtc limits and bad input', () => {
  let server: Running;
  let url: string;
  beforeAll(async () => {
    server = await startHerald({ maxRoomsPerConnection: 2, maxPeersPerRoom: 2, maxFrameBytes: 4096, maxSignalBytes: 2048, rateBurst: 30, ratePerSecond: 10 });
    url = `${server.ws}/y-webrtc`;
  });
  afterAll(() => server.stop());

  it('past HERALD_MAX_ROOMS_PER_CONNECTION the extra topics are skipped; the first ones work', async () => {
    const [t1, t2, t3] = [uid('t'), uid('t'), uid('t')];
    const a = await subscribed(url, t1, t2, t3);
    for (const t of [t1, t2, t3]) a.publish(t, { t });
    expect(await a.nextMessage()).toMatchObject({ topic: t1, clients: 1 });
    expect(await a.nextMessage()).toMatchObject({ topic: t2, clients: 1 });
    expect(await a.drain()).toEqual([]);
  });

  it('past HERALD_MAX_PEERS_PER_ROOM a subscriber is not admitted and counted room-full; the others are untouched', async () => {
    const topic = uid('full');
    const before = await errors(server, 'room-full');
    const a = await subscribed(url, topic);
    const b = await subscribed(url, topic);
    const c = await connect(url);
    c.subscribe(topic);
    await waitFor('room-full counted', async () => (await errors(server, 'room-full')) === before + 1);
    a.publish(topic, { n: 1 });
    expect(await a.nextMessage()).toMatchObject({ n: 1, clients: 2 });
    expect(await b.nextMessage()).toMatchObject({ n: 1, clients: 2 });
    c.json({ type: 'ping' });
    expect(await c.next()).toBe('{"type":"pong"}'); // nothing before it
  });

  it('invalid topics (too long, control characters, lone surrogates, empty) are skipped; valid ones in the same list work', async () => {
    const good = uid('good');
    const a = await connect(url);
    a.send(JSON.stringify({ type: 'subscribe', topics: ['x'.repeat(129), 'a\u0001b', '\uD800', ''] }));
    a.subscribe(good);
    a.publish(good, { ok: 1 });
    expect(await a.nextMessage()).toMatchObject({ topic: good, ok: 1, clients: 1 });
    for (const t of ['x'.repeat(129), 'a\u0001b', '']) a.publish(t, { bad: 1 });
    a.json({ type: 'ping' });
    expect(await a.next()).toBe('{"type":"pong"}');
  });

  it('a publish over HERALD_MAX_SIGNAL_BYTES is dropped and counted too-large; the socket stays', async () => {
    const topic = uid('big');
    const before = await errors(server, 'too-large');
    const a = await subscribed(url, topic);
    const b = await subscribed(url, topic);
    a.publish(topic, { blob: 'x'.repeat(3000) });
    a.publish(topic, { small: 1 });
    expect(await b.nextMessage()).toMatchObject({ small: 1 });
    expect(await errors(server, 'too-large')).toBe(before + 1);
  });

  it('a frame over HERALD_MAX_FRAME_BYTES closes only that socket, with 1009', async () => {
    const topic = uid('frame');
    const a = await subscribed(url, topic);
    const b = await subscribed(url, topic);
    a.send('x'.repeat(5000));
    expect((await a.closed).code).toBe(1009);
    b.publish(topic, { still: 1 });
    expect(await b.nextMessage()).toMatchObject({ still: 1, clients: 1 });
  });

  it('bad input (non-JSON, non-objects, binary, missing fields, wrong types) is dropped and counted; others are not disturbed', async () => {
    const topic = uid('bad');
    const before = await errors(server, 'bad-request');
    const a = await subscribed(url, topic);
    const b = await subscribed(url, topic);
    const inputs = ['{', 'null', '[]', '7', '{"topics":[]}', '{"type":"subscribe","topics":"t"}', '{"type":"unsubscribe","topics":{}}'];
    for (const text of inputs) a.send(text);
    a.send(Buffer.from('{"type":"ping"}'));
    a.publish(topic, { after: 1 });
    expect(await b.nextMessage()).toMatchObject({ after: 1, clients: 2 });
    expect(await a.nextMessage()).toMatchObject({ after: 1, clients: 2 });
    expect(await errors(server, 'bad-request')).toBe(before + inputs.length + 1);
  });

  it('over the rate burst messages are dropped; abuse continuing closes 4429; other sockets untouched', async () => {
    const topic = uid('rate');
    const a = await subscribed(url, topic);
    const b = await subscribed(url, topic);
    for (let i = 0; i < 200; i++) b.json({ type: 'ping' });
    expect((await b.closed).code).toBe(4429);
    a.publish(topic, { ok: 1 });
    expect(await a.nextMessage()).toMatchObject({ ok: 1, clients: 1 });
  });
});

describe('y-webrtc heartbeat, join timeout, drain and metrics', () => {
  it('past the per-address cap the upgrade is refused with 429; the open socket keeps working', async () => {
    const server = await startHerald({ maxConnectionsPerIp: 1 });
    try {
      const url = `${server.ws}/y-webrtc`;
      const topic = uid('cap');
      const a = await subscribed(url, topic);
      expect(await refusedStatus(url)).toBe(429);
      a.publish(topic, { ok: 1 });
      expect(await a.nextMessage()).toMatchObject({ ok: 1, clients: 1 });
    } finally {
      await server.stop();
    }
  });

  it('a socket that answers no ping is dropped; one that does stays; one that subscribes nothing is closed 4408', async () => {
    const server = await startHerald({ heartbeatMs: 1000, joinTimeoutMs: 1500 });
    try {
      const url = `${server.ws}/y-webrtc`;
      const live = await subscribed(url, uid('hb'));
      const deaf = new YSocket(url, { autoPong: false });
      sockets.push(deaf);
      await deaf.opened;
      deaf.subscribe(uid('hb'));
      let pings = 0;
      deaf.ws.on('ping', () => pings++);
      const idle = await connect(url);
      expect((await idle.closed).code).toBe(4408);
      const closed = await deaf.closed;
      expect(closed.code).toBe(1006); // terminated
      expect(pings).toBeGreaterThanOrEqual(1);
      live.json({ type: 'ping' });
      expect(await live.next()).toBe('{"type":"pong"}');
    } finally {
      await server.stop();
    }
  });

  it('metrics count y-webrtc connections; drain refuses upgrades with 503 and closes sockets with 1001', async () => {
    const server = await startHerald({ drainGraceMs: 1000, drainDeadlineMs: 2000 });
    const url = `${server.ws}/y-webrtc`;
    const topic = uid('drain');
    const a = await subscribed(url, topic);
    const b = await subscribed(url, topic);
    const metrics = await (await fetch(`${server.http}/metrics`)).text();
    expect(metrics).toContain('herald_connections{protocol="ywebrtc"} 2');
    const rooms = (await (await fetch(`${server.http}/api/rooms?q=${encodeURIComponent(topic)}`)).json()) as { rooms: { id: string; members: number; protocols: Record<string, number> }[] };
    expect(rooms.rooms.find((r) => r.id === topic)).toMatchObject({ members: 2, protocols: { ywebrtc: 2 } });
    const stopped = server.herald.stop();
    expect(await refusedStatus(url)).toBe(503);
    expect((await a.closed).code).toBe(1001);
    expect((await b.closed).code).toBe(1001);
    await stopped;
  });
});
