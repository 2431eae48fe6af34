import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHerald, type Running } from '../helpers/herald.js';
import { waitFor } from '../helpers/instances.js';
import { JsonClient, expectError, uid } from '../helpers/json-client.js';
import { TestRedis } from '../helpers/redis.js';

/** Findings 8 and 9 of the security probe: Redis keys left behind, and room ids that collide as keys. */

let redis: TestRedis;
let server: Running;
let control: Redis;
beforeAll(async () => {
  redis = await TestRedis.start();
  server = await startHerald({ redisUrl: redis.url, redisPrefix: 'hyg' });
  control = new Redis(redis.url);
});
afterAll(async () => {
  control.disconnect();
  await server.stop();
  await redis.stop();
});

/** Every key of peers and rooms (not the instance's own liveness and index keys). */
async function peerAndRoomKeys(): Promise<string[]> {
  return (await control.keys('hyg:{*')).filter((k) => !k.startsWith('hyg:{inst:'));
}

describe('Redis hygiene (finding 8)', () => {
  it('100 clean connect/join/close cycles leave no key that outlives its peer or room by more than 120 s', async () => {
    const before = new Set(await peerAndRoomKeys());
    for (let i = 0; i < 100; i++) {
      const c = await JsonClient.connect(server.ws);
      await c.join(uid('cycle'), 'peer');
      await c.close();
    }
    // Closing is final (1000): the peer leaves its room and its binding is released.
    await waitFor('every peer binding released', async () => {
      for (const k of await peerAndRoomKeys()) if (k.includes('{peer:') && (await control.hexists(k, 'i'))) return false;
      return true;
    }, 20_000);
    const left = (await peerAndRoomKeys()).filter((k) => !before.has(k));
    const ttls = await Promise.all(left.map((k) => control.ttl(k)));
    const lingering = left.filter((_, i) => ttls[i]! < 0 || ttls[i]! > 120);
    expect(lingering).toEqual([]);
    // What is left is at most one claim counter per peer and one version per room.
    expect(left.length).toBeLessThanOrEqual(200);
  });
});

describe('room ids as keys (finding 9)', () => {
  it('room ids with lone surrogates are refused (bad-request), so show\\uD800, show\\uDBFF and show\\uFFFD cannot share keys', async () => {
    const broadcaster = await JsonClient.connect(server.ws);
    await broadcaster.join('show\uFFFD', 'broadcaster');
    const viewer = await JsonClient.connect(server.ws);
    for (const bad of ['show\uD800', 'show\uDBFF', 'show\uDC00', '\uDC00\uD800']) {
      await expectError(viewer.join(bad, 'viewer'), 'bad-request');
      await expectError(viewer.signal(bad, broadcaster.peerId, { x: 1 }), 'bad-request');
    }
    // A well-formed pair is a room like any other; the U+FFFD room's broadcaster is not in it.
    const ack = await viewer.join('show\uD83D\uDE00', 'viewer');
    expect(ack.members).toEqual([]);
    await viewer.join('show\uFFFD', 'viewer');
    expect(await control.exists('hyg:{room:show\uD83D\uDE00}:members')).toBe(1);
    await viewer.close();
    await broadcaster.close();
  });
});
