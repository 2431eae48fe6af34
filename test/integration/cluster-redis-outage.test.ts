import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { Instance, startInstances, waitFor } from '../helpers/instances.js';
import { InstanceClients, uniqueIds } from '../helpers/instance-clients.js';
import { TestRedis } from '../helpers/redis.js';
import { JsonClient } from '../helpers/json-client.js';

/**
 * Joins during a Redis outage (docs/operations.md "What works during a Redis outage"): an
 * instance admits into rooms it holds by the local rule, writes them to the directory when
 * Redis is back, and two broadcasters admitted on two instances are reconciled
 * deterministically (the earlier one keeps the room; the other is told `conflict`).
 */

let redis: TestRedis;
const instances: Instance[] = [];
const clients = new InstanceClients();
const { open, json } = clients;
const uniq = uniqueIds();

async function directory(room: string): Promise<{ peerId: string; role: string; instanceId: string }[]> {
  const client = redis.client();
  try {
    return (await client.hvals(`herald:{room:${room}}:members`)).map((j) => JSON.parse(j));
  } finally {
    client.disconnect();
  }
}

beforeAll(async () => {
  redis = await TestRedis.start();
});

afterEach(async () => {
  clients.closeAll();
  if (!redis.running) await redis.restart();
  await Promise.all(instances.splice(0).map((i) => i.kill()));
});

afterAll(async () => {
  await redis?.stop();
});

async function cluster(n: number): Promise<Instance[]> {
  const started = await startInstances(n, { redisUrl: redis.url });
  instances.push(...started);
  return started;
}

describe('joins while Redis is unreachable', () => {
  it('admits a seed reader to a local sender and a peer to a room the instance holds; writes both to the directory when Redis is back', async () => {
    const [A, B] = await cluster(2);
    const seedRoom = uniq('seed');
    const mesh = uniq('mesh');
    const s = await open(`${A.ws}/webrtc/sender/${seedRoom}`);
    const p1 = await json(A, { peerId: uniq('p1') });
    await p1.join(mesh, 'peer');
    const far = await json(B, { peerId: uniq('far') });
    await far.join(mesh, 'peer');
    await p1.nextJson('peer-joined');

    await redis.kill();
    await Promise.all([A.waitReady(503), B.waitReady(503)]);

    // A seed reader (a new connection) joins the sender on the same instance.
    const r = await open(`${A.ws}/webrtc/reader/outage-reader`);
    r.send(`join|${seedRoom}`);
    expect(await s.next()).toBe('join|outage-reader');
    s.send('offer|outage-reader|during');
    expect(await r.next()).toBe(`offer|${seedRoom}|during`);
    r.send(`answer|${seedRoom}|back`);
    expect(await s.next()).toBe('answer|outage-reader|back');

    // A JSON peer joins a mesh room A holds; its local room-mate hears it at once.
    const p2 = await json(A, { peerId: uniq('p2') });
    const ack = await p2.join(mesh, 'peer');
    expect(ack.members.map((m: { id: string }) => m.id).sort()).toEqual([far.peerId, p1.peerId].sort());
    expect((await p1.nextJson('peer-joined')).peer.id).toBe(p2.peerId);
    await p1.signal(mesh, p2.peerId, { tag: 'local' });
    expect((await p2.nextSignal('local')).from).toBe(p1.peerId);

    // A room A holds nothing of cannot be judged without the directory.
    const stranger = await json(A);
    await expect(stranger.join(uniq('elsewhere'), 'viewer')).rejects.toMatchObject({ code: 'unavailable' });

    await redis.restart();
    await Promise.all([A.waitReady(200), B.waitReady(200)]);
    await waitFor('the outage joins to be written to the directory', async () => {
      const seedIds = (await directory(seedRoom)).map((m) => m.peerId);
      const meshIds = (await directory(mesh)).map((m) => m.peerId);
      return seedIds.includes('outage-reader') && meshIds.includes(p2.peerId);
    });
    // The other instance hears of the newcomer once the directory has it, and they can talk.
    expect((await far.nextJson('peer-joined', 10_000)).peer.id).toBe(p2.peerId);
    await far.signal(mesh, p2.peerId, { tag: 'across' });
    expect((await p2.nextSignal('across')).from).toBe(far.peerId);
  }, 60_000);

  it('two broadcasters admitted on two instances during the outage: the earlier keeps the room, the later is told conflict, whichever instance reconciles first', async () => {
    const [A, B] = await cluster(2);
    // Round 1: the earlier broadcaster is on A; round 2: on B.
    const rooms = [uniq('split'), uniq('split')];
    const viewers: JsonClient[] = [];
    for (const room of rooms) {
      for (const i of [A, B]) {
        const v = await json(i, { peerId: uniq('v') });
        await v.join(room, 'viewer');
        viewers.push(v);
      }
    }
    await redis.kill();
    await Promise.all([A.waitReady(503), B.waitReady(503)]);

    const jsonSender = async (i: Instance, room: string) => {
      const b = await json(i, { peerId: uniq('bc') });
      await b.join(room, 'broadcaster');
      return b;
    };
    const early1 = await jsonSender(A, rooms[0]!);
    const late1At = Date.now();
    await waitFor('the clock to move past the earlier join', async () => Date.now() > late1At + 1, 1000, 1);
    const late1 = await open(`${B.ws}/webrtc/sender/${rooms[0]}`); // a seed sender loses with close 4009
    await late1.next((m) => m.startsWith('join|'), 10_000);
    const early2 = await jsonSender(B, rooms[1]!);
    // Join times have millisecond resolution: make sure the later join is later.
    const earlyAcked = Date.now();
    await waitFor('the clock to move past the earlier join', async () => Date.now() > earlyAcked + 1, 1000, 1);
    const late2 = await jsonSender(A, rooms[1]!);

    await redis.restart();
    await Promise.all([A.waitReady(200), B.waitReady(200)]);

    expect((await Promise.race([late1.closed, new Promise((_, reject) => setTimeout(() => reject(new Error('the losing seed sender was not closed')), 15_000))]) as { code: number }).code).toBe(4009);
    expect(await late2.nextJson('removed', 10_000)).toEqual({ type: 'removed', room: rooms[1], reason: 'conflict' });
    await waitFor('the directory to settle on the earlier broadcasters', async () => {
      const [d1, d2] = await Promise.all(rooms.map(directory));
      const b1 = d1!.filter((m) => m.role === 'broadcaster').map((m) => m.peerId);
      const b2 = d2!.filter((m) => m.role === 'broadcaster').map((m) => m.peerId);
      return b1.join() === early1.peerId && b2.join() === early2.peerId;
    });
    // The winners keep working with every viewer, on both instances.
    for (const [room, bc, vs] of [[rooms[0]!, early1, viewers.slice(0, 2)], [rooms[1]!, early2, viewers.slice(2)]] as const) {
      for (const v of vs) {
        await waitFor(`${v.peerId} to reach ${room}'s broadcaster`, async () => {
          try {
            await v.signal(room, bc.peerId, { tag: `to-${bc.peerId}` });
            return true;
          } catch {
            return false;
          }
        });
        expect((await bc.nextSignal(`to-${bc.peerId}`)).from).toBe(v.peerId);
      }
    }
    expect(early1.pendingJson().filter((m) => m.type === 'removed')).toEqual([]);
    expect(early2.pendingJson().filter((m) => m.type === 'removed')).toEqual([]);
  }, 60_000);
});
