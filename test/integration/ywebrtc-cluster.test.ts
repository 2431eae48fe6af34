import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Instance, startInstances, waitFor } from '../helpers/instances.js';
import { TestRedis } from '../helpers/redis.js';
import { roomOnMaster, TestRedisCluster } from '../helpers/redis-cluster.js';
import { YSocket } from '../helpers/ywebrtc-targets.js';

/**
 * y-webrtc topics across Herald instances (separate processes) over a real redis-server and
 * a real Redis Cluster: subscribers on different instances form one topic, a publish reaches
 * each subscriber exactly once, and it crosses to each other instance holding subscribers
 * once (counted with MONITOR on the Redis itself), not once per subscriber.
 */

let seq = 0;
const uid = (p: string) => `${p}-${++seq}-${Math.random().toString(36).slice(2, 8)}`;
const sockets: YSocket[] = [];

async function subscriber(i: Instance, topic: string): Promise<YSocket> {
  const s = await YSocket.connect(`${i.ws}/y-webrtc`);
  sockets.push(s);
  s.subscribe(topic);
  expect(await s.drain()).toEqual([]); // subscribed (its subscribe came before the marker)
  return s;
}

/** Waits until a publish on `topic` from `from` reports `n` clients (every instance's join is in). */
async function settled(from: YSocket, topic: string, n: number, others: YSocket[]): Promise<void> {
  await waitFor(`${n} subscribers of ${topic}`, async () => {
    const probe = `probe-${Math.random()}`;
    from.publish(topic, { probe });
    const got = await from.nextMessage();
    // Whoever got the probe consumes it, so later reads start clean.
    for (const o of others) await o.next((m) => m.includes(probe), 5000).catch(() => undefined);
    return got.clients === n;
  }, 15_000, 100);
}

afterAll(() => {
  for (const s of sockets) s.ws.terminate();
});

describe('y-webrtc over one Redis', () => {
  let redis: TestRedis;
  let A: Instance;
  let B: Instance;
  let C: Instance;
  let monitor: Redis;
  const published: string[][] = [];

  beforeAll(async () => {
    redis = await TestRedis.start();
    // A rate cap above the order test's 200 publishes in a row.
    [A, B, C] = await startInstances(3, { redisUrl: redis.url, env: { HERALD_SECRET: '', HERALD_RATE_BURST: '1000' } });
    const client = new Redis(redis.url);
    client.on('error', () => undefined);
    monitor = await client.monitor();
    monitor.on('error', () => undefined);
    monitor.on('monitor', (_time: string, args: string[]) => {
      if (args[0]?.toLowerCase() === 'publish') published.push(args);
    });
  }, 60_000);
  afterAll(async () => {
    monitor?.disconnect();
    await Promise.all([A, B, C].map((i) => i?.kill()));
    await redis?.stop();
  });

  it('subscribers on three instances form one topic: each gets every publish once, with the cluster-wide clients count', async () => {
    const topic = uid('doc');
    const a1 = await subscriber(A, topic);
    const a2 = await subscriber(A, topic);
    const b = [await subscriber(B, topic), await subscriber(B, topic), await subscriber(B, topic)];
    const c = [await subscriber(C, topic), await subscriber(C, topic), await subscriber(C, topic)];
    const all = [a1, a2, ...b, ...c];
    await settled(a1, topic, 8, all.slice(1));

    const marker = uid('payload');
    published.length = 0;
    a1.publish(topic, { marker, data: { type: 'signal', signal: { sdp: 'v=0' } } });
    for (const s of all) expect(await s.nextMessage()).toEqual({ type: 'publish', topic, marker, data: { type: 'signal', signal: { sdp: 'v=0' } }, clients: 8 });
    // Exactly once each: nothing else is waiting before a fresh marker comes back.
    for (const s of all) expect(await s.drain()).toEqual([]);
    // Crossed to B and to C once each, whatever their three subscribers.
    const carrying = published.filter((args) => args.slice(1).join(' ').includes(marker));
    expect(carrying).toHaveLength(2);
    expect(new Set(carrying.map((args) => args[1])).size).toBe(2);
  });

  it("a sender's publishes keep their order on every instance, and the topic shows in /api/rooms with its subscribers", async () => {
    const topic = uid('order');
    const a = await subscriber(A, topic);
    const b = await subscriber(B, topic);
    const c = await subscriber(C, topic);
    await settled(b, topic, 3, [a, c]);
    for (let i = 0; i < 200; i++) b.publish(topic, { i });
    for (const s of [a, b, c]) for (let i = 0; i < 200; i++) expect((await s.nextMessage()).i).toBe(i);

    const res = await fetch(`${C.http}/api/rooms/${encodeURIComponent(topic)}`);
    expect(res.status).toBe(200);
    const room = (await res.json()) as { members: { protocol: string; role: string }[] };
    expect(room.members).toHaveLength(3);
    expect(room.members.every((m) => m.protocol === 'ywebrtc' && m.role === 'peer')).toBe(true);
  });
});

describe('y-webrtc over a Redis Cluster (sharded channels)', () => {
  let redis: TestRedisCluster;
  let A: Instance;
  let B: Instance;

  beforeAll(async () => {
    redis = await TestRedisCluster.start();
    [A, B] = await startInstances(2, { env: { REDIS_CLUSTER_NODES: redis.nodes, HERALD_SECRET: '' } });
  }, 90_000);
  afterAll(async () => {
    await Promise.all([A, B].map((i) => i?.kill()));
    await redis?.stop();
  });

  it('topics whose keys land on different masters fan out across instances, once per subscriber', async () => {
    // One topic on each master, chosen so (random ids could all land on one master).
    const topics = await Promise.all([0, 1, 2].map((i) => roomOnMaster(redis, i, uid(`m${i}`))));
    const masters = new Set(await Promise.all(topics.map((t) => redis.masterOf(`herald:{room:${t}}`))));
    expect(masters.size).toBe(3);
    for (const topic of topics) {
      const a = await subscriber(A, topic);
      const b1 = await subscriber(B, topic);
      const b2 = await subscriber(B, topic);
      await settled(a, topic, 3, [b1, b2]);
      a.publish(topic, { hello: topic });
      for (const s of [a, b1, b2]) expect(await s.nextMessage()).toEqual({ type: 'publish', topic, hello: topic, clients: 3 });
      for (const s of [a, b1, b2]) expect(await s.drain()).toEqual([]);
    }
  });
});
