import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHerald, type Running } from '../helpers/herald.js';
import { JsonClient, disconnectWatcher, expectError, uid } from '../helpers/json-client.js';
import { TestSocket } from '../helpers/socket.js';

/**
 * Herald's JSON protocol (docs/protocol.md §2) over real sockets against in-process servers.
 * Every wait is on an event (a message or a close). A "received nothing" check is made only
 * after a later round trip through the server has proved it already handled what came before.
 */

const MAX_FRAME = 8192;
const MAX_SIGNAL = 2048;
const MAX_ROOMS = 3;

const clients: JsonClient[] = [];
const track = (c: JsonClient) => (clients.push(c), c);

/** Messages still unconsumed on `c`, of the given types. */
const stray = (c: JsonClient, ...types: string[]) => c.pendingJson().filter((m) => types.includes(m.type));

/** Proves a → b relays in `room`, and that the server has handled all a sent before. */
async function roundTrip(a: JsonClient, b: JsonClient, room: string): Promise<void> {
  const tag = uid('rt');
  await a.signal(room, b.peerId, { tag });
  const got = await b.nextSignal(tag);
  expect(got).toEqual({ type: 'signal', room, from: a.peerId, data: { tag } });
}

afterAll(() => {
  for (const c of clients) c.socket.ws.terminate();
});

