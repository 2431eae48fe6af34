import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { Instance, startInstances, waitFor } from '../helpers/instances.js';
import { InstanceClients, uniqueIds } from '../helpers/instance-clients.js';
import { JsonClient } from '../helpers/json-client.js';
import { TestRedis } from '../helpers/redis.js';
import { TestSocket, refusedStatus } from '../helpers/socket.js';

/**
 * The Redis cluster (docs/architecture.md) with real processes: 2–3 Herald instances (`node dist/cli.js serve`) on a
 * redis-server this file starts on its own port, seed-protocol clients spread across them.
 * Every wait is for an event (a frame, a close, an HTTP status), bounded.
 */

let redis: TestRedis;
const instances: Instance[] = [];
const clients = new InstanceClients();
const { open, sender, reader, json } = clients;
/** A room id no other test uses. */
const uniq = uniqueIds();

/** A reader joined to `room`, once the sender (if any) has been told. */
async function joinedReader(i: Instance, user: string, room: string, s?: TestSocket): Promise<TestSocket> {
  const r = await reader(i, user);
  r.send(`join|${room}`);
  if (s) await s.next((m) => m === `join|${user}`);
  return r;
}

beforeAll(async () => {
  redis = await TestRedis.start();
});

afterEach(async () => {
  clients.closeAll();
});

afterAll(async () => {
  await Promise.all(instances.splice(0).map((i) => i.kill()));
  await redis?.stop();
});

async function cluster(n: number, env: Record<string, string> = {}): Promise<Instance[]> {
  // A high rate limit: the ordering test sends a burst (the limiter has its own tests).
  const started = await startInstances(n, { redisUrl: redis.url, env: { HERALD_RATE_BURST: '100000', HERALD_RATE_PER_SECOND: '100000', ...env } });
  instances.push(...started);
  return started;
}

