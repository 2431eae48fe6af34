import { SignJWT } from 'jose';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startHerald, type Running } from '../helpers/herald.js';
import { JsonClient, disconnectWatcher, expectError, uid } from '../helpers/json-client.js';
import { TestSocket, refusedStatus } from '../helpers/socket.js';

/**
 * One test per limit of docs/operations.md: each shows the typed error or close code,
 * and that a pair of peers that did nothing wrong keeps relaying afterwards.
 */


/** A seed sender and reader, joined, after a relay round trip. */
async function seedPair(ws: string, headers: Record<string, string> = {}) {
  const room = uid('room');
  const user = uid('u');
  const sender = await TestSocket.open(`${ws}/webrtc/sender/${room}`, { headers });
  const reader = await TestSocket.open(`${ws}/webrtc/reader/${user}`, { headers });
  reader.send(`join|${room}`);
  expect(await sender.nextStarting('join|')).toBe(`join|${user}`);
  await seedRoundTrip({ sender, reader, room, user });
  return { sender, reader, room, user };
}

let tag = 0;
async function seedRoundTrip(p: { sender: TestSocket; reader: TestSocket; room: string; user: string }) {
  const t = `t${++tag}`;
  p.sender.send(`offer|${p.user}|${t}`);
  expect(await p.reader.next((m) => m.endsWith(`|${t}`))).toBe(`offer|${p.room}|${t}`);
  p.reader.send(`answer|${p.room}|${t}`);
  expect(await p.sender.next((m) => m.endsWith(`|${t}`))).toBe(`answer|${p.user}|${t}`);
}

/** Two JSON mesh peers in one room, after a round trip. */
async function jsonPair(ws: string, headers: Record<string, string> = {}) {
  const room = uid('room');
  const a = new JsonClient(await TestSocket.open(`${ws}/ws`, { headers }));
  const b = new JsonClient(await TestSocket.open(`${ws}/ws`, { headers }));
  await a.hello();
  await b.hello();
  await a.join(room, 'peer');
  await b.join(room, 'peer');
  await jsonRoundTrip({ a, b, room });
  return { a, b, room };
}

async function jsonRoundTrip(p: { a: JsonClient; b: JsonClient; room: string }) {
  const t = `t${++tag}`;
  await p.a.signal(p.room, p.b.peerId, { tag: `${t}a` });
  expect((await p.b.nextSignal(`${t}a`)).from).toBe(p.a.peerId);
  await p.b.signal(p.room, p.a.peerId, { tag: `${t}b` });
  expect((await p.a.nextSignal(`${t}b`)).from).toBe(p.b.peerId);
}

/** Sockets opened by a test, closed after it. */
const opened: { ws: { close(): void } }[] = [];
function track<T extends { ws: { close(): void } } | JsonClient>(x: T): T {
  opened.push(x instanceof JsonClient ? x.socket : (x as any));
  return x;
}
afterEach(() => {
  for (const s of opened.splice(0)) s.ws.close();
});

describe('origin allow-list', () => {
  let server: Running;
  beforeAll(async () => {
    server = await startHerald({ allowedOrigins: 'https://good.example,https://also.example' });
  });
  afterAll(() => server.stop());

  it('a seed upgrade from another origin is refused with 403; an allowed origin works; others are untouched', async () => {
    const pair = await seedPair(server.ws, { Origin: 'https://good.example' });
    track(pair.sender), track(pair.reader);
    expect(await refusedStatus(`${server.ws}/webrtc/sender/${uid('room')}`, { Origin: 'https://evil.example' })).toBe(403);
    expect(await refusedStatus(`${server.ws}/webrtc/reader/${uid('u')}`, { Origin: 'https://good.example.evil.example' })).toBe(403);
    await seedRoundTrip(pair);
  });

  it('a /ws socket from another origin gets error forbidden and close 4403; an allowed origin works', async () => {
    const pair = await jsonPair(server.ws, { Origin: 'https://also.example' });
    track(pair.a), track(pair.b);
    const evil = await TestSocket.open(`${server.ws}/ws`, { headers: { Origin: 'https://evil.example' } });
    const error = await evil.nextJson('error');
    expect(error.code).toBe('forbidden');
    expect(error.message).toMatch(/origin/);
    expect((await evil.closed).code).toBe(4403);
    await jsonRoundTrip(pair);
  });

  it('HTTP CORS follows the same list', async () => {
    const good = await fetch(`${server.http}/healthz`, { headers: { Origin: 'https://good.example' } });
    expect(good.headers.get('access-control-allow-origin')).toBe('https://good.example');
    const evil = await fetch(`${server.http}/healthz`, { headers: { Origin: 'https://evil.example' } });
    expect(evil.headers.get('access-control-allow-origin')).toBeNull();
  });
});

