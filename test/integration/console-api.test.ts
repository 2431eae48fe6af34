import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHerald, type Running } from '../helpers/herald.js';
import { Instance, startInstances, waitFor } from '../helpers/instances.js';
import { JsonClient, uid } from '../helpers/json-client.js';
import { TestRedis } from '../helpers/redis.js';
import { TestSocket } from '../helpers/socket.js';
import { tokenMinter } from '../helpers/tokens.js';

/**
 * The API behind the operators' console (docs/operations.md "Admin API"): who am I, the
 * paginated room listing, instances and rates; on one in-process instance, then on two
 * processes over a real redis-server.
 */

const SECRET = '0123456789abcdef0123';
const mint = tokenMinter(SECRET);

const get = async (url: string, token?: string) => {
  const res = await fetch(url, { headers: token ? { Authorization: `Bearer ${token}` } : {} });
  return { status: res.status, body: (await res.json()) as any };
};

describe('console API, one instance', () => {
  let server: Running;
  let admin: string;
  const sockets: TestSocket[] = [];
  beforeAll(async () => {
    server = await startHerald({ secret: SECRET });
    admin = await mint('operator', '*', ['admin']);
  });
  afterAll(async () => {
    for (const s of sockets) s.ws.terminate();
    await server.stop();
  });

  async function client(room: string, role: 'broadcaster' | 'viewer' | 'peer'): Promise<JsonClient> {
    const c = new JsonClient(await TestSocket.open(`${server.ws}/ws?token=${await mint(uid('who'), room, [role])}`));
    sockets.push(c.socket);
    await c.hello();
    await c.join(room, role);
    return c;
  }

  it('GET /api/me: nobody without a token, 401 with a forged one, 403 without admin, else who and which rooms', async () => {
    expect(await get(`${server.http}/api/me`)).toMatchObject({ status: 200, body: { signedIn: false, open: false, identity: null, room: null } });
    const forged = await get(`${server.http}/api/me`, await mint('x', '*', ['admin'], 'another-secret-of-16+'));
    expect(forged).toMatchObject({ status: 401, body: { error: 'unauthorized' } });
    expect((await get(`${server.http}/api/me`, await mint('v', '*', ['viewer']))).body.error).toBe('forbidden');
    const me = await get(`${server.http}/api/me`, admin);
    expect(me.status).toBe(200);
    expect(me.body).toMatchObject({ signedIn: true, open: false, identity: 'operator', room: '*', instance: server.herald.hub.instanceId });
    expect(Date.parse(me.body.expiresAt)).toBeGreaterThan(Date.now());
    const scoped = await get(`${server.http}/api/me`, await mint('ops-r', 'r1', ['admin']));
    expect(scoped.body).toMatchObject({ identity: 'ops-r', room: 'r1' });
  });

  it('GET /api/instances and /api/rates: 401 without a token or with a forged one, 403 without the admin role', async () => {
    const forged = await mint('x', '*', ['admin'], 'another-secret-of-16+');
    const viewer = await mint('v', '*', ['viewer', 'broadcaster', 'peer']);
    for (const path of ['/api/instances', '/api/rates']) {
      expect(await get(`${server.http}${path}`), path).toMatchObject({ status: 401, body: { error: 'unauthorized' } });
      expect(await get(`${server.http}${path}`, forged), path).toMatchObject({ status: 401, body: { error: 'unauthorized' } });
      expect(await get(`${server.http}${path}`, viewer), path).toMatchObject({ status: 403, body: { error: 'forbidden' } });
    }
  });

  it('GET /api/rooms: search, sort, pages, and members by role, protocol and instance', async () => {
    const tag = uid('list');
    const small = `${tag}-a`;
    const big = `${tag}-b`;
    await client(small, 'peer');
    const b = await client(big, 'broadcaster');
    await client(big, 'viewer');
    await client(big, 'viewer');
    const readerId = uid('u'); // a seed reader id is its token's identity
    const reader = await TestSocket.open(`${server.ws}/webrtc/reader/${readerId}?token=${await mint(readerId, big, ['viewer'])}`);
    sockets.push(reader);
    reader.send(`join|${big}`);
    await waitFor('the seed reader in the listing', async () => (await get(`${server.http}/api/rooms?q=${big}`, admin)).body.rooms[0]?.members === 4);

    const byId = await get(`${server.http}/api/rooms?q=${tag}`, admin);
    expect(byId.body.total).toBe(2);
    expect(byId.body.rooms.map((r: any) => r.id)).toEqual([small, big]);
    const bigRow = byId.body.rooms[1];
    expect(bigRow).toEqual({
      id: big,
      members: 4,
      broadcaster: b.peerId,
      roles: { broadcaster: 1, viewer: 3 },
      protocols: { json: 3, seed: 1 },
      instances: { [server.herald.hub.instanceId]: 4 },
    });
    expect(byId.body.rooms[0]).toMatchObject({ id: small, members: 1, broadcaster: null, roles: { peer: 1 } });

    const bySize = await get(`${server.http}/api/rooms?q=${tag.toUpperCase()}&sort=-members`, admin);
    expect(bySize.body.rooms.map((r: any) => r.id)).toEqual([big, small]);
    const page2 = await get(`${server.http}/api/rooms?q=${tag}&sort=-id&limit=1&offset=1`, admin);
    expect(page2.body).toMatchObject({ total: 2, offset: 1, limit: 1 });
    expect(page2.body.rooms.map((r: any) => r.id)).toEqual([small]);
    expect((await get(`${server.http}/api/rooms?q=nothing-like-this`, admin)).body).toMatchObject({ rooms: [], total: 0 });
  });

  it('GET /api/rooms: a malformed query is 400 bad-request naming the parameter', async () => {
    for (const [query, name] of [
      ['limit=0', 'limit'],
      ['limit=501', 'limit'],
      ['limit=ten', 'limit'],
      ['offset=-1', 'offset'],
      ['offset=1.5', 'offset'],
      ['sort=size', 'sort'],
      [`q=${'x'.repeat(201)}`, 'q'],
    ]) {
      const res = await get(`${server.http}/api/rooms?${query}`, admin);
      expect(res.status, query).toBe(400);
      expect(res.body.error).toBe('bad-request');
      expect(res.body.message).toContain(name);
    }
    for (const query of ['minutes=0', 'minutes=6', 'minutes=x']) {
      const res = await get(`${server.http}/api/rates?${query}`, admin);
      expect(res.status, query).toBe(400);
      expect(res.body.error).toBe('bad-request');
    }
  });

  it('a room-scoped admin token lists only its room and may not read instances or rates', async () => {
    const mine = uid('mine');
    const other = uid('other');
    await client(mine, 'peer');
    await client(other, 'peer');
    const scoped = await mint('ops-mine', mine, ['admin']);
    const list = await get(`${server.http}/api/rooms`, scoped);
    expect(list.body.rooms.map((r: any) => r.id)).toEqual([mine]);
    expect(list.body.total).toBe(1);
    expect((await get(`${server.http}/api/rooms?q=${other}`, scoped)).body.total).toBe(0);
    for (const path of ['/api/instances', '/api/rates']) {
      const res = await get(`${server.http}${path}`, scoped);
      expect(res.status, path).toBe(403);
      expect(res.body.error).toBe('forbidden');
    }
    expect((await get(`${server.http}/api/rooms`, admin)).body.total).toBeGreaterThanOrEqual(2);
  });

  it('GET /api/instances: this instance, up, with its connections by protocol and rooms', async () => {
    const room = uid('inst');
    await client(room, 'peer');
    const res = await get(`${server.http}/api/instances`, admin);
    expect(res.status).toBe(200);
    expect(res.body.instances).toHaveLength(1);
    const [me] = res.body.instances;
    expect(me).toMatchObject({ id: server.herald.hub.instanceId, up: true, self: true, notReady: null });
    const open = server.herald.gateway.connectionCounts() as Record<string, number>;
    expect(me.connections).toEqual(open);
    expect(res.body.connections).toEqual(open);
    expect(me.rooms).toBe(server.herald.hub.roomCount);
    expect(Date.parse(me.startedAt)).toBeLessThanOrEqual(Date.now());
  });

  it('GET /api/rates: relayed signals and errors show up as per-second rates in the newest buckets', async () => {
    const room = uid('rates');
    const a = await client(room, 'peer');
    const b = await client(room, 'peer');
    const total = (series: number[] | undefined) => (series ?? []).reduce((s, v) => s + v, 0);
    const before = (await get(`${server.http}/api/rates?minutes=1`, admin)).body;
    expect(before.stepMs).toBe(2000);
    for (const name of ['messages', 'errors', 'joins', 'leaves', 'connections']) expect(before.series[name], name).toHaveLength(30);
    for (let i = 0; i < 40; i++) await a.signal(room, b.peerId, { tag: `m${i}` });
    a.send({ type: 'no-such-message' });
    await waitFor(
      'messages and errors in /api/rates',
      async () => {
        const { series } = (await get(`${server.http}/api/rates?minutes=1`, admin)).body;
        return total(series.messages) > total(before.series.messages) && total(series.errors) > total(before.series.errors);
      },
      20_000,
      250,
    );
    const after = (await get(`${server.http}/api/rates?minutes=1`, admin)).body;
    expect(after.series.messages).toHaveLength(30);
    expect(after.series.connections.at(-1)).toBeGreaterThanOrEqual(2);
    // 40 signals (plus anything else relayed meanwhile) at 2 s per bucket is at least 20/s summed.
    expect(total(after.series.messages) - total(before.series.messages)).toBeGreaterThanOrEqual(20);
  });
});