describe('JSON protocol', () => {
  let server: Running;
  let serverSawClose: (peerId: string) => Promise<void>;
  const connect = async (extra?: Record<string, unknown>) => track(await JsonClient.connect(server.ws, extra));
  const open = async () => track(await JsonClient.open(server.ws));

  beforeAll(async () => {
    server = await startHerald({ maxFrameBytes: MAX_FRAME, maxSignalBytes: MAX_SIGNAL, maxRoomsPerConnection: MAX_ROOMS });
    serverSawClose = disconnectWatcher(server.herald.hub);
  });
  afterAll(() => server.stop());

  describe('hello', () => {
    it('welcomes with a server-picked peerId, a resumeToken, ICE servers and the heartbeat', async () => {
      const c = await open();
      const ack = await c.hello();
      expect(ack).toMatchObject({ type: 'ack', id: 1, resumed: false, rooms: [], heartbeatMs: server.herald.config.heartbeatMs });
      // A server-picked id is one a client could ask for again (hello {peerId}).
      expect(ack.peerId).toMatch(/^[A-Za-z0-9_.:@~-]{1,64}$/);
      expect(typeof ack.resumeToken).toBe('string');
      expect(ack.resumeToken.length).toBeGreaterThanOrEqual(16);
      expect(Array.isArray(ack.iceServers)).toBe(true);
      const other = await connect();
      expect(other.peerId).not.toBe(c.peerId);
      expect(other.resumeToken).not.toBe(c.resumeToken);
    });

    it('gives a client the peerId it asks for', async () => {
      const id = uid('alice-');
      const c = await connect({ peerId: id });
      expect(c.peerId).toBe(id);
    });

    it('answers a second hello with conflict and keeps the session', async () => {
      const c = await connect();
      const err = await expectError(c.hello(), 'conflict');
      expect(err.id).toBe(2);
      const room = uid('r');
      await expect(c.join(room, 'peer')).resolves.toMatchObject({ type: 'ack', room, role: 'peer' });
    });

    it('rejects every request before hello with bad-request, then accepts hello', async () => {
      const c = await open();
      const room = uid('r');
      expect((await expectError(c.join(room, 'peer'), 'bad-request')).id).toBe(1);
      expect((await expectError(c.leave(room), 'bad-request')).id).toBe(2);
      expect((await expectError(c.signal(room, 'x', {}), 'bad-request')).id).toBe(3);
      c.signalNoAck(room, 'x', {});
      const err = await c.nextJson('error');
      expect(err).toEqual({ type: 'error', code: 'bad-request', message: expect.stringMatching(/hello/) });
      await expect(c.hello()).resolves.toMatchObject({ type: 'ack', resumed: false });
      await expect(c.join(room, 'peer')).resolves.toMatchObject({ type: 'ack' });
    });

    it('answers an unknown resume token with not-found; a plain hello then works', async () => {
      const c = await open();
      const err = await expectError(c.hello({ resumeToken: 'no-such-token' }), 'not-found');
      expect(err.id).toBe(1);
      await expect(c.hello()).resolves.toMatchObject({ resumed: false });
    });

    it('lets the same peerId connect again: the old socket is closed 4000 "replaced", rooms carry over', async () => {
      const room = uid('r');
      const id = uid('bob-');
      const old = await connect({ peerId: id });
      const partner = await connect();
      await old.join(room, 'peer');
      await partner.join(room, 'peer');
      await old.nextWhere('peer-joined', (m) => m.peer.id === partner.peerId);

      const fresh = await open();
      const ack = await fresh.hello({ peerId: id });
      expect(ack).toMatchObject({ peerId: id, resumed: false, rooms: [{ room, role: 'peer' }] });
      expect(await old.closed).toEqual({ code: 4000, reason: 'replaced' });

      await roundTrip(partner, fresh, room);
      await roundTrip(fresh, partner, room);
      expect(stray(partner, 'peer-left', 'peer-joined', 'error')).toEqual([]);
    });
  });

  describe('join and leave', () => {
    it('meshes peers: each join ack lists the others, peers hear each other join and leave', async () => {
      const room = uid('mesh');
      const [a, b, c] = [await connect(), await connect(), await connect()];
      const ackA = await a.join(room, 'peer');
      expect(ackA).toEqual({ type: 'ack', id: 2, room, role: 'peer', members: [], counts: { broadcaster: false, viewers: 0, peers: 1 } });
      const ackB = await b.join(room, 'peer');
      expect(ackB.members).toEqual([{ id: a.peerId, role: 'peer' }]);
      expect(await a.nextJson('peer-joined')).toEqual({ type: 'peer-joined', room, peer: { id: b.peerId, role: 'peer' } });
      const ackC = await c.join(room, 'peer');
      expect(ackC.members).toEqual(expect.arrayContaining([{ id: a.peerId, role: 'peer' }, { id: b.peerId, role: 'peer' }]));
      expect(ackC.members).toHaveLength(2);
      expect(ackC.counts).toEqual({ broadcaster: false, viewers: 0, peers: 3 });
      await a.nextWhere('peer-joined', (m) => m.peer.id === c.peerId);
      await b.nextWhere('peer-joined', (m) => m.peer.id === c.peerId);

      expect(await b.leave(room)).toEqual({ type: 'ack', id: 3, room });
      for (const x of [a, c]) {
        expect(await x.nextJson('peer-left')).toEqual({ type: 'peer-left', room, peer: { id: b.peerId, role: 'peer' }, reason: 'left' });
      }
      // b is out: it may no longer signal there, and leaving again is not-found
      await expectError(b.signal(room, a.peerId, {}), 'forbidden');
      await expectError(b.leave(room), 'not-found');
    });

    it('shows a viewer only the broadcaster; viewers never hear each other', async () => {
      const room = uid('show');
      const [v1, v2, bc] = [await connect(), await connect(), await connect()];

      // A viewer may arrive before the broadcast: it sees no one, and hears it go live.
      expect((await v1.join(room, 'viewer')).members).toEqual([]);
      const ackB = await bc.join(room, 'broadcaster');
      expect(ackB.members).toEqual([{ id: v1.peerId, role: 'viewer' }]);
      expect(ackB.counts).toEqual({ broadcaster: true, viewers: 1, peers: 0 });
      expect(await v1.nextJson('peer-joined')).toEqual({ type: 'peer-joined', room, peer: { id: bc.peerId, role: 'broadcaster' } });

      const ackV2 = await v2.join(room, 'viewer');
      expect(ackV2.members).toEqual([{ id: bc.peerId, role: 'broadcaster' }]);
      expect(ackV2.counts).toEqual({ broadcaster: true, viewers: 2, peers: 0 });
      expect(await bc.nextJson('peer-joined')).toEqual({ type: 'peer-joined', room, peer: { id: v2.peerId, role: 'viewer' } });

      // v2 leaves: the broadcaster hears it, v1 does not.
      await v2.leave(room);
      expect(await bc.nextJson('peer-left')).toEqual({ type: 'peer-left', room, peer: { id: v2.peerId, role: 'viewer' }, reason: 'left' });
      await roundTrip(bc, v1, room);
      expect(stray(v1, 'peer-joined', 'peer-left')).toEqual([]);

      // The broadcaster leaves and comes back: the viewer hears both.
      await bc.leave(room);
      expect(await v1.nextJson('peer-left')).toEqual({ type: 'peer-left', room, peer: { id: bc.peerId, role: 'broadcaster' }, reason: 'left' });
      expect((await bc.join(room, 'broadcaster')).members).toEqual([{ id: v1.peerId, role: 'viewer' }]);
      expect(await v1.nextJson('peer-joined')).toEqual({ type: 'peer-joined', room, peer: { id: bc.peerId, role: 'broadcaster' } });
    });

    it('keeps peers and the broadcast apart in one room', async () => {
      const room = uid('both');
      const [bc, v, p1, p2] = [await connect(), await connect(), await connect(), await connect()];
      await bc.join(room, 'broadcaster');
      await v.join(room, 'viewer');
      await bc.nextWhere('peer-joined', (m) => m.peer.id === v.peerId);
      expect((await p1.join(room, 'peer')).members).toEqual([]);
      expect((await p2.join(room, 'peer')).members).toEqual([{ id: p1.peerId, role: 'peer' }]);
      await p1.nextWhere('peer-joined', (m) => m.peer.id === p2.peerId);
      await roundTrip(bc, v, room);
      await roundTrip(v, bc, room);
      expect(stray(bc, 'peer-joined')).toEqual([]);
      expect(stray(v, 'peer-joined')).toEqual([]);
    });

    it('allows one broadcaster per room (conflict), and a new one once it has left', async () => {
      const room = uid('one');
      const [b1, b2] = [await connect(), await connect()];
      await b1.join(room, 'broadcaster');
      const err = await expectError(b2.join(room, 'broadcaster'), 'conflict');
      expect(err.id).toBe(2);
      await b1.leave(room);
      await expect(b2.join(room, 'broadcaster')).resolves.toMatchObject({ role: 'broadcaster' });
    });

    it('refuses a change of role in a room already joined (conflict); leave and join again works', async () => {
      const room = uid('role');
      const [bc, v] = [await connect(), await connect()];
      await bc.join(room, 'broadcaster');
      await v.join(room, 'viewer');
      await bc.nextJson('peer-joined');
      // Switching in place would leave the others with a stale view (no peer-left for the old role).
      await expectError(bc.join(room, 'viewer'), 'conflict');
      await expectError(v.join(room, 'peer'), 'conflict');
      await expectError(v.join(room, 'broadcaster'), 'conflict');
      await roundTrip(v, bc, room);
      await roundTrip(bc, v, room);
      expect(stray(v, 'peer-left', 'peer-joined')).toEqual([]);
      // The same role again is fine (a client re-joining after a reconnect does exactly this).
      await expect(v.join(room, 'viewer')).resolves.toMatchObject({ members: [{ id: bc.peerId, role: 'broadcaster' }] });
      await v.leave(room);
      await expect(v.join(room, 'peer')).resolves.toMatchObject({ role: 'peer', members: [] });
    });

    it('answers leave of a room not joined with not-found', async () => {
      const c = await connect();
      const err = await expectError(c.leave(uid('nowhere')), 'not-found');
      expect(err.id).toBe(2);
    });

    it(`refuses a connection more than ${MAX_ROOMS} rooms (forbidden)`, async () => {
      const c = await connect();
      const rooms = [uid('m'), uid('m'), uid('m')];
      for (const r of rooms) await c.join(r, 'peer');
      await expectError(c.join(uid('m'), 'peer'), 'forbidden');
      // Joining again a room it is in does not count; after a leave there is space again.
      await expect(c.join(rooms[0]!, 'peer')).resolves.toMatchObject({ type: 'ack' });
      await c.leave(rooms[1]!);
      await expect(c.join(uid('m'), 'peer')).resolves.toMatchObject({ type: 'ack' });
    });

    it('answers joins with missing or wrong fields with bad-request and the id', async () => {
      const c = await connect();
      const bad = [
        { type: 'join', role: 'peer' },
        { type: 'join', room: uid('r') },
        { type: 'join', room: uid('r'), role: 'admin' },
        { type: 'join', room: '', role: 'peer' },
        { type: 'join', room: 'x'.repeat(129), role: 'peer' },
        { type: 'join', room: 'a\nb', role: 'peer' },
        { type: 'join', room: 5, role: 'peer' },
        { type: 'leave' },
      ];
      for (const msg of bad) {
        const err = await expectError(c.request(msg), 'bad-request');
        expect(err.message.length).toBeGreaterThan(0);
      }
    });
  });

  describe('signal', () => {
    it('delivers {to, data} as {from, data}; with an id it is acked, without an id it is not', async () => {
      const room = uid('sig');
      const [a, b] = [await connect(), await connect()];
      await a.join(room, 'peer');
      await b.join(room, 'peer');
      await a.nextJson('peer-joined');
      const ack = await a.signal(room, b.peerId, { tag: 'one' });
      expect(ack).toEqual({ type: 'ack', id: 3 });
      expect(await b.nextSignal('one')).toEqual({ type: 'signal', room, from: a.peerId, data: { tag: 'one' } });

      a.signalNoAck(room, b.peerId, { tag: 'two' });
      expect(await b.nextSignal('two')).toEqual({ type: 'signal', room, from: a.peerId, data: { tag: 'two' } });
      await roundTrip(a, b, room);
      expect(a.pendingJson()).toEqual([]);
    });

    it('passes data through untouched, whatever its JSON shape', async () => {
      const room = uid('opaque');
      const [a, b] = [await connect(), await connect()];
      await a.join(room, 'peer');
      await b.join(room, 'peer');
      const samples = [null, 0, -1.5, 'text', true, [], {}, [1, 'two', { three: [3] }], { description: { type: 'offer', sdp: 'v=0\r\n' } }, { '|': '|a|b|', emoji: '🎥', quote: '"' }];
      for (const data of samples) await a.signal(room, b.peerId, data);
      for (const data of samples) expect((await b.nextJson('signal')).data).toEqual(data);
    });

    it('forwards data as sent even when the frame is laid out oddly or quotes "data" elsewhere', async () => {
      const room = uid('rawdata');
      const [a, b] = [await connect(), await connect()];
      await a.join(room, 'peer');
      await b.join(room, 'peer');
      // Member order, whitespace, and a look-alike key inside a string and a nested object.
      a.send(`{ "data" : { "x" : [ 1 , { "data" : "\\"data\\":2" } ] } , "to" : ${JSON.stringify(b.peerId)}, "type":"signal", "room": ${JSON.stringify(room)} }`);
      a.send(`{"type":"signal","room":${JSON.stringify(room)},"to":${JSON.stringify(b.peerId)},"data":"tail \\u00e9 \\"}\\""}`);
      const first = await b.nextJson('signal');
      expect(first).toEqual({ type: 'signal', room, from: a.peerId, data: { x: [1, { data: '"data":2' }] } });
      expect((await b.nextJson('signal')).data).toBe('tail é "}"');
    });

    it('reports a signal to an unknown peer as not-found, with and without an id', async () => {
      const room = uid('nf');
      const a = await connect();
      await a.join(room, 'peer');
      const err = await expectError(a.signal(room, 'nobody', {}), 'not-found');
      expect(err.id).toBe(3);
      a.signalNoAck(room, 'nobody', {});
      expect(await a.nextJson('error')).toEqual({ type: 'error', code: 'not-found', message: expect.any(String) });
    });

    it('forbids signalling in a room the sender has not joined, even to a member', async () => {
      const room = uid('fb');
      const [a, b] = [await connect(), await connect()];
      await b.join(room, 'peer');
      await a.join(uid('elsewhere'), 'peer');
      await expectError(a.signal(room, b.peerId, { tag: 'x' }), 'forbidden');
      await expectError(a.signal(uid('none'), b.peerId, {}), 'forbidden');
    });

    it('answers a member that exists in another room only with not-found', async () => {
      const [r1, r2] = [uid('r'), uid('r')];
      const [a, b] = [await connect(), await connect()];
      await a.join(r1, 'peer');
      await b.join(r2, 'peer');
      await expectError(a.signal(r1, b.peerId, {}), 'not-found');
    });

    it('caps a signal at maxSignalBytes (too-large), counting bytes, and never delivers it', async () => {
      const room = uid('big');
      const [a, b] = [await connect(), await connect()];
      await a.join(room, 'peer');
      await b.join(room, 'peer');
      const fits = await a.signal(room, b.peerId, { tag: 'fits', pad: 'x'.repeat(MAX_SIGNAL - 200) });
      expect(fits.type).toBe('ack');
      await b.nextSignal('fits');

      const err = await expectError(a.signal(room, b.peerId, { tag: 'big', pad: 'x'.repeat(MAX_SIGNAL) }), 'too-large');
      expect(err.id).toBeGreaterThan(0);
      // Under the cap in UTF-16 units, over it in bytes (a '€' is 3 bytes of UTF-8).
      const euros = '€'.repeat(Math.ceil(MAX_SIGNAL / 2));
      expect(euros.length).toBeLessThan(MAX_SIGNAL);
      expect(Buffer.byteLength(euros)).toBeLessThan(MAX_FRAME - 200);
      await expectError(a.signal(room, b.peerId, { tag: 'euros', pad: euros }), 'too-large');
      a.signalNoAck(room, b.peerId, { tag: 'big2', pad: 'x'.repeat(MAX_SIGNAL) });
      expect(await a.nextJson('error')).toMatchObject({ code: 'too-large' });
      expect(stray(a, 'ack', 'error')).toEqual([]);

      await roundTrip(a, b, room);
      expect(stray(b, 'signal')).toEqual([]);
    });

    it('closes the socket with 1009 on a frame over maxFrameBytes', async () => {
      const room = uid('cap');
      const [a, b] = [await connect(), await connect()];
      await a.join(room, 'peer');
      await b.join(room, 'peer');
      a.signalNoAck(room, b.peerId, { tag: 'huge', pad: 'x'.repeat(MAX_FRAME) });
      expect((await a.closed).code).toBe(1009);
      // The oversize frame was never relayed.
      const c = await connect();
      await c.join(room, 'peer');
      await roundTrip(c, b, room);
      expect(stray(b, 'signal')).toEqual([]);
    });
  });

  describe('signalling permissions', () => {
    const room = uid('perm');
    const who: Record<string, JsonClient> = {};
    beforeAll(async () => {
      for (const [name, role] of [
        ['broadcaster', 'broadcaster'],
        ['viewer1', 'viewer'],
        ['viewer2', 'viewer'],
        ['peer1', 'peer'],
        ['peer2', 'peer'],
      ] as const) {
        who[name] = await connect();
        await who[name]!.join(room, role);
      }
    });

    it.each([
      ['viewer1', 'broadcaster'],
      ['broadcaster', 'viewer1'],
      ['broadcaster', 'viewer2'],
      ['peer1', 'peer2'],
      ['peer2', 'peer1'],
    ])('%s may signal %s', async (from, to) => {
      await roundTrip(who[from]!, who[to]!, room);
    });

    it.each([
      ['viewer1', 'viewer2'],
      ['viewer1', 'peer1'],
      ['peer1', 'viewer1'],
      ['peer1', 'broadcaster'],
      ['broadcaster', 'peer1'],
      ['broadcaster', 'broadcaster'],
    ])('%s may not signal %s (forbidden, nothing delivered)', async (from, to) => {
      const tag = uid('nope');
      const err = await expectError(who[from]!.signal(room, who[to]!.peerId, { tag }), 'forbidden');
      expect(err.message).toMatch(/may not signal/);
      // Anything `to` could hear from `from` was sent before this legal round trip.
      const legal = from === 'broadcaster' ? who.viewer2! : from.startsWith('viewer') ? who.broadcaster! : who.peer2!;
      await roundTrip(who[from]!, legal, room);
      if (to !== from) expect(who[to]!.pendingJson().filter((m) => m.data?.tag === tag)).toEqual([]);
    });
  });

  describe('bad requests', () => {
    it('answers frames that are not JSON, not objects or of unknown type with bad-request, echoing a valid id', async () => {
      const c = await connect();
      c.send('not json');
      expect(await c.nextJson('error')).toEqual({ type: 'error', code: 'bad-request', message: 'not JSON' });
      c.send('[1,2]');
      expect(await c.nextJson('error')).toMatchObject({ code: 'bad-request' });
      c.send({ type: 'subscribe', id: 41 });
      const unknown = await c.nextJson('error');
      expect(unknown).toMatchObject({ code: 'bad-request', id: 41 });
      c.send({ id: 42 });
      expect(await c.nextJson('error')).toMatchObject({ code: 'bad-request', id: 42 });
      c.socket.send(Buffer.from('{"type":"hello","id":43}'));
      const binary = await c.nextJson('error');
      expect(binary).toMatchObject({ code: 'bad-request' });
      expect(binary.message).toMatch(/binary/);
      // still usable
      await expect(c.join(uid('r'), 'peer')).resolves.toMatchObject({ type: 'ack' });
    });
  });

  describe('pushes', () => {
    it('tells a kicked peer "removed" and the room "peer-left" with reason kicked', async () => {
      const room = uid('kick');
      const [a, b] = [await connect(), await connect()];
      await a.join(room, 'peer');
      await b.join(room, 'peer');
      expect(await server.herald.hub.kick(room, b.peerId)).toBe(true);
      expect(await b.nextJson('removed')).toEqual({ type: 'removed', room, reason: 'kicked' });
      expect(await a.nextJson('peer-left')).toEqual({ type: 'peer-left', room, peer: { id: b.peerId, role: 'peer' }, reason: 'kicked' });
      await expectError(b.signal(room, a.peerId, {}), 'forbidden');
      await expectError(b.leave(room), 'not-found');
      // and it may come back
      await expect(b.join(room, 'peer')).resolves.toMatchObject({ members: [{ id: a.peerId, role: 'peer' }] });
    });

    it.each([1000, 1001])('a client closing with %i leaves at once (peer-left reason closed), not resumable', async (code) => {
      const room = uid('bye');
      const [bc, v] = [await connect(), await connect()];
      await bc.join(room, 'broadcaster');
      await v.join(room, 'viewer');
      await bc.nextJson('peer-joined');
      const token = v.resumeToken;
      await v.close(code);
      expect(await bc.nextJson('peer-left')).toEqual({ type: 'peer-left', room, peer: { id: v.peerId, role: 'viewer' }, reason: 'closed' });
      await expectError(bc.signal(room, v.peerId, {}), 'not-found');
      const again = await open();
      await expectError(again.hello({ resumeToken: token }), 'not-found');
    });
  });

  describe('resume', () => {
    it('keeps a dropped viewer in its room, queues signals, and replays them in order after the ack', async () => {
      const room = uid('resume');
      const [bc, v] = [await connect(), await connect()];
      await bc.join(room, 'broadcaster');
      await v.join(room, 'viewer');
      await bc.nextJson('peer-joined');

      const gone = serverSawClose(v.peerId);
      await v.terminate();
      await gone;

      const N = 20;
      for (let i = 0; i < N; i++) {
        if (i % 2) bc.signalNoAck(room, v.peerId, { n: i });
        else await bc.signal(room, v.peerId, { n: i });
      }
      await bc.signal(room, v.peerId, { n: N });

      const back = track(await JsonClient.open(server.ws));
      const ack = await back.request({ type: 'hello', resumeToken: v.resumeToken });
      expect(ack).toMatchObject({ type: 'ack', peerId: v.peerId, resumeToken: v.resumeToken, resumed: true, rooms: [{ room, role: 'viewer' }] });
      back.peerId = v.peerId;

      const got: number[] = [];
      for (let i = 0; i <= N; i++) {
        const s = await back.nextJson('signal');
        expect(s).toMatchObject({ room, from: bc.peerId });
        got.push(s.data.n);
      }
      expect(got).toEqual([...Array(N + 1).keys()]);
      // The welcome came first: the replay was not delivered ahead of the ack.
      const order = back.receivedJson().map((m) => m.type);
      expect(order[0]).toBe('ack');
      expect(order.slice(1, N + 2).every((t) => t === 'signal')).toBe(true);

      // Live again, both ways; the room never heard it leave.
      await roundTrip(back, bc, room);
      await roundTrip(bc, back, room);
      expect(stray(bc, 'peer-left', 'expired')).toEqual([]);
    });

    it('resumes a peer whose old socket is still open: the old one is replaced', async () => {
      const room = uid('twin');
      const [a, b] = [await connect(), await connect()];
      await a.join(room, 'peer');
      await b.join(room, 'peer');
      const again = await open();
      const ack = await again.request({ type: 'hello', resumeToken: a.resumeToken });
      expect(ack).toMatchObject({ peerId: a.peerId, resumed: true, rooms: [{ room, role: 'peer' }] });
      again.peerId = a.peerId;
      expect(await a.closed).toEqual({ code: 4000, reason: 'replaced' });
      await roundTrip(b, again, room);
      expect(stray(b, 'peer-left')).toEqual([]);
    });

    it('forgets a peer whose socket closed before its hello was answered', async () => {
      // A socket that goes away while hello is in flight must not leave a peer behind
      // that no socket will ever close. The cluster claim is held until the server saw the close.
      const hub = server.herald.hub;
      const cluster = server.herald.cluster;
      const before = hub.peerCount;
      const claim = cluster.claimPeer.bind(cluster);
      let release!: () => void;
      const held = new Promise<void>((r) => (release = r));
      let claimed!: () => void;
      const claiming = new Promise<void>((r) => (claimed = r));
      cluster.claimPeer = async (peerId: string) => {
        cluster.claimPeer = claim;
        claimed();
        await held;
        return claim(peerId);
      };
      const id = uid('racer-');
      const c = await open();
      c.send({ type: 'hello', id: 1, peerId: id });
      await claiming;
      const sawClose = serverSawClose(id);
      const serverSide = [...(server.herald.gateway as unknown as { wss: { clients: Set<import('ws').WebSocket> } }).wss.clients].find(
        (ws) => ws.readyState === ws.OPEN && (ws as any)._socket?.remotePort === (c.socket.ws as any)._socket?.localPort,
      )!;
      const serverClosed = new Promise((r) => serverSide.once('close', r));
      await c.terminate();
      await serverClosed;
      release();
      // Bounded so that the bug shows as a failure, not a hang.
      await Promise.race([sawClose, new Promise((_, reject) => setTimeout(() => reject(new Error('the hub never heard of the close')), 5000))]);
      expect(hub.peerCount).toBe(before);
    });
  });
});