describe('max frame size', () => {
  let server: Running;
  beforeAll(async () => {
    server = await startHerald({ maxFrameBytes: 1024, maxSignalBytes: 900 });
  });
  afterAll(() => server.stop());

  it('seed: a frame over the cap closes that socket with 1009; one under it relays; others are untouched', async () => {
    const bystanders = await seedPair(server.ws);
    track(bystanders.sender), track(bystanders.reader);
    const pair = await seedPair(server.ws);
    track(pair.reader);
    pair.sender.send(`offer|${pair.user}|${'x'.repeat(900)}`);
    expect(await pair.reader.next()).toBe(`offer|${pair.room}|${'x'.repeat(900)}`);
    pair.sender.send(`offer|${pair.user}|${'x'.repeat(1100)}`);
    expect((await pair.sender.closed).code).toBe(1009);
    expect(await pair.reader.next()).toBe('leaveline');
    expect(pair.reader.received.filter((m) => m.length > 1000)).toEqual([]);
    await seedRoundTrip(bystanders);
  });

  it('json: a frame over the cap closes with 1009; a signal over the signal cap is too-large', async () => {
    const bystanders = await jsonPair(server.ws);
    track(bystanders.a), track(bystanders.b);
    const pair = await jsonPair(server.ws);
    track(pair.b);
    await expectError(pair.a.signal(pair.room, pair.b.peerId, { pad: 'y'.repeat(850) }), 'too-large');
    pair.a.signalNoAck(pair.room, pair.b.peerId, { pad: 'z'.repeat(1100) });
    expect((await pair.a.closed).code).toBe(1009);
    await jsonRoundTrip(bystanders);
    // (A dropped JSON peer is held for resume, so b hears no peer-left yet; it got no oversize signal.)
    expect(pair.b.pendingJson().filter((m) => m.type === 'signal')).toEqual([]);
  });
});

describe('message rate (token bucket)', () => {
  let server: Running;
  beforeAll(async () => {
    server = await startHerald({ rateBurst: 5, ratePerSecond: 1 });
  });
  afterAll(() => server.stop());

  it('seed: over the burst is error|rate-limited; abuse continuing closes 4429; others untouched', async () => {
    const bystanders = await seedPair(server.ws);
    track(bystanders.sender), track(bystanders.reader);
    // seedPair spent 1 token of the sender and 2 of the reader (join + answer).
    const pair = await seedPair(server.ws);
    track(pair.reader);
    for (let i = 0; i < 8; i++) pair.sender.send(`offer|${pair.user}|burst-${i}`);
    expect(await pair.sender.next()).toMatch(/^error\|rate-limited\|/);
    // The first messages, within the burst, were relayed in order.
    for (let i = 0; i < 4; i++) expect(await pair.reader.next()).toBe(`offer|${pair.room}|burst-${i}`);
    for (let i = 0; i < 30; i++) pair.sender.send(`offer|${pair.user}|abuse-${i}`);
    expect((await pair.sender.closed).code).toBe(4429);
    expect(await pair.reader.next((m) => m === 'leaveline')).toBe('leaveline');
    await seedRoundTrip(bystanders);
  });

  it('json: over the burst is a rate-limited error; abuse continuing closes 4429; others untouched', async () => {
    const bystanders = await jsonPair(server.ws);
    track(bystanders.a), track(bystanders.b);
    const pair = await jsonPair(server.ws);
    track(pair.b);
    for (let i = 0; i < 8; i++) pair.a.signalNoAck(pair.room, pair.b.peerId, { tag: `burst-${i}` });
    const error = await pair.a.nextJson('error');
    expect(error.code).toBe('rate-limited');
    expect(error.id).toBeUndefined();
    expect((await pair.b.nextSignal('burst-0')).from).toBe(pair.a.peerId);
    for (let i = 0; i < 30; i++) pair.a.signalNoAck(pair.room, pair.b.peerId, { tag: `abuse-${i}` });
    expect((await pair.a.closed).code).toBe(4429);
    await jsonRoundTrip(bystanders);
  });
});

