import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { Instance, waitFor } from '../helpers/instances.js';
import { InstanceClients, uniqueIds } from '../helpers/instance-clients.js';
import { expectError } from '../helpers/json-client.js';
import { BlackHoleProxy } from '../helpers/proxy.js';
import { TestRedis } from '../helpers/redis.js';

/**
 * A Redis link that goes silent without closing (no FIN, no RST: a partition), then heals.
 * Instance B reaches Redis through a TCP proxy in the test that stops forwarding; A is
 * connected directly. B must notice (its link probe, src/cluster/redis/probe.ts), answer
 * /readyz 503, keep relaying among its own peers, refuse cross-instance sends, and, once
 * the link is back and A has reaped it meanwhile, register again with the same client
 * sockets: signals flow both ways, and a new joiner on A lists B's members.
 */

let redis: TestRedis;
let proxy: BlackHoleProxy;
const instances: Instance[] = [];
const clients = new InstanceClients();
const { json, sender, reader } = clients;
const uniq = uniqueIds();

beforeAll(async () => {
  redis = await TestRedis.start();
  proxy = await BlackHoleProxy.start(redis.port);
});

afterEach(async () => {
  clients.closeAll();
  await Promise.all(instances.splice(0).map((i) => i.kill()));
});

afterAll(async () => {
  await proxy?.stop();
  await redis?.stop();
});

describe('a silent Redis link', () => {
  it('makes the instance not ready, keeps local relays, refuses cross-instance ones, and heals on the same sockets after it was reaped', async () => {
    const [A, B] = await Promise.all([
      Instance.start({ name: 'herald-A', redisUrl: redis.url }),
      Instance.start({ name: 'herald-B', redisUrl: `redis://127.0.0.1:${proxy.port}` }),
    ]);
    instances.push(A, B);
    const room = uniq('mesh');
    const seedRoom = uniq('seed');
    const pA = await json(A, { peerId: uniq('pA') });
    await pA.join(room, 'peer');
    const pB = await json(B, { peerId: uniq('pB') });
    await pB.join(room, 'peer');
    const pB2 = await json(B, { peerId: uniq('pB2') });
    await pB2.join(room, 'peer');
    const seedSender = await sender(B, seedRoom);
    await pA.signal(room, pB.peerId, { tag: 'before' });
    expect((await pB.nextSignal('before')).from).toBe(pA.peerId);

    proxy.partition();
    const silentAt = Date.now();
    await B.waitReady(503, 30_000);
    const notReadyMs = Date.now() - silentAt;
    expect(await A.readyz()).toBe(200);

    // B still relays between its own peers, and refuses what must cross instances.
    await pB.signal(room, pB2.peerId, { tag: 'local' });
    expect((await pB2.nextSignal('local')).from).toBe(pB.peerId);
    await expectError(pB.signal(room, pA.peerId, { tag: 'across' }), 'unavailable');

    // A reaps B meanwhile: its peer hears B's peers leave.
    const gone = new Set<string>();
    while (gone.size < 2) gone.add((await pA.nextWhere('peer-left', (m) => m.reason === 'instance-lost', 30_000)).peer.id);
    expect([...gone].sort()).toEqual([pB.peerId, pB2.peerId].sort());

    proxy.heal();
    const healedAt = Date.now();
    await B.waitReady(200, 30_000);
    const readyMs = Date.now() - healedAt;

    // B registered again: A hears its peers come back, on the same sockets, both ways.
    const back = new Set<string>();
    while (back.size < 2) back.add((await pA.nextJson('peer-joined', 20_000)).peer.id);
    expect([...back].sort()).toEqual([pB.peerId, pB2.peerId].sort());
    await waitFor('A to B signalling', async () => {
      try {
        await pA.signal(room, pB.peerId, { tag: 'after' });
        return true;
      } catch {
        return false;
      }
    }, 20_000, 200);
    expect((await pB.nextSignal('after')).from).toBe(pA.peerId);
    await pB.signal(room, pA.peerId, { tag: 'reply' });
    expect((await pA.nextSignal('reply')).from).toBe(pB.peerId);

    // A newcomer on A lists B's members; a seed reader on A binds to B's seed sender.
    const late = await json(A, { peerId: uniq('late') });
    const ack = await late.join(room, 'peer');
    expect(ack.members.map((m: { id: string }) => m.id).sort()).toEqual([pA.peerId, pB.peerId, pB2.peerId].sort());
    const r = await reader(A, uniq('reader'));
    r.send(`join|${seedRoom}`);
    expect(await seedSender.next((m) => m.startsWith('join|'), 10_000)).toMatch(/^join\|reader-/);
    console.log(`silent redis link: not ready after ${notReadyMs} ms; ready again ${readyMs} ms after the link returned`);
  }, 120_000);
});