describe('JSON protocol: room cap', () => {
  let server: Running;
  beforeAll(async () => {
    server = await startHerald({ maxPeersPerRoom: 2 });
  });
  afterAll(() => server.stop());

  it('refuses a third member with room-full, and admits one after a leave', async () => {
    const room = uid('full');
    const [a, b, c] = await Promise.all([0, 1, 2].map(async () => track(await JsonClient.connect(server.ws))));
    await a!.join(room, 'broadcaster');
    await b!.join(room, 'viewer');
    const err = await expectError(c!.join(room, 'viewer'), 'room-full');
    expect(err.id).toBe(2);
    await expectError(c!.join(room, 'broadcaster'), 'conflict');
    // a member joining again is not counted twice
    await expect(b!.join(room, 'viewer')).resolves.toMatchObject({ counts: { broadcaster: true, viewers: 1, peers: 0 } });
    await b!.leave(room);
    await expect(c!.join(room, 'viewer')).resolves.toMatchObject({ members: [{ id: a!.peerId, role: 'broadcaster' }] });
  });
});

describe('JSON protocol: resume queue expiry', () => {
  let server: Running;
  let serverSawClose: (peerId: string) => Promise<void>;
  beforeAll(async () => {
    server = await startHerald({ resumeGraceMs: 1500 });
    serverSawClose = disconnectWatcher(server.herald.hub);
  });
  afterAll(() => server.stop());

  it('after the grace the senders get "expired" and the room peer-left reason timeout', async () => {
    const room = uid('exp');
    const [bc, v, v2] = await Promise.all([0, 1, 2].map(async () => track(await JsonClient.connect(server.ws))));
    await bc!.join(room, 'broadcaster');
    await v!.join(room, 'viewer');
    await v2!.join(room, 'viewer');
    const gone = serverSawClose(v!.peerId);
    await v!.terminate();
    await gone;
    await bc!.signal(room, v!.peerId, { n: 1 });
    bc!.signalNoAck(room, v!.peerId, { n: 2 });
    await bc!.signal(room, v!.peerId, { n: 3 });

    expect(await bc!.nextJson('expired')).toEqual({ type: 'expired', room, to: v!.peerId });
    expect(await bc!.nextWhere('peer-left', (m) => m.peer.id === v!.peerId)).toEqual({
      type: 'peer-left',
      room,
      peer: { id: v!.peerId, role: 'viewer' },
      reason: 'timeout',
    });
    // One notice per sender, not one per signal; and the other viewer heard nothing.
    await roundTrip(bc!, v2!, room);
    expect(stray(bc!, 'expired')).toEqual([]);
    expect(stray(v2!, 'peer-left')).toEqual([]);
    await expectError(bc!.signal(room, v!.peerId, {}), 'not-found');
    const late = track(await JsonClient.open(server.ws));
    await expectError(late.hello({ resumeToken: v!.resumeToken }), 'not-found');
  });
});