describe('connections per client address', () => {
  let server: Running;
  let proxied: Running;
  beforeAll(async () => {
    server = await startHerald({ maxConnectionsPerIp: 2 });
    proxied = await startHerald({ maxConnectionsPerIp: 2, trustProxy: 'true' });
  });
  afterAll(async () => {
    await server.stop();
    await proxied.stop();
  });

  /** Waits until the server has let go of every socket from the last test (they share 127.0.0.1). */
  async function idle(r: Running) {
    const perIp = r.herald.gateway.admission.perIp;
    for (let i = 0; perIp.size > 0; i++) {
      if (i > 200) throw new Error(`sockets still counted: ${JSON.stringify([...perIp])}`);
      await new Promise((res) => setTimeout(res, 10));
    }
  }

  it('seed: the third connection from one address is refused with 429; the first two keep relaying', async () => {
    await idle(server);
    const pair = await seedPair(server.ws);
    track(pair.sender), track(pair.reader);
    expect(await refusedStatus(`${server.ws}/webrtc/reader/${uid('u')}`)).toBe(429);
    // Without HERALD_TRUST_PROXY, X-Forwarded-For is ignored: it cannot buy more slots.
    expect(await refusedStatus(`${server.ws}/webrtc/reader/${uid('u')}`, { 'X-Forwarded-For': '203.0.113.9' })).toBe(429);
    await seedRoundTrip(pair);
  });

  it('json: the third is refused with 429 at accept; a freed slot can be reused', async () => {
    await idle(server);
    const pair = await jsonPair(server.ws);
    track(pair.b);
    expect(await refusedStatus(`${server.ws}/ws`)).toBe(429);
    await jsonRoundTrip(pair);
    await pair.a.close();
    // Once the server has seen the close, the slot is free again.
    const perIp = server.herald.gateway.admission.perIp;
    for (let i = 0; (perIp.get('127.0.0.1') ?? 0) > 1; i++) {
      if (i > 200) throw new Error('slot never released');
      await new Promise((res) => setTimeout(res, 10));
    }
    const again = track(new JsonClient(await TestSocket.open(`${server.ws}/ws`)));
    await again.hello();
  });

  it('upgrades racing in parallel cannot all slip under the cap (even while tokens are checked)', async () => {
    const withSecret = await startHerald({ maxConnectionsPerIp: 2, secret: '0123456789abcdef0123' });
    try {
      const token = await new SignJWT({ room: '*', roles: ['viewer'] })
        .setProtectedHeader({ alg: 'HS256' })
        .setSubject('s')
        .setExpirationTime('5m')
        .sign(new TextEncoder().encode('0123456789abcdef0123'));
      // Make the token check slow (as on a loaded machine) so that all upgrades overlap it.
      const tokens = withSecret.herald.tokens!;
      const verify = tokens.verify.bind(tokens);
      tokens.verify = async (t) => {
        await new Promise((r) => setTimeout(r, 150));
        return verify(t);
      };
      // Reader ids in the token's own id space (sub `s`), see docs/security.md "Peer ids".
      const attempts = Array.from({ length: 8 }, (_, i) => new TestSocket(`${withSecret.ws}/webrtc/reader/s~r${i}?token=${token}`));
      const results = await Promise.allSettled(attempts.map((s) => s.opened));
      expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(2);
      const refused = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected').map((r) => String(r.reason.message));
      expect(refused).toEqual(Array(6).fill('upgrade refused: 429'));
      for (const s of attempts) s.ws.close();
    } finally {
      await withSecret.stop();
    }
  });

  it('behind a trusted proxy, X-Forwarded-For addresses are counted separately', async () => {
    const a = { 'X-Forwarded-For': '198.51.100.1, 10.0.0.1' };
    const b = { 'X-Forwarded-For': '198.51.100.2' };
    const pairA = await seedPair(proxied.ws, a);
    track(pairA.sender), track(pairA.reader);
    // A third socket for address A is refused, on either protocol...
    expect(await refusedStatus(`${proxied.ws}/webrtc/reader/${uid('u')}`, a)).toBe(429);
    const thirdA = await TestSocket.open(`${proxied.ws}/ws`, { headers: a });
    expect((await thirdA.nextJson('error')).code).toBe('rate-limited');
    expect((await thirdA.closed).code).toBe(4429);
    // ...while address B, through the same proxy, still gets its own two.
    const pairB = await jsonPair(proxied.ws, b);
    track(pairB.a), track(pairB.b);
    expect(await refusedStatus(`${proxied.ws}/webrtc/reader/${uid('u')}`, b)).toBe(429);
    await seedRoundTrip(pairA);
    await jsonRoundTrip(pairB);
  });
});