describe('seed protocol across instances over Redis', () => {
  let A: Instance;
  let B: Instance;
  let C: Instance;

  beforeAll(async () => {
    [A, B, C] = await cluster(3);
  });

  it('a reader waiting on B is announced to a sender that connects on A, and they relay both ways', async () => {
    const room = uniq('wait');
    const r = await joinedReader(B, 'u1', room);
    const r2 = await joinedReader(C, 'u2', room);
    // Let both joins land: the sender must find them already in the room.
    await waitFor('both readers in the room', async () => (await roomSize(A, room)) === 2);
    const s = await sender(A, room);
    const announced = [await s.nextStarting('join|'), await s.nextStarting('join|')].sort();
    expect(announced).toEqual(['join|u1', 'join|u2']);

    s.send('offer|u1|v=0 sdp|with|bars');
    expect(await r.next()).toBe(`offer|${room}|v=0 sdp|with|bars`);
    r.send(`answer|${room}|v=0 answer`);
    expect(await s.next()).toBe('answer|u1|v=0 answer');
    s.send('candid|u2|{"candidate":"c2"}');
    expect(await r2.next()).toBe(`candid|${room}|{"candidate":"c2"}`);
    r2.send(`candid|${room}|{"candidate":"back"}`);
    expect(await s.next()).toBe('candid|u2|{"candidate":"back"}');
  });

  it('a reader joining on another instance after the sender is announced at once', async () => {
    const room = uniq('late');
    const s = await sender(A, room);
    const r = await joinedReader(C, 'late-reader', room, s);
    s.send('offer|late-reader|sdp');
    expect(await r.next()).toBe(`offer|${room}|sdp`);
  });

  it('keeps the order of many messages between one pair across instances', async () => {
    const room = uniq('order');
    const s = await sender(A, room);
    const r = await joinedReader(B, 'ord', room, s);
    for (let i = 0; i < 300; i++) s.send(`candid|ord|${i}`);
    for (let i = 0; i < 300; i++) expect(await r.next()).toBe(`candid|${room}|${i}`);
  });

  it('a reader reconnecting on another instance replaces the old socket (4000) and can join again', async () => {
    const room = uniq('replace');
    const s = await sender(A, room);
    const old = await joinedReader(B, 'ru', room, s);
    const fresh = await reader(C, 'ru');
    expect(await old.closed).toMatchObject({ code: 4000 });
    fresh.send(`join|${room}`);
    await s.next((m) => m === 'join|ru');
    s.send('offer|ru|again');
    expect(await fresh.next((m) => m.startsWith('offer|'))).toBe(`offer|${room}|again`);
    fresh.send(`answer|${room}|ok`);
    expect(await s.next((m) => m.startsWith('answer|'))).toBe('answer|ru|ok');
  });

  it('a reader reconnecting on another instance keeps its room binding: it relays at once without join, and the sender never hears it leave', async () => {
    const room = uniq('keep');
    const s = await sender(A, room);
    const old = await joinedReader(B, 'kb', room, s);
    const fresh = await reader(C, 'kb');
    expect(await old.closed).toMatchObject({ code: 4000 });
    // No join|room from the new socket: the binding moved with the reader (C's connect
    // completes the hand-over before it reads a frame).
    fresh.send(`answer|${room}|from-c`);
    expect(await s.next((m) => m.startsWith('answer|'))).toBe('answer|kb|from-c');
    s.send('offer|kb|to-c');
    expect(await fresh.next((m) => m.startsWith('offer|'))).toBe(`offer|${room}|to-c`);
    expect(fresh.received.filter((m) => m.startsWith('error|'))).toEqual([]);
    expect(s.received.filter((m) => m === 'leave|kb')).toEqual([]);
  });

  it('a sender reconnecting on another instance replaces the old one (4000) and keeps its readers', async () => {
    const room = uniq('sreplace');
    const s1 = await sender(A, room);
    const r = await joinedReader(C, 'kept', room, s1);
    const s2 = await sender(B, room);
    expect(await s1.closed).toMatchObject({ code: 4000 });
    // The new sender takes over the room and finds the reader waiting.
    expect(await s2.next((m) => m.startsWith('join|'))).toBe('join|kept');
    s2.send('offer|kept|from-b');
    expect(await r.next((m) => m.startsWith('offer|'))).toBe(`offer|${room}|from-b`);
    expect(r.received).not.toContain('leaveline');
  });

  it('sender leaving on A sends leaveline to readers on B and C; a reader leaving sends leave|user', async () => {
    const room = uniq('leave');
    const s = await sender(A, room);
    const r1 = await joinedReader(B, 'l1', room, s);
    const r2 = await joinedReader(C, 'l2', room, s);
    await r1.close();
    expect(await s.next((m) => m.startsWith('leave|'))).toBe('leave|l1');
    await s.close();
    expect(await r2.next()).toBe('leaveline');
    // Unbound: its frames for the room are refused, nothing hangs.
    r2.send(`answer|${room}|late`);
    expect(await r2.next()).toMatch(/^error\|not-joined\|/);
  });

  it('a frame for a peer not in the room is answered with error|no-such-peer', async () => {
    const room = uniq('nope');
    const s = await sender(A, room);
    s.send('offer|ghost|x');
    expect(await s.next()).toMatch(/^error\|no-such-peer\|/);
  });

  it('two instances racing to admit a sender for one room: exactly one holds it', async () => {
    for (let round = 0; round < 5; round++) {
      const room = uniq('race');
      const results = await Promise.all([sender(A, room), sender(B, room)]);
      // One of them is replaced (4000); the survivor is the room's sender.
      const firstClosed = await Promise.race(results.map((s, i) => s.closed.then((c) => ({ i, c }))));
      expect(firstClosed.c.code).toBe(4000);
      const survivor = results[1 - firstClosed.i]!;
      const r = await joinedReader(C, `racer${round}`, room);
      expect(await survivor.next((m) => m.startsWith('join|'))).toBe(`join|racer${round}`);
      survivor.send(`offer|racer${round}|won`);
      expect(await r.next()).toBe(`offer|${room}|won`);
      expect(survivor.ws.readyState).toBe(survivor.ws.OPEN);
      const members = await roomMembers(A, room);
      expect(members.filter((m) => m.role === 'broadcaster')).toHaveLength(1);
    }
  });
});

