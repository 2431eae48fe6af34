import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Instance, jsonConnections, startInstances, waitFor } from '../helpers/instances.js';
import { JsonClient } from '../helpers/json-client.js';
import { TestRedis } from '../helpers/redis.js';

/**
 * Resume across instances (docs/protocol.md §2 resume; docs/architecture.md, Redis cluster): a JSON
 * peer that dropped on one instance resumes on another with its rooms and its queued
 * signals; a rolling restart of every instance loses no room.
 */

let redis: TestRedis;
const instances: Instance[] = [];
const clients: JsonClient[] = [];
let seq = 0;
const uniq = (name: string) => `${name}-${process.pid}-${++seq}`;

beforeAll(async () => {
  redis = await TestRedis.start();
});

afterAll(async () => {
  for (const c of clients) c.socket.ws.terminate();
  await Promise.all(instances.map((i) => i.kill()));
  await redis?.stop();
});

async function cluster(n: number): Promise<Instance[]> {
  const started = await startInstances(n, { redisUrl: redis.url, env: { HERALD_RESUME_GRACE_MS: '15000' } });
  instances.push(...started);
  return started;
}

async function connect(i: Instance, extra: Record<string, unknown> = {}): Promise<JsonClient> {
  const c = await JsonClient.connect(i.ws, extra);
  clients.push(c);
  return c;
}

/** Open JSON sockets an instance reports in /metrics. */
/** Follows a `bye` + 1012 (drain) to `next`, resuming there; returns the resumed client. */
async function follow(c: JsonClient, next: Instance): Promise<JsonClient> {
  const bye = await c.nextJson('bye');
  expect(bye.reconnect).toBe(true);
  expect((await c.closed).code).toBe(1012);
  const resumed = await connect(next, { peerId: c.peerId, resumeToken: c.resumeToken });
  return resumed;
}

describe('resume across instances over Redis', () => {
  it('a viewer dropped on B resumes on C: same rooms, queued signals in order, nobody hears it leave', async () => {
    const [A, B, C] = await cluster(3);
    const room = uniq('resume');
    const bc = await connect(A);
    await bc.join(room, 'broadcaster');
    const viewer = await connect(B, { peerId: uniq('v') });
    await viewer.join(room, 'viewer');
    await bc.nextJson('peer-joined');

    const before = await jsonConnections(B);
    viewer.socket.ws.terminate(); // a network cut: resumable
    await waitFor('B to see the socket gone', async () => (await jsonConnections(B)) === before - 1);
    for (let i = 0; i < 5; i++) await bc.signal(room, viewer.peerId, { tag: `queued-${i}` });

    const back = await connect(C, { peerId: viewer.peerId, resumeToken: viewer.resumeToken });
    // The queued signals, in order (they may arrive just before the ack's turn is taken).
    for (let i = 0; i < 5; i++) expect((await back.nextSignal(`queued-${i}`)).from).toBe(bc.peerId);
    expect(back.pendingJson().filter((m) => m.type === 'signal')).toEqual([]);

    // Live again both ways, through C now.
    await bc.signal(room, viewer.peerId, { tag: 'after' });
    expect((await back.nextSignal('after')).from).toBe(bc.peerId);
    await back.signal(room, bc.peerId, { tag: 'answer' });
    expect((await bc.nextSignal('answer')).from).toBe(viewer.peerId);
    expect(bc.pendingJson().filter((m) => m.type === 'peer-left')).toEqual([]);
    await Promise.all([A.kill(), B.kill(), C.kill()]);
  });

  it('the welcome says resumed, with the rooms', async () => {
    const [A, B] = await cluster(2);
    const room = uniq('welcome');
    const p = await connect(A, { peerId: uniq('p') });
    await p.join(room, 'peer');
    const before = await jsonConnections(A);
    p.socket.ws.terminate();
    await waitFor('A to see the socket gone', async () => (await jsonConnections(A)) === before - 1);
    const c = await JsonClient.open(B.ws);
    clients.push(c);
    const ack = await c.hello({ peerId: p.peerId, resumeToken: p.resumeToken });
    expect(ack).toMatchObject({ resumed: true, rooms: [{ room, role: 'peer' }] });
    await Promise.all([A.kill(), B.kill()]);
  });

  it('a rolling restart of every instance during a live broadcast loses no room and no viewer', async () => {
    const fleet = await cluster(3);
    const room = uniq('rolling');
    let bc = await connect(fleet[0]!);
    await bc.join(room, 'broadcaster');
    let viewers = [await connect(fleet[1]!), await connect(fleet[2]!), await connect(fleet[0]!)];
    for (const v of viewers) await v.join(room, 'viewer');
    for (let i = 0; i < viewers.length; i++) await bc.nextJson('peer-joined');
    const home = new Map<JsonClient, Instance>([[bc, fleet[0]!], [viewers[0]!, fleet[1]!], [viewers[1]!, fleet[2]!], [viewers[2]!, fleet[0]!]]);

    for (let step = 0; step < 3; step++) {
      const old = fleet[step]!;
      const [fresh] = await startInstances(1, { redisUrl: redis.url, env: { HERALD_RESUME_GRACE_MS: '15000' } });
      instances.push(fresh!);
      fleet.push(fresh!);
      // Everyone on the old instance follows the drain to the fresh one.
      const stopping = old.terminate();
      const moves: Promise<void>[] = [];
      for (const [c, at] of [...home]) {
        if (at !== old) continue;
        moves.push(
          follow(c, fresh!).then((resumed) => {
            home.delete(c);
            home.set(resumed, fresh!);
            if (c === bc) bc = resumed;
            else viewers = viewers.map((v) => (v === c ? resumed : v));
          }),
        );
      }
      await Promise.all(moves);
      expect(await stopping).toBe(0);
      // Still one room, one broadcaster, every viewer in it: a round of offer/answer.
      for (const v of viewers) {
        await bc.signal(room, v.peerId, { tag: `offer-${step}` });
        expect((await v.nextSignal(`offer-${step}`)).from).toBe(bc.peerId);
        await v.signal(room, bc.peerId, { tag: `answer-${step}-${v.peerId}` });
        expect((await bc.nextSignal(`answer-${step}-${v.peerId}`)).from).toBe(v.peerId);
      }
    }
    for (const c of [bc, ...viewers]) {
      expect(c.pendingJson().filter((m) => m.type === 'peer-left' || m.type === 'removed')).toEqual([]);
    }
    await Promise.all(fleet.map((i) => i.kill()));
  });
});