describe('rooms per connection and peers per room', () => {
  let server: Running;
  beforeAll(async () => {
    server = await startHerald({ maxRoomsPerConnection: 2, maxPeersPerRoom: 3 });
  });
  afterAll(() => server.stop());

  it('json: a third room is forbidden; the connection stays in its two rooms', async () => {
    const pair = await jsonPair(server.ws);
    track(pair.a), track(pair.b);
    const second = uid('room');
    await pair.a.join(second, 'peer');
    const err = await expectError(pair.a.join(uid('room'), 'peer'), 'forbidden');
    expect(err.message).toMatch(/at most 2 rooms/);
    await jsonRoundTrip(pair);
    const c = track(await JsonClient.connect(server.ws));
    await c.join(second, 'peer');
    await c.signal(second, pair.a.peerId, { tag: 'second' });
    expect((await pair.a.nextSignal('second')).room).toBe(second);
  });

  it('json: the member over the cap gets room-full; the members inside keep relaying', async () => {
    const pair = await jsonPair(server.ws);
    track(pair.a), track(pair.b);
    const c = track(await JsonClient.connect(server.ws));
    await c.join(pair.room, 'peer');
    const d = track(await JsonClient.connect(server.ws));
    await expectError(d.join(pair.room, 'peer'), 'room-full');
    await expectError(d.join(pair.room, 'viewer'), 'room-full');
    await jsonRoundTrip(pair);
    await c.signal(pair.room, pair.a.peerId, { tag: 'c' });
    expect((await pair.a.nextSignal('c')).from).toBe(c.peerId);
    expect(pair.a.pendingJson().filter((m) => m.type === 'peer-joined' && m.peer.id === d.peerId)).toEqual([]);
  });

  it('seed: a reader joining a full room gets error|room-full; the room keeps working', async () => {
    const pair = await seedPair(server.ws);
    track(pair.sender), track(pair.reader);
    const second = track(await TestSocket.open(`${server.ws}/webrtc/reader/${uid('u')}`));
    second.send(`join|${pair.room}`);
    await pair.sender.nextStarting('join|');
    const late = track(await TestSocket.open(`${server.ws}/webrtc/reader/${uid('u')}`));
    late.send(`join|${pair.room}`);
    expect(await late.next()).toMatch(/^error\|room-full\|/);
    await seedRoundTrip(pair);
    expect(pair.sender.pending.filter((m) => m.startsWith('join|'))).toEqual([]);
  });
});