describe('JSON protocol and mixed rooms across instances', () => {
  let A: Instance;
  let B: Instance;
  let C: Instance;

  beforeAll(async () => {
    [A, B, C] = await cluster(3, { HERALD_MAX_PEERS_PER_ROOM: '3' });
  });

  it('two instances racing to admit a second broadcaster: exactly one wins, the other gets conflict', async () => {
    for (let round = 0; round < 8; round++) {
      const room = uniq('bcast');
      const [a, b] = await Promise.all([json(A), json(B)]);
      const results = await Promise.allSettled([a.join(room, 'broadcaster'), b.join(room, 'broadcaster')]);
      const won = results.filter((r) => r.status === 'fulfilled');
      const lost = results.filter((r) => r.status === 'rejected');
      expect(won).toHaveLength(1);
      expect(lost).toHaveLength(1);
      expect((lost[0] as PromiseRejectedResult).reason.code).toBe('conflict');
      const members = await roomMembers(A, room);
      expect(members.filter((m) => m.role === 'broadcaster')).toHaveLength(1);
    }
  });

  it('the room cap holds across instances: of six racing joins, three are admitted', async () => {
    const room = uniq('cap');
    const clients = await Promise.all([json(A), json(B), json(C), json(A), json(B), json(C)]);
    const results = await Promise.allSettled(clients.map((c) => c.join(room, 'peer')));
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(3);
    for (const r of results) if (r.status === 'rejected') expect(r.reason.code).toBe('room-full');
    expect(await roomSize(A, room)).toBe(3);
  });

  it('mesh peers on three instances hear each other join and leave, and signal each other', async () => {
    const room = uniq('mesh');
    const p1 = await json(A, { peerId: uniq('p') });
    const p2 = await json(B, { peerId: uniq('p') });
    await p1.join(room, 'peer');
    const ack = await p2.join(room, 'peer');
    expect(ack.members).toEqual([{ id: p1.peerId, role: 'peer' }]);
    expect((await p1.nextJson('peer-joined')).peer).toEqual({ id: p2.peerId, role: 'peer' });
    await p1.signal(room, p2.peerId, { tag: 'hi' });
    expect(await p2.nextJson('signal')).toEqual({ type: 'signal', room, from: p1.peerId, data: { tag: 'hi' } });
    await p2.signal(room, p1.peerId, { tag: 'back' });
    expect((await p1.nextJson('signal')).data).toEqual({ tag: 'back' });
    const p3 = await json(C, { peerId: uniq('p') });
    await p3.join(room, 'peer');
    await Promise.all([p1.nextJson('peer-joined'), p2.nextJson('peer-joined')]);
    await p2.leave(room);
    for (const c of [p1, p3]) expect(await c.nextJson('peer-left')).toMatchObject({ room, peer: { id: p2.peerId }, reason: 'left' });
  });

  it('a seed sender on A and a JSON viewer on B negotiate through the shared core', async () => {
    const room = uniq('mixed');
    const viewer = await json(B);
    await viewer.join(room, 'viewer');
    const s = await sender(A, room);
    expect(await s.next()).toBe(`join|${viewer.peerId}`);
    s.send(`offer|${viewer.peerId}|v=0`);
    expect((await viewer.nextJson('signal')).data).toEqual({ description: { type: 'offer', sdp: 'v=0' } });
    await viewer.signal(room, `sender/${room}`, { description: { type: 'answer', sdp: 'v=1' } });
    expect(await s.next()).toBe(`answer|${viewer.peerId}|v=1`);
    await s.close();
    expect(await viewer.nextJson('peer-left')).toMatchObject({ peer: { id: `sender/${room}` } });
  });

  it('a JSON peer saying hello with its peer id on another instance takes it over (old socket 4000)', async () => {
    const id = uniq('roam');
    const first = await json(A, { peerId: id });
    const again = await json(C, { peerId: id });
    expect((await first.closed).code).toBe(4000);
    expect(again.peerId).toBe(id);
  });
});

/** Room membership as Redis holds it (admin API when present, else straight from Redis). */
async function roomMembers(_i: Instance, room: string): Promise<{ peerId: string; role: string; instanceId: string }[]> {
  const client = redis.client();
  try {
    const all = await client.hvals(`herald:{room:${room}}:members`);
    return all.map((j) => JSON.parse(j));
  } finally {
    client.disconnect();
  }
}

async function roomSize(i: Instance, room: string): Promise<number> {
  return (await roomMembers(i, room)).length;
}

