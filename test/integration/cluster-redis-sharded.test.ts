import { Cluster as IoCluster } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { Instance, jsonConnections, startInstances, waitFor } from '../helpers/instances.js';
import { InstanceClients, uniqueIds } from '../helpers/instance-clients.js';
import { JsonClient, JsonError } from '../helpers/json-client.js';
import { roomOnMaster, TestRedisCluster } from '../helpers/redis-cluster.js';

/**
 * Redis Cluster mode (REDIS_CLUSTER_NODES; docs/operations.md "Redis Cluster") on a real
 * cluster of three masters: Herald instances in their own processes, rooms whose keys land on
 * every master, and a master killed and restarted empty while rooms on the others go on.
 */

let redis: TestRedisCluster;
let directory: IoCluster;
const instances: Instance[] = [];
const clients = new InstanceClients();
const { sender, reader, json } = clients;
const uniq = uniqueIds();

async function cluster(n: number, env: Record<string, string> = {}): Promise<Instance[]> {
  const started = await startInstances(n, {
    env: { REDIS_CLUSTER_NODES: redis.nodes, HERALD_RATE_BURST: '100000', HERALD_RATE_PER_SECOND: '100000', HERALD_RESUME_GRACE_MS: '15000', ...env },
  });
  instances.push(...started);
  return started;
}

/** Room membership as the directory holds it, through an instance's admin API. */
async function members(i: Instance, room: string): Promise<{ id: string; role: string; instance: string }[]> {
  const res = await fetch(`${i.http}/api/rooms/${encodeURIComponent(room)}`);
  // 404: no such room; 503: its slot is unreachable right now.
  if (res.status !== 200) return [];
  return ((await res.json()) as { members: { id: string; role: string; instance: string }[] }).members;
}

beforeAll(async () => {
  redis = await TestRedisCluster.start();
  directory = new IoCluster(redis.nodes.split(',').map((a) => ({ host: '127.0.0.1', port: Number(a.split(':')[1]) })), {
    redisOptions: { maxRetriesPerRequest: 1 },
    clusterRetryStrategy: () => 200,
  });
  directory.on('error', () => {});
  directory.on('node error', () => {});
}, 60_000);

afterEach(async () => {
  clients.closeAll();
});

afterAll(async () => {
  await Promise.all(instances.splice(0).map((i) => i.kill()));
  directory?.disconnect();
  await redis?.stop();
});

describe('Redis Cluster: everything single-node mode does', () => {
  let A: Instance;
  let B: Instance;
  let C: Instance;

  beforeAll(async () => {
    [A, B, C] = await cluster(3);
  }, 60_000);

  it('rooms whose keys land on each of the three masters relay across instances (seed protocol), and the admin listing sees them all', async () => {
    const rooms: string[] = [];
    for (let master = 0; master < 3; master++) {
      const room = await roomOnMaster(redis, master, uniq('every'));
      rooms.push(room);
      const s = await sender(A, room);
      const r = await reader(B, `u-${room}`);
      r.send(`join|${room}`);
      expect(await s.next()).toBe(`join|u-${room}`);
      s.send(`offer|u-${room}|v=0 sdp|with|bars`);
      expect(await r.next()).toBe(`offer|${room}|v=0 sdp|with|bars`);
      r.send(`answer|${room}|v=0 answer`);
      expect(await s.next()).toBe(`answer|u-${room}|v=0 answer`);
    }
    const masters = await Promise.all(rooms.map((room) => redis.masterOf(`herald:{room:${room}}`)));
    expect(new Set(masters).size).toBe(3);
    // The listing reads the room index, not a per-node SCAN: rooms on every master are in it.
    const listed = (await (await fetch(`${C.http}/api/rooms`)).json()) as { rooms: { id: string; members: number }[] };
    for (const room of rooms) expect(listed.rooms.find((r) => r.id === room)?.members).toBe(2);
  });

  it('JSON mesh peers on three instances hear each other and signal each other', async () => {
    const room = uniq('mesh');
    const p1 = await json(A, { peerId: uniq('p') });
    const p2 = await json(B, { peerId: uniq('p') });
    await p1.join(room, 'peer');
    const ack = await p2.join(room, 'peer');
    expect(ack.members).toEqual([{ id: p1.peerId, role: 'peer' }]);
    expect((await p1.nextJson('peer-joined')).peer).toEqual({ id: p2.peerId, role: 'peer' });
    await p1.signal(room, p2.peerId, { tag: 'hi' });
    expect((await p2.nextJson('signal')).data).toEqual({ tag: 'hi' });
    await p2.signal(room, p1.peerId, { tag: 'back' });
    expect((await p1.nextJson('signal')).data).toEqual({ tag: 'back' });
    const p3 = await json(C, { peerId: uniq('p') });
    await p3.join(room, 'peer');
    await Promise.all([p1.nextJson('peer-joined'), p2.nextJson('peer-joined')]);
    await p2.leave(room);
    for (const c of [p1, p3]) expect(await c.nextJson('peer-left')).toMatchObject({ room, peer: { id: p2.peerId }, reason: 'left' });
  });

  it('two instances racing to admit a broadcaster: exactly one wins, the other gets conflict', async () => {
    for (let round = 0; round < 6; round++) {
      const room = uniq('race');
      const [a, b] = await Promise.all([json(A), json(B)]);
      const results = await Promise.allSettled([a.join(room, 'broadcaster'), b.join(room, 'broadcaster')]);
      expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
      const lost = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
      expect((lost?.reason as JsonError).code).toBe('conflict');
      expect((await members(C, room)).filter((m) => m.role === 'broadcaster')).toHaveLength(1);
    }
  });

  it('a viewer dropped on B resumes on C with its queued signals in order; nobody hears it leave', async () => {
    const room = uniq('resume');
    const bc = await json(A);
    await bc.join(room, 'broadcaster');
    const viewer = await json(B, { peerId: uniq('v') });
    await viewer.join(room, 'viewer');
    await bc.nextJson('peer-joined');
    // A network cut (resumable). Signals sent before B has seen the socket go would be written
    // into it and lost (this client does not use acknowledgements): wait for B to see it.
    const before = await jsonConnections(B);
    viewer.socket.ws.terminate();
    await waitFor('B to see the socket gone', async () => (await jsonConnections(B)) === before - 1);
    for (let i = 0; i < 5; i++) await bc.signal(room, viewer.peerId, { tag: `queued-${i}` });
    const back = await json(C, { peerId: viewer.peerId, resumeToken: viewer.resumeToken });
    for (let i = 0; i < 5; i++) expect((await back.nextSignal(`queued-${i}`)).from).toBe(bc.peerId);
    await back.signal(room, bc.peerId, { tag: 'answer' });
    expect((await bc.nextSignal('answer')).from).toBe(viewer.peerId);
    expect(bc.pendingJson().filter((m) => m.type === 'peer-left')).toEqual([]);
    expect((await members(A, room)).find((m) => m.id === viewer.peerId)?.instance).toBeDefined();
  });
});

