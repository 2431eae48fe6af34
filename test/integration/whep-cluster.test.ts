import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { Instance, startInstances, waitFor } from '../helpers/instances.js';
import { JsonClient } from '../helpers/json-client.js';
import { InstanceClients, uniqueIds } from '../helpers/instance-clients.js';
import { TestRedis } from '../helpers/redis.js';
import { answerFor, answerNextOffer, patchFrag, postOffer } from '../helpers/whep.js';

/**
 * WHEP across instances (docs/whep.md "Across instances"): the broadcaster on A, the POST on B
 * (which holds the session), PATCH and DELETE on C, as a load balancer may spread them; and
 * with Redis down, a POST that needs the cluster answers 503 with Retry-After.
 */

let redis: TestRedis;
let A: Instance;
let B: Instance;
let C: Instance;
const clients = new InstanceClients();
const uniq = uniqueIds();

beforeAll(async () => {
  redis = await TestRedis.start();
  [A, B, C] = await startInstances(3, { redisUrl: redis.url });
});

afterEach(() => clients.closeAll());

afterAll(async () => {
  await Promise.all([A, B, C].map((i) => i?.kill()));
  await redis?.stop();
});

async function broadcaster(at: Instance, room: string): Promise<JsonClient> {
  const b = await clients.json(at, { peerId: uniq('b') });
  await b.join(room, 'broadcaster');
  return b;
}

describe('WHEP across instances', () => {
  it('broadcaster on A, POST on B, PATCH and DELETE on C: the same statuses, the candidates and the leave reach A', async () => {
    const room = uniq('whep');
    const b = await broadcaster(A, room);
    const tag = uniq('t');
    const [res, { viewer }] = await Promise.all([postOffer(B.http, room), answerNextOffer(b, room, tag)]);
    expect(res.status).toBe(201);
    expect(await res.text()).toBe(answerFor(tag));
    const location = res.headers.get('location')!;
    expect(location).toBe(`/whep/${room}/${viewer}`);
    const onC = `${C.http}${location}`;

    // PATCH on C: delivered by peer id to B's session, which signals A's broadcaster.
    expect((await patchFrag(onC)).status).toBe(204);
    const cand = await b.nextWhere('signal', (m) => m.from === viewer && m.data?.candidate?.candidate?.startsWith('candidate:'));
    expect(cand.data.whep).toBe(true);
    expect((await patchFrag(onC, { headers: { 'If-Match': res.headers.get('etag')! } })).status).toBe(204);
    expect((await patchFrag(onC, { headers: { 'If-Match': '"stale"' } })).status).toBe(412);

    // DELETE on C: a cluster-wide leave; B's session ends, A's broadcaster hears it.
    expect((await fetch(onC, { method: 'DELETE' })).status).toBe(200);
    const left = await b.nextWhere('peer-left', (m) => m.peer.id === viewer);
    expect(left.peer.whep).toBe(true);
    expect((await fetch(onC, { method: 'DELETE' })).status).toBe(404);
    expect((await fetch(`${B.http}${location}`, { method: 'DELETE' })).status).toBe(404);
    await waitFor('B to forget the session', async () => (await patchFrag(onC)).status === 404);
    expect((await patchFrag(`${B.http}${location}`)).status).toBe(404);
  });

  it('a DELETE on another instance cannot remove a member that is not a WHEP session', async () => {
    const room = uniq('whep');
    const b = await broadcaster(A, room);
    const v = await clients.json(A, { peerId: `whep-${'C'.repeat(22)}` });
    await v.join(room, 'viewer');
    expect((await fetch(`${C.http}/whep/${room}/${v.peerId}`, { method: 'DELETE' })).status).toBe(404);
    expect((await fetch(`${C.http}/whep/${room}/${b.peerId}`, { method: 'DELETE' })).status).toBe(404);
    // Both are still there: the broadcaster still answers signals of that viewer.
    await v.signal(room, b.peerId, { tag: 'still-here' });
    await b.nextSignal('still-here');
  });

  it('409 with Retry-After on B when the room has no broadcaster anywhere', async () => {
    const res = await postOffer(B.http, uniq('empty'));
    expect(res.status).toBe(409);
    expect(res.headers.get('retry-after')).toBe('5');
  });

  it('503 with Retry-After while Redis is unavailable; plays again once it is back', async () => {
    const room = uniq('whep');
    const b = await broadcaster(A, room);
    await redis.stop();
    await B.waitReady(503);
    const res = await postOffer(B.http, room);
    expect(res.status).toBe(503);
    expect(Number(res.headers.get('retry-after'))).toBeGreaterThan(0);
    expect((await res.json()).error).toBe('unavailable');
    await redis.restart();
    await Promise.all([A, B, C].map((i) => i.waitReady(200)));
    const tag = uniq('t');
    await waitFor('a POST on B to be answered again', async () => {
      const [again] = await Promise.all([postOffer(B.http, room), answerNextOffer(b, room, tag).catch(() => undefined)]);
      return again.status === 201;
    }, 20_000, 200);
  });
});
