import { SignJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHerald, type Running } from '../helpers/herald.js';
import { JsonClient, expectError, uid } from '../helpers/json-client.js';
import { TestSocket } from '../helpers/socket.js';

const SECRET = '0123456789abcdef0123';
type Role = 'broadcaster' | 'viewer' | 'peer' | 'admin';
const mint = (sub: string, room: string, roles: Role[], key = SECRET) =>
  new SignJWT({ room, roles })
    .setProtectedHeader({ alg: 'HS256' })
    .setSubject(sub)
    .setExpirationTime(Math.floor(Date.now() / 1000) + 600)
    .sign(new TextEncoder().encode(key));

describe('admin API', () => {
  let server: Running;
  let admin: string;
  beforeAll(async () => {
    server = await startHerald({ secret: SECRET });
    admin = await mint('operator', '*', ['admin']);
  });
  afterAll(() => server.stop());

  const call = (path: string, init: RequestInit & { token?: string } = {}) =>
    fetch(`${server.http}${path}`, { ...init, headers: init.token ? { Authorization: `Bearer ${init.token}` } : {} });

  /** A mixed room: a JSON broadcaster, a JSON viewer and a seed reader, all joined. */
  async function mixedRoom() {
    const room = uid('room');
    const b = new JsonClient(await TestSocket.open(`${server.ws}/ws?token=${await mint('bee', room, ['broadcaster'])}`));
    await b.hello();
    await b.join(room, 'broadcaster');
    const v = new JsonClient(await TestSocket.open(`${server.ws}/ws?token=${await mint('vee', room, ['viewer'])}`));
    await v.hello();
    await v.join(room, 'viewer');
    await b.nextWhere('peer-joined', (m) => m.peer.id === v.peerId);
    const user = uid('u');
    const reader = await TestSocket.open(`${server.ws}/webrtc/reader/${user}?token=${await mint(user, room, ['viewer'])}`);
    reader.send(`join|${room}`);
    await b.nextWhere('peer-joined', (m) => m.peer.id === user);
    return { room, b, v, reader, user };
  }

  it('every admin route is 401 without a token or with a bad one, and 403 without the admin role', async () => {
    const { room, b, v, reader } = await mixedRoom();
    const routes: [string, string][] = [
      ['GET', '/api/rooms'],
      ['GET', `/api/rooms/${room}`],
      ['DELETE', `/api/rooms/${room}/peers/${v.peerId}`],
    ];
    const nonAdmin = await mint('vee', '*', ['broadcaster', 'viewer', 'peer']);
    const forged = await mint('operator', '*', ['admin'], 'not-the-secret-at-all');
    for (const [method, path] of routes) {
      const none = await call(path, { method });
      expect(none.status, `${method} ${path}`).toBe(401);
      expect((await none.json()).error).toBe('unauthorized');
      expect((await call(path, { method, token: forged })).status, `${method} ${path} forged`).toBe(401);
      const denied = await call(path, { method, token: nonAdmin });
      expect(denied.status, `${method} ${path} non-admin`).toBe(403);
      expect((await denied.json()).error).toBe('forbidden');
    }
    // Nothing was kicked by the refused DELETEs: v still hears from the broadcaster.
    await b.signal(room, v.peerId, { tag: 'still-here' });
    expect((await v.nextSignal('still-here')).from).toBe(b.peerId);
    expect(v.pendingJson().filter((m) => m.type === 'removed')).toEqual([]);
    for (const c of [b, v]) await c.close();
    reader.ws.close();
  });

  it('GET /api/rooms lists rooms with member counts; GET /api/rooms/:room lists members', async () => {
    const { room, b, v, reader, user } = await mixedRoom();
    const list = await call('/api/rooms', { token: admin });
    expect(list.status).toBe(200);
    const { rooms } = await list.json();
    expect(rooms.find((r: any) => r.id === room)).toEqual({ id: room, members: 3, broadcaster: b.peerId });

    const res = await call(`/api/rooms/${room}?token=${admin}`);
    expect(res.status).toBe(200);
    const body = await res.json();
    expect(body.room).toBe(room);
    const byId = Object.fromEntries(body.members.map((m: any) => [m.id, m]));
    expect(Object.keys(byId).sort()).toEqual([b.peerId, v.peerId, user].sort());
    expect(byId[b.peerId]).toMatchObject({ role: 'broadcaster', protocol: 'json', instance: server.herald.hub.instanceId, identity: 'bee' });
    expect(byId[v.peerId]).toMatchObject({ role: 'viewer', protocol: 'json', identity: 'vee' });
    expect(byId[user]).toMatchObject({ role: 'viewer', protocol: 'seed', identity: user });
    for (const m of body.members) {
      expect(new Date(m.connectedSince).toISOString()).toBe(m.connectedSince);
      expect(Date.now() - Date.parse(m.connectedSince)).toBeLessThan(60_000);
    }
    expect((await call(`/api/rooms/no-such-room`, { token: admin })).status).toBe(404);
    for (const c of [b, v]) await c.close();
    reader.ws.close();
  });

  it('DELETE kicks: the kicked peer is told (removed / leaveline) and so is the room (peer-left kicked)', async () => {
    const { room, b, v, reader, user } = await mixedRoom();
    const kickJson = await call(`/api/rooms/${room}/peers/${v.peerId}`, { method: 'DELETE', token: admin });
    expect(kickJson.status).toBe(204);
    expect(await v.nextJson('removed')).toEqual({ type: 'removed', room, reason: 'kicked' });
    const left = await b.nextWhere('peer-left', (m) => m.peer.id === v.peerId);
    expect(left.reason).toBe('kicked');

    const kickSeed = await call(`/api/rooms/${room}/peers/${user}`, { method: 'DELETE', token: admin });
    expect(kickSeed.status).toBe(204);
    expect(await reader.next((m) => m === 'leaveline')).toBe('leaveline');
    expect((await b.nextWhere('peer-left', (m) => m.peer.id === user)).reason).toBe('kicked');

    // The room now holds only the broadcaster; kicking again is a 404.
    const after = await (await call(`/api/rooms/${room}`, { token: admin })).json();
    expect(after.members.map((m: any) => m.id)).toEqual([b.peerId]);
    expect((await call(`/api/rooms/${room}/peers/${v.peerId}`, { method: 'DELETE', token: admin })).status).toBe(404);
    // The kicked viewer may no longer signal in the room, but its connection is fine.
    await expectError(v.signal(room, b.peerId, { tag: 'x' }), 'forbidden');
    await v.join(room, 'viewer');
    await v.signal(room, b.peerId, { tag: 'back' });
    expect((await b.nextSignal('back')).from).toBe(v.peerId);
    for (const c of [b, v]) await c.close();
    reader.ws.close();
  });

  it('kicking a seed reader from a seed sender room: the sender gets leave|<user>, the reader leaveline', async () => {
    const room = uid('room');
    const user = uid('u');
    const sender = await TestSocket.open(`${server.ws}/webrtc/sender/${room}?token=${await mint('s', room, ['broadcaster'])}`);
    const reader = await TestSocket.open(`${server.ws}/webrtc/reader/${user}?token=${await mint(user, room, ['viewer'])}`);
    reader.send(`join|${room}`);
    await sender.nextStarting(`join|${user}`);
    expect((await call(`/api/rooms/${room}/peers/${user}`, { method: 'DELETE', token: admin })).status).toBe(204);
    expect(await sender.next()).toBe(`leave|${user}`);
    expect(await reader.next()).toBe('leaveline');
    sender.send(`offer|${user}|after-kick`);
    expect(await sender.next()).toMatch(/^error\|no-such-peer\|/);
    sender.ws.close();
    reader.ws.close();
  });

  it('an admin token for one room sees and kicks only in that room', async () => {
    const { room, b, v, reader, user } = await mixedRoom();
    const other = await mixedRoom();
    const scoped = await mint('room-operator', room, ['admin']);
    const { rooms } = await (await call('/api/rooms', { token: scoped })).json();
    expect(rooms.map((r: any) => r.id)).toEqual([room]);
    expect((await call(`/api/rooms/${room}`, { token: scoped })).status).toBe(200);
    expect((await call(`/api/rooms/${other.room}`, { token: scoped })).status).toBe(403);
    expect((await call(`/api/rooms/${other.room}/peers/${other.user}`, { method: 'DELETE', token: scoped })).status).toBe(403);
    // The other room is untouched: its reader is still a member.
    const members = (await (await call(`/api/rooms/${other.room}`, { token: admin })).json()).members.map((m: any) => m.id);
    expect(members).toContain(other.user);
    expect((await call(`/api/rooms/${room}/peers/${user}`, { method: 'DELETE', token: scoped })).status).toBe(204);
    for (const c of [b, v, other.b, other.v]) await c.close();
    reader.ws.close();
    other.reader.ws.close();
  });

  it('without a secret (dev mode) the admin routes answer a loopback client', async () => {
    const open = await startHerald();
    try {
      const res = await fetch(`${open.http}/api/rooms`);
      expect(res.status).toBe(200);
      expect(await res.json()).toEqual({ rooms: [] });
    } finally {
      await open.stop();
    }
  });
});