describe('join timeout', () => {
  let server: Running;
  beforeAll(async () => {
    server = await startHerald({ joinTimeoutMs: 800 });
  });
  afterAll(() => server.stop());

  it('seed: a reader that never joins gets error|join-timeout and close 4408; joined peers stay', async () => {
    // Connected before the idler, so their own timeout would have fired first had it applied.
    const pair = await seedPair(server.ws);
    track(pair.sender), track(pair.reader);
    const idle = await TestSocket.open(`${server.ws}/webrtc/reader/${uid('u')}`);
    expect(await idle.next()).toMatch(/^error\|join-timeout\|/);
    expect((await idle.closed).code).toBe(4408);
    await seedRoundTrip(pair);
  });

  it('json: a connection that says hello but never joins gets an error, then close 4408; so does a silent one', async () => {
    const pair = await jsonPair(server.ws);
    track(pair.a), track(pair.b);
    // The hello is not awaited: on a loaded machine its ack may lose the race with the timer.
    const hello = new JsonClient(await TestSocket.open(`${server.ws}/ws`));
    hello.send({ type: 'hello', id: 1 });
    const silent = await TestSocket.open(`${server.ws}/ws`);
    const error = await hello.nextJson('error');
    expect(error.message).toMatch(/no room joined in time/);
    expect(error.code).toBe('join-timeout'); // the same code as seed's error|join-timeout
    expect((await hello.closed).code).toBe(4408);
    expect((await silent.nextJson('error')).message).toMatch(/no room joined in time/);
    expect((await silent.closed).code).toBe(4408);
    await jsonRoundTrip(pair);
  });
});

describe('resume queue cap', () => {
  let server: Running;
  beforeAll(async () => {
    server = await startHerald({ resumeQueueMax: 2, resumeGraceMs: 20000 });
  });
  afterAll(() => server.stop());

  it('json: past the cap the sender is told expired; on resume the queued ones arrive in order; others untouched', async () => {
    const dropped = disconnectWatcher(server.herald.hub);
    const { a, b, room } = await jsonPair(server.ws);
    track(a);
    const c = track(await JsonClient.connect(server.ws));
    await c.join(room, 'peer');
    const gone = dropped(b.peerId);
    await b.terminate();
    await gone;
    await a.signal(room, b.peerId, { tag: 'q1' });
    await a.signal(room, b.peerId, { tag: 'q2' });
    await a.signal(room, b.peerId, { tag: 'q3' });
    const expired = await a.nextJson('expired');
    expect(expired).toEqual({ type: 'expired', room, to: b.peerId });
    // c, in the same room, relays as before and was told nothing.
    await c.signal(room, a.peerId, { tag: 'from-c' });
    expect((await a.nextSignal('from-c')).from).toBe(c.peerId);
    expect(c.pendingJson().filter((m) => m.type === 'expired' || m.type === 'peer-left')).toEqual([]);
    const back = track(new JsonClient(await TestSocket.open(`${server.ws}/ws`)));
    const welcome = await back.hello({ resumeToken: b.resumeToken });
    expect(welcome.resumed).toBe(true);
    expect((await back.nextJson('signal')).data.tag).toBe('q1');
    expect((await back.nextJson('signal')).data.tag).toBe('q2');
    await a.signal(room, b.peerId, { tag: 'live' });
    expect((await back.nextJson('signal')).data.tag).toBe('live');
  });

  it('seed sender to a dropped JSON viewer: past the cap, error|expired', async () => {
    const dropped = disconnectWatcher(server.herald.hub);
    const room = uid('room');
    const sender = track(await TestSocket.open(`${server.ws}/webrtc/sender/${room}`));
    const v = await JsonClient.connect(server.ws);
    await v.join(room, 'viewer');
    await sender.nextStarting(`join|${v.peerId}`);
    const gone = dropped(v.peerId);
    await v.terminate();
    await gone;
    for (let i = 1; i <= 3; i++) sender.send(`offer|${v.peerId}|o${i}`);
    expect(await sender.next()).toBe(`error|expired|messages to ${v.peerId} were not delivered`);
  });
});