describe('faults', () => {
  it('SIGKILL an instance mid-call: survivors notice within 10 s and tell the rooms', async () => {
    const [A, B, C] = await cluster(3);
    const room = uniq('crash');
    const room2 = uniq('crash2');
    const s = await sender(A, room);
    const r = await joinedReader(B, 'victim', room, s);
    const r2 = await joinedReader(C, 'survivor', room, s);
    // A second room whose sender dies with B.
    const s2 = await sender(B, room2);
    const r3 = await joinedReader(C, 'orphan', room2, s2);
    s.send('offer|victim|mid-call');
    expect(await r.next()).toBe(`offer|${room}|mid-call`);

    const killedAt = Date.now();
    await B.kill();
    // Readers on B are gone: the sender hears leave|victim; the reader of B's sender, leaveline.
    expect(await s.next((m) => m.startsWith('leave|'), 10_000)).toBe('leave|victim');
    expect(await r3.next((m) => m === 'leaveline', 10_000)).toBe('leaveline');
    const detectedMs = Date.now() - killedAt;
    expect(detectedMs).toBeLessThan(10_000);
    console.log(`crash detected and rooms told after ${detectedMs} ms`);
    // Exactly once: no duplicate notice.
    await waitFor('room directory cleaned', async () => (await roomMembers(A, room)).every((m) => m.peerId !== 'victim'));
    expect(s.received.filter((m) => m === 'leave|victim')).toHaveLength(1);
    // The rest of the call goes on.
    s.send('offer|survivor|still-here');
    expect(await r2.next()).toBe(`offer|${room}|still-here`);
    r2.send(`answer|${room}|yes`);
    expect(await s.next((m) => m.startsWith('answer|'))).toBe('answer|survivor|yes');
    await Promise.all([A.kill(), C.kill()]);
  });

  it('Redis outage: local rooms keep working, cross-instance sends get unavailable, /readyz 503; all recovers without reconnecting', async () => {
    const [A, B] = await cluster(2);
    const local = uniq('local');
    const cross = uniq('cross');
    const sl = await sender(A, local);
    const rl = await joinedReader(A, 'loc', local, sl);
    const sc = await sender(A, cross);
    const rc = await joinedReader(B, 'far', cross, sc);
    sc.send('offer|far|before');
    expect(await rc.next()).toBe(`offer|${cross}|before`);

    await redis.kill();
    await Promise.all([A.waitReady(503), B.waitReady(503)]);

    // Same-instance room: both ways, as if nothing happened.
    sl.send('offer|loc|during');
    expect(await rl.next()).toBe(`offer|${local}|during`);
    rl.send(`answer|${local}|during`);
    expect(await sl.next()).toBe('answer|loc|during');
    // Cross-instance: an answer, not a hang.
    sc.send('offer|far|during');
    expect(await sc.next()).toMatch(/^error\|unavailable\|/);
    rc.send(`answer|${cross}|during`);
    expect(await rc.next()).toMatch(/^error\|unavailable\|/);

    await redis.restart();
    await Promise.all([A.waitReady(200), B.waitReady(200)]);

    // The same sockets: cross-instance relay works again, both ways.
    await waitFor('cross-instance relay after recovery', async () => {
      sc.send('candid|far|after');
      const reply = await sc.next((m) => m.startsWith('error|'), 300).catch(() => undefined);
      return reply === undefined;
    }, 10_000, 0);
    expect(await rc.next((m) => m.includes('after'))).toBe(`candid|${cross}|after`);
    rc.send(`answer|${cross}|after`);
    expect(await sc.next((m) => m.startsWith('answer|'))).toBe('answer|far|after');
    // The directory came back: new joins across instances work, and nobody heard a leave.
    const r2 = await joinedReader(B, 'newcomer', cross, sc);
    sc.send('offer|newcomer|hi');
    expect(await r2.next()).toBe(`offer|${cross}|hi`);
    for (const s of [sl, rl, sc, rc]) {
      expect(s.ws.readyState).toBe(s.ws.OPEN);
      expect(s.received.filter((m) => m.startsWith('leave') || m === 'leaveline')).toEqual([]);
    }
    expect((await roomMembers(A, cross)).map((m) => m.peerId).sort()).toEqual(['far', 'newcomer', `sender/${cross}`]);
    await Promise.all([A.kill(), B.kill()]);
  });
});

describe('identities across instances', () => {
  it('another identity cannot take a peer id held on another instance; the same identity replaces it', async () => {
    const secret = '0123456789abcdef0123';
    const { Tokens } = await import('../../src/auth/tokens.js');
    const tokens = new Tokens(secret);
    const [A, B] = await cluster(2, { HERALD_SECRET: secret });
    const room = uniq('idn');
    const user = `alice~${uniq('held')}`; // an id in alice's own id space (docs/security.md)
    const as = (sub: string, roles: ('broadcaster' | 'viewer' | 'peer')[]) => tokens.mint({ sub, room, roles, ttl: '1h' });

    const s = await open(`${A.ws}/webrtc/sender/${room}?token=${await as('owner', ['broadcaster'])}`);
    const alice = await open(`${A.ws}/webrtc/reader/${user}?token=${await as('alice', ['viewer'])}`);
    alice.send(`join|${room}`);
    expect(await s.next((m) => m === `join|${user}`)).toBe(`join|${user}`);

    // Mallory on B: seed refused at the upgrade (403) and JSON hello forbidden, because the id
    // is not hers; Alice's socket on A is untouched.
    expect(await refusedStatus(`${B.ws}/webrtc/reader/${user}?token=${await as('mallory', ['viewer'])}`)).toBe(403);
    const jsonMallory = new JsonClient(await open(`${B.ws}/ws?token=${await as('mallory', ['viewer'])}`));
    const refused = await jsonMallory.hello({ peerId: user }).then(
      () => 'accepted',
      (err: { code?: string }) => err.code,
    );
    expect(refused).toBe('forbidden');
    s.send(`offer|${user}|still-alice`);
    expect(await alice.next()).toBe(`offer|${room}|still-alice`);

    // Alice herself reconnecting on B replaces her socket on A (4000).
    const alice2 = await open(`${B.ws}/webrtc/reader/${user}?token=${await as('alice', ['viewer'])}`);
    expect((await alice.closed).code).toBe(4000);
    alice2.send(`join|${room}`);
    expect(await s.next((m) => m === `join|${user}`)).toBe(`join|${user}`);
    await Promise.all([A.kill(), B.kill()]);
  });
});