/** Parses Prometheus text into samples. */
function samples(text: string): { name: string; labels: Record<string, string>; value: number }[] {
  const out = [];
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)/.exec(line);
    if (!m) continue;
    const labels: Record<string, string> = {};
    for (const [, k, v] of (m[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) labels[k!] = v!;
    out.push({ name: m[1]!, labels, value: Number(m[3]) });
  }
  return out;
}

describe('GET /metrics', () => {
  let server: Running;
  beforeAll(async () => {
    server = await startHerald({ rateBurst: 20, ratePerSecond: 1 });
  });
  afterAll(() => server.stop());

  async function scrape() {
    const res = await fetch(`${server.http}/metrics`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/plain/);
    const all = samples(await res.text());
    /** The value of the sample with exactly these labels (0 when absent, as Prometheus reads it). */
    const value = (name: string, labels: Record<string, string> = {}) => {
      const hit = all.find((s) => s.name === name && JSON.stringify(Object.entries(s.labels).sort()) === JSON.stringify(Object.entries(labels).sort()));
      return hit?.value ?? 0;
    };
    return { all, value };
  }

  it('reads back exact counters and gauges after known traffic on both protocols', async () => {
    // Seed room: a sender and two readers.
    const seedRoom = uid('room');
    const sender = await TestSocket.open(`${server.ws}/webrtc/sender/${seedRoom}`);
    const r1 = await TestSocket.open(`${server.ws}/webrtc/reader/m1`);
    const r2 = await TestSocket.open(`${server.ws}/webrtc/reader/m2`);
    r1.send(`join|${seedRoom}`);
    await sender.nextStarting('join|m1');
    r2.send(`join|${seedRoom}`);
    await sender.nextStarting('join|m2');
    sender.send('offer|m1|o1');
    sender.send('offer|m2|o2');
    sender.send('candid|m1|c1');
    sender.send('custom|m1|z');
    expect(await r1.next()).toBe(`offer|${seedRoom}|o1`);
    expect(await r2.next()).toBe(`offer|${seedRoom}|o2`);
    expect(await r1.next()).toBe(`candid|${seedRoom}|c1`);
    expect(await r1.next()).toBe(`custom|${seedRoom}|z`);
    r1.send(`answer|${seedRoom}|a1`);
    r2.send(`answer|${seedRoom}|a2`);
    await sender.next((m) => m === 'answer|m1|a1');
    await sender.next((m) => m === 'answer|m2|a2');
    sender.send('offer|nobody|x');
    expect(await sender.next()).toMatch(/^error\|no-such-peer\|/);

    // JSON room: a broadcaster and a viewer.
    const jsonRoom = uid('room');
    const b = await JsonClient.connect(server.ws);
    await b.join(jsonRoom, 'broadcaster');
    const v = await JsonClient.connect(server.ws);
    await v.join(jsonRoom, 'viewer');
    await b.signal(jsonRoom, v.peerId, { description: { type: 'offer', sdp: 'v=0' } });
    await b.signal(jsonRoom, v.peerId, { candidate: { candidate: 'candidate:1' } });
    await v.signal(jsonRoom, b.peerId, { description: { type: 'answer', sdp: 'v=0' } });
    await v.nextJson('signal');
    await v.nextJson('signal');
    await b.nextJson('signal');
    await expectError(v.signal(jsonRoom, 'nobody', { x: 1 }), 'not-found');
    v.send('not json');
    expect((await v.nextJson('error')).code).toBe('bad-request');

    // One seed reader leaves by closing; one is kicked.
    r2.ws.close();
    expect(await sender.next()).toBe('leave|m2');
    expect(await server.herald.hub.kick(seedRoom, 'm1')).toBe(true);
    expect(await r1.next()).toBe('leaveline');
    expect(await sender.next()).toBe('leave|m1');

    const m = await scrape();
    expect(m.value('herald_connections', { protocol: 'seed' })).toBe(2); // sender, r1
    expect(m.value('herald_connections', { protocol: 'json' })).toBe(2);
    expect(m.value('herald_rooms')).toBe(2);
    expect(m.value('herald_cluster_up')).toBe(1);
    expect(m.value('herald_joins_total', { role: 'broadcaster' })).toBe(2);
    expect(m.value('herald_joins_total', { role: 'viewer' })).toBe(3);
    expect(m.value('herald_leaves_total', { reason: 'closed' })).toBe(1);
    expect(m.value('herald_leaves_total', { reason: 'kicked' })).toBe(1);
    expect(m.value('herald_messages_relayed_total', { type: 'offer' })).toBe(3);
    expect(m.value('herald_messages_relayed_total', { type: 'answer' })).toBe(3);
    expect(m.value('herald_messages_relayed_total', { type: 'candid' })).toBe(1);
    expect(m.value('herald_messages_relayed_total', { type: 'candidate' })).toBe(1);
    expect(m.value('herald_messages_relayed_total', { type: 'other' })).toBe(1);
    expect(m.value('herald_relay_latency_seconds_count')).toBe(9);
    expect(m.value('herald_relay_latency_seconds_bucket', { le: '+Inf' })).toBe(9);
    expect(m.value('herald_relay_latency_seconds_sum')).toBeGreaterThan(0);
    expect(m.value('herald_errors_total', { code: 'no-such-peer', protocol: 'seed' })).toBe(1);
    expect(m.value('herald_errors_total', { code: 'not-found', protocol: 'json' })).toBe(1);
    expect(m.value('herald_errors_total', { code: 'bad-request', protocol: 'json' })).toBe(1);
    expect(m.value('herald_rate_limited_total', { protocol: 'json' })).toBe(0);
    // Process metrics (prom-client defaults).
    expect(m.value('process_cpu_seconds_total')).toBeGreaterThan(0);
    expect(m.value('nodejs_heap_size_used_bytes')).toBeGreaterThan(0);
    expect(m.all.some((s) => s.name === 'process_resident_memory_bytes' && s.value > 0)).toBe(true);

    // Rate-limit hits: each of N messages gets exactly one error, not-found if it passed the
    // bucket, rate-limited if it did not; the counters must match what the client saw.
    const abuser = await JsonClient.connect(server.ws);
    await abuser.join(jsonRoom, 'viewer');
    const N = 24;
    for (let i = 0; i < N; i++) abuser.signalNoAck(jsonRoom, 'nobody', { i });
    const codes: string[] = [];
    for (let i = 0; i < N; i++) codes.push((await abuser.nextJson('error')).code);
    const limited = codes.filter((c) => c === 'rate-limited').length;
    expect(limited).toBeGreaterThanOrEqual(1);
    expect(codes.filter((c) => c === 'not-found').length).toBe(N - limited);
    const after = await scrape();
    expect(after.value('herald_rate_limited_total', { protocol: 'json' })).toBe(limited);
    expect(after.value('herald_errors_total', { code: 'rate-limited', protocol: 'json' })).toBe(limited);
    expect(after.value('herald_errors_total', { code: 'not-found', protocol: 'json' })).toBe(1 + N - limited);
    expect(after.value('herald_rate_limited_total', { protocol: 'seed' })).toBe(0);
    expect(after.value('herald_connections', { protocol: 'json' })).toBe(3);
    for (const s of [sender, r1]) s.ws.close();
    for (const c of [b, v, abuser]) await c.close();
  });
});