describe('console API, two instances over Redis', () => {
  let redis: TestRedis;
  let instances: Instance[];
  const sockets: TestSocket[] = [];
  beforeAll(async () => {
    redis = await TestRedis.start();
    instances = await startInstances(2, { redisUrl: redis.url });
  });
  afterAll(async () => {
    for (const s of sockets) s.ws.terminate();
    await Promise.all((instances ?? []).map((i) => i.kill()));
    await redis?.stop();
  });

  async function peer(i: Instance, room: string): Promise<JsonClient> {
    const c = await JsonClient.connect(i.ws);
    sockets.push(c.socket);
    await c.join(room, 'peer');
    return c;
  }

  it('rooms held on either instance are listed by both, with members by instance; rates add up across them', async () => {
    const [a, b] = instances as [Instance, Instance];
    const tag = `both-${process.pid}`;
    const onA = `${tag}-on-a`;
    const shared = `${tag}-shared`;
    await peer(a, onA);
    const x = await peer(a, shared);
    const y = await peer(b, shared);
    const ids = (await get(`${a.http}/api/instances`)).body.instances.map((i: any) => i.id);
    expect(ids).toHaveLength(2);
    const idOf = async (i: Instance) => (await get(`${i.http}/api/me`)).body.instance as string;
    const [idA, idB] = [await idOf(a), await idOf(b)];
    for (const from of [a, b]) {
      const { body } = await get(`${from.http}/api/rooms?q=${tag}`);
      expect(body.rooms.map((r: any) => r.id)).toEqual([onA, shared]);
      expect(body.rooms[1].instances).toEqual({ [idA]: 1, [idB]: 1 });
      expect(body.rooms[0].instances).toEqual({ [idA]: 1 });
    }
    const list = (await get(`${b.http}/api/instances`)).body;
    expect(list.instances.map((i: any) => [i.id, i.up, i.self]).sort()).toEqual([[idA, true, false], [idB, true, true]].sort());

    // Signals relayed on A (x → y) and on B (y → x) both count in either instance's rates.
    for (let i = 0; i < 10; i++) {
      await x.signal(shared, y.peerId, { tag: `a${i}` });
      await y.signal(shared, x.peerId, { tag: `b${i}` });
    }
    const summed = async (i: Instance) => ((await get(`${i.http}/api/rates?minutes=1`)).body.series.messages as number[]).reduce((s: number, v: number) => s + v, 0);
    await waitFor('20 relayed signals (10/s summed over 2 s buckets) in the rates of both', async () => (await summed(a)) >= 10 && (await summed(b)) >= 10, 20_000, 250);
    expect((await get(`${a.http}/api/rates`)).body.instances).toBe(2);
  });

  it('an instance that crashed shows as down (not up) until its report expires', async () => {
    const [a, b] = instances as [Instance, Instance];
    const idB = (await get(`${b.http}/api/me`)).body.instance;
    await b.kill();
    await waitFor('B down in A\'s instance list', async () => {
      const { body } = await get(`${a.http}/api/instances`);
      return body.instances.some((i: any) => i.id === idB && i.up === false);
    }, 20_000, 250);
    const { body } = await get(`${a.http}/api/instances`);
    expect(body.instances.find((i: any) => i.self).up).toBe(true);
  });

  it('while Redis is down the cluster-wide routes answer 503 unavailable, not a 500', async () => {
    const [a] = instances as [Instance];
    await redis.kill();
    await a.waitReady(503);
    for (const path of ['/api/instances', '/api/rates', '/api/rooms']) {
      expect(await get(`${a.http}${path}`), path).toMatchObject({ status: 503, body: { error: 'unavailable' } });
    }
    expect((await get(`${a.http}/api/me`)).status).toBe(200); // who-am-I needs no Redis
  });
});