describe('JSON protocol: resume queue overflow', () => {
  let server: Running;
  let serverSawClose: (peerId: string) => Promise<void>;
  const MAX = 3;
  beforeAll(async () => {
    server = await startHerald({ resumeQueueMax: MAX });
    serverSawClose = disconnectWatcher(server.herald.hub);
  });
  afterAll(() => server.stop());

  it('tells the sender "expired" (once) for signals past the queue, and replays the ones that fit', async () => {
    const room = uid('ovf');
    const [bc, v] = await Promise.all([0, 1].map(async () => track(await JsonClient.connect(server.ws))));
    await bc!.join(room, 'broadcaster');
    await v!.join(room, 'viewer');
    await bc!.nextJson('peer-joined');
    const gone = serverSawClose(v!.peerId);
    await v!.terminate();
    await gone;
    for (let n = 0; n < MAX + 2; n++) await bc!.signal(room, v!.peerId, { n });
    expect(await bc!.nextJson('expired')).toEqual({ type: 'expired', room, to: v!.peerId });

    const back = track(await JsonClient.open(server.ws));
    expect(await back.request({ type: 'hello', resumeToken: v!.resumeToken })).toMatchObject({ resumed: true, rooms: [{ room, role: 'viewer' }] });
    back.peerId = v!.peerId;
    for (let n = 0; n < MAX; n++) expect((await back.nextJson('signal')).data).toEqual({ n });
    await roundTrip(bc!, back, room);
    expect(stray(back, 'signal')).toEqual([]);
    // One notice per sender per absence, however many signals overflowed.
    expect(stray(bc!, 'expired', 'peer-left')).toEqual([]);
  });
});

describe('JSON protocol: shutdown', () => {
  it('sends bye {reconnect:true} and closes with 1012, to clients with and without hello', async () => {
    const server = await startHerald();
    const room = uid('stop');
    const a = track(await JsonClient.connect(server.ws));
    await a.join(room, 'peer');
    const quiet = track(await JsonClient.open(server.ws));
    const stopped = server.stop();
    for (const c of [a, quiet]) {
      const bye = await c.nextJson('bye');
      expect(bye).toEqual({ type: 'bye', reason: expect.any(String), reconnect: true });
      expect((await c.closed).code).toBe(1012);
      expect(c.socket.received.at(-1)).toContain('"bye"');
    }
    await stopped;
  });
});