describe('Redis Cluster faults', () => {
  it('SIGKILL of a Herald instance: survivors reap it and tell its rooms', async () => {
    const [A, B, C] = await cluster(3);
    const room = uniq('crash');
    const s = await sender(A, room);
    const victim = await reader(B, 'victim');
    victim.send(`join|${room}`);
    expect(await s.next()).toBe('join|victim');
    const survivor = await reader(C, 'survivor');
    survivor.send(`join|${room}`);
    expect(await s.next()).toBe('join|survivor');
    const killedAt = Date.now();
    await B.kill();
    expect(await s.next((m) => m.startsWith('leave|'), 20_000)).toBe('leave|victim');
    console.log(`redis cluster: crashed instance reaped and its rooms told after ${Date.now() - killedAt} ms`);
    await waitFor('the directory to drop the victim', async () => (await members(A, room)).every((m) => m.id !== 'victim'));
    s.send('offer|survivor|still-here');
    expect(await survivor.next()).toBe(`offer|${room}|still-here`);
    // Leave cleanly: a later test must not find these two in the directory, dead.
    await Promise.all([A.terminate(), C.terminate()]);
  }, 60_000);

  it('a master killed and restarted empty: other rooms keep working, affected rooms answer unavailable then recover, no client reconnects, nobody is falsely reaped', async () => {
    const [A, B] = await cluster(2);
    // The victim is the master holding A's liveness key: its empty restart must not get A reaped.
    const probe = await json(A, { peerId: uniq('probe') });
    const probeRoom = uniq('probe');
    await probe.join(probeRoom, 'peer');
    const aId = (await members(A, probeRoom))[0]!.instance;
    const victimIndex = await redis.masterOf(`herald:{inst:${aId}}:alive`);
    const victim = redis.masters[victimIndex]!;
    const affected = await roomOnMaster(redis, victimIndex, uniq('hit'));
    const spared = await roomOnMaster(redis, (victimIndex + 1) % 3, uniq('spared'));
    const spared2 = await roomOnMaster(redis, (victimIndex + 2) % 3, uniq('spared'));

    // One broadcaster on A and one viewer on B per room: every relay crosses instances.
    const pairs = new Map<string, { bc: JsonClient; viewer: JsonClient }>();
    for (const room of [affected, spared, spared2]) {
      const bc = await json(A, { peerId: uniq('bc') });
      await bc.join(room, 'broadcaster');
      const viewer = await json(B, { peerId: uniq('viewer') });
      await viewer.join(room, 'viewer');
      await bc.nextJson('peer-joined');
      pairs.set(room, { bc, viewer });
    }
    let tag = 0;
    /** A signal from the room's broadcaster (A) that its viewer (B) receives. */
    const relay = async (room: string): Promise<void> => {
      const { bc, viewer } = pairs.get(room)!;
      const t = `m${++tag}`;
      await bc.signal(room, viewer.peerId, { tag: t });
      await viewer.nextSignal(t, 5000);
    };
    for (const room of pairs.keys()) await relay(room);
    const bId = (await members(A, affected)).find((m) => m.id === pairs.get(affected)!.viewer.peerId)!.instance;

    const killedAt = Date.now();
    await victim.kill();
    // The affected room answers `unavailable` (its slot has no master)...
    let unavailableAfter = 0;
    await waitFor('the affected room to answer unavailable', async () => {
      const { bc, viewer } = pairs.get(affected)!;
      try {
        // One sent as the master dies is answered when the bus gives up on it (up to 5 s).
        await bc.request({ type: 'signal', room: affected, to: viewer.peerId, data: { tag: 'during' } }, 10_000);
        return false;
      } catch (err) {
        if ((err as JsonError).code !== 'unavailable') throw err;
        unavailableAfter = Date.now() - killedAt;
        return true;
      }
    }, 20_000, 20);
    // A room on the dead master that no instance holds cannot be judged: unavailable. One that
    // A holds still admits, by the local rule (written to the directory once the master is back).
    const cold = await roomOnMaster(redis, victimIndex, uniq('cold'));
    const late = await json(A);
    await expect(late.join(cold, 'viewer')).rejects.toMatchObject({ code: 'unavailable' });
    await late.join(affected, 'viewer');
    expect((await pairs.get(affected)!.bc.nextJson('peer-joined')).peer.id).toBe(late.peerId);
    // ...while rooms on the other masters keep relaying, and no instance goes not-ready,
    // also once the surviving masters have marked the dead one failed.
    for (const room of [spared, spared2]) await relay(room);
    const survivor = redis.masters[(victimIndex + 1) % 3]!;
    await waitFor('the surviving masters to mark the victim failed', async () => {
      const nodes = await survivor.command('CLUSTER', 'NODES');
      return nodes.split('\n').some((line) => line.includes(`:${victim.port}@`) && /\bfail\b/.test(line));
    }, 20_000, 100);
    for (const room of [spared, spared2]) await relay(room);
    const fresh = await json(B);
    await fresh.join(spared, 'viewer');
    expect([await A.readyz(), await B.readyz()]).toEqual([200, 200]);

    const restartedAt = Date.now();
    await victim.start();
    let recoveredAfter = 0;
    await waitFor('the affected room to relay again', async () => {
      try {
        await relay(affected);
        recoveredAfter = Date.now() - restartedAt;
        return true;
      } catch (err) {
        if (err instanceof JsonError && err.code !== 'unavailable') throw err;
        return false;
      }
    }, 30_000, 100);
    // What lived on the emptied master is registered again: the room's members, and A.
    await waitFor('the affected room to be written again, with the viewer admitted meanwhile', async () => (await members(A, affected)).length === 3, 20_000);
    await waitFor('A to be registered again', async () => (await directory.exists(`herald:{inst:${aId}}:alive`)) === 1, 20_000);
    // Keep relaying in every room through a reaping window (liveness TTL + confirm + resettle):
    // a false reap would remove members and send peer-left.
    const until = Date.now() + 10_000;
    while (Date.now() < until) for (const room of pairs.keys()) await relay(room);
    for (const { bc, viewer } of pairs.values()) {
      expect(bc.pendingJson().filter((m) => m.type === 'peer-left' || m.type === 'removed')).toEqual([]);
      expect(viewer.pendingJson().filter((m) => m.type === 'peer-left' || m.type === 'removed')).toEqual([]);
    }
    // Instances that really died (other test files' or earlier tests') may be reaped now that
    // their master is back; A and B, alive all along, must not be.
    const reaped = (A.output + B.output)
      .split('\n')
      .flatMap((line): { msg?: string; instance?: string }[] => {
        try {
          return [JSON.parse(line)]; // pino lines; the rest (and a line still being written) are skipped
        } catch {
          return [];
        }
      })
      .filter((entry) => entry.msg === 'reaped a dead instance')
      .map((entry) => entry.instance);
    expect(reaped).not.toContain(aId);
    expect(reaped).not.toContain(bId);
    const again = await json(B);
    await again.join(affected, 'viewer');
    console.log(
      `redis cluster failover: master down -> affected room unavailable after ${unavailableAfter} ms; ` +
        `master restarted -> affected room relaying again after ${recoveredAfter} ms (outage ${restartedAt - killedAt} ms)`,
    );
    await Promise.all([A.kill(), B.kill()]);
  }, 120_000);
});
