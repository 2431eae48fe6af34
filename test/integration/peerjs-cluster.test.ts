import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startInstances, waitFor, type Instance } from '../helpers/instances.js';
import { PeerJsSocket, instanceTarget } from '../helpers/peerjs-targets.js';
import { TestRedis } from '../helpers/redis.js';

/**
 * PeerJS across two Herald processes on one private redis-server: delivery by peer id
 * through the peer directory, ids held cluster-wide, the queue and EXPIRE across instances.
 */

const EXPIRE_MS = 3000;
let redis: TestRedis;
let A: Instance;
let B: Instance;
const sockets: PeerJsSocket[] = [];
let seq = 0;
const uid = (p: string) => `${p}-${process.pid}-${++seq}`;

async function connect(i: Instance, id: string, token?: string): Promise<PeerJsSocket> {
  const s = await PeerJsSocket.connect(instanceTarget(i), id, token);
  sockets.push(s);
  return s;
}

beforeAll(async () => {
  redis = await TestRedis.start();
  [A, B] = await startInstances(2, { redisUrl: redis.url, env: { HERALD_PEERJS_EXPIRE_MS: String(EXPIRE_MS), HERALD_PEERJS_DISCOVERY: 'true' } });
});
afterEach(() => {
  for (const s of sockets.splice(0)) s.ws.terminate();
});
afterAll(async () => {
  await Promise.all([A?.kill(), B?.kill()]);
  await redis?.stop();
});

describe('PeerJS across two instances', () => {
  it('relays by peer id both ways between instances, src set and payload untouched', async () => {
    const a = await connect(A, uid('a'));
    const b = await connect(B, uid('b'));
    const payload = { sdp: { type: 'offer', sdp: 'v=0\r\n' }, connectionId: 'dc_1', type: 'data', serialization: 'binary' };
    a.json({ type: 'OFFER', dst: b.id, payload });
    expect(await b.nextMessage()).toEqual({ type: 'OFFER', src: a.id, dst: b.id, payload });
    b.json({ type: 'ANSWER', dst: a.id, payload: { x: 1 } });
    expect(await a.nextMessage()).toEqual({ type: 'ANSWER', src: b.id, dst: a.id, payload: { x: 1 } });
    // Order is kept across instances.
    for (let n = 0; n < 50; n++) a.json({ type: 'CANDIDATE', dst: b.id, payload: n });
    for (let n = 0; n < 50; n++) expect((await b.nextMessage()).payload).toBe(n);
  });

  it('an id held on A with another token gets ID-TAKEN on B; the holder is untouched', async () => {
    const id = uid('held');
    const holder = await connect(A, id, 'token-a');
    const thief = new PeerJsSocket(instanceTarget(B), id, 'token-b');
    expect((await thief.nextJson('ID-TAKEN')).payload).toEqual({ msg: 'ID is taken' });
    await thief.closed;
    const c = await connect(B, uid('c'));
    c.json({ type: 'OFFER', dst: id, payload: 'still yours' });
    expect(await holder.nextMessage()).toEqual({ type: 'OFFER', src: c.id, dst: id, payload: 'still yours' });
  });

  it('a socket refused on B cannot send as the id held on A, even before its refusal', async () => {
    const id = uid('held');
    await connect(A, id, 'token-a');
    const victim = await connect(B, uid('v'));
    const thief = new PeerJsSocket(instanceTarget(B), id, 'token-b');
    await thief.opened;
    // Sent while B is still asking Redis who holds the id.
    thief.json({ type: 'OFFER', dst: victim.id, payload: 'forged' });
    await thief.nextJson('ID-TAKEN');
    await thief.closed;
    expect((await victim.nextAfterMarker('clean')).payload).toEqual({ marker: 'clean' });
  });

  it('the same token reconnecting on B takes the id over from A', async () => {
    const id = uid('moving');
    const old = await connect(A, id, 'mine');
    const moved = await connect(B, id, 'mine');
    await old.closed;
    const c = await connect(A, uid('c'));
    c.json({ type: 'CANDIDATE', dst: id, payload: 7 });
    expect(await moved.nextMessage()).toEqual({ type: 'CANDIDATE', src: c.id, dst: id, payload: 7 });
  });

  it('a message sent on A for an id that connects on B within the expiry is delivered after OPEN', { timeout: 60_000 }, async () => {
    const a = await connect(A, uid('a'));
    const later = uid('later');
    a.json({ type: 'OFFER', dst: later, payload: 1 });
    a.json({ type: 'CANDIDATE', dst: later, payload: 2 });
    expect((await a.nextAfterMarker('queued')).payload).toEqual({ marker: 'queued' });
    const b = new PeerJsSocket(instanceTarget(B), later);
    sockets.push(b);
    expect(await b.nextMessage()).toEqual({ type: 'OPEN' });
    expect(await b.nextMessage()).toEqual({ type: 'OFFER', src: a.id, dst: later, payload: 1 });
    expect(await b.nextMessage()).toEqual({ type: 'CANDIDATE', src: a.id, dst: later, payload: 2 });
  });

  it('an unknown id gives the sender one EXPIRE per target, src = the target', { timeout: 60_000 }, async () => {
    const a = await connect(A, uid('a'));
    const ghost = uid('ghost');
    a.json({ type: 'OFFER', dst: ghost, payload: 1 });
    a.json({ type: 'CANDIDATE', dst: ghost, payload: 2 });
    expect(await a.nextMessage(EXPIRE_MS * 10)).toEqual({ type: 'EXPIRE', src: ghost, dst: a.id });
    expect((await a.nextAfterMarker('once')).payload).toEqual({ marker: 'once' });
    // Expired messages are gone from the shared queue: the ghost arriving on B gets none.
    const g = new PeerJsSocket(instanceTarget(B), ghost);
    sockets.push(g);
    expect(await g.nextMessage()).toEqual({ type: 'OPEN' });
    expect((await g.nextAfterMarker('empty')).payload).toEqual({ marker: 'empty' });
  });

  it('discovery (GET /peerjs/peers) and the admin listing on either instance see the peers of both; a closed peer drops out', async () => {
    const a = await connect(A, uid('listed-a'));
    const b = await connect(B, uid('listed-b'));
    const discovered = async (i: Instance) => (await (await fetch(`${i.http}/peerjs/peers`)).json()) as string[];
    for (const i of [A, B]) {
      await waitFor('both peers in discovery', async () => {
        const ids = await discovered(i);
        return ids.includes(a.id) && ids.includes(b.id);
      });
    }
    const admin = (await (await fetch(`${A.http}/api/peerjs/peers`)).json()) as { instance: string; peers: string[]; instances: { instance: string; peers: string[] }[] };
    expect(admin.peers).toEqual(expect.arrayContaining([a.id, b.id]));
    // By instance: a on the answering instance (listed first), b on the other.
    expect(admin.instances[0]).toMatchObject({ instance: admin.instance });
    expect(admin.instances[0]!.peers).toContain(a.id);
    expect(admin.instances.find((h) => h.peers.includes(b.id))!.instance).not.toBe(admin.instance);
    expect(new Set(admin.peers).size).toBe(admin.peers.length);
    await b.close();
    await waitFor('the closed peer to drop out of A\'s discovery', async () => !(await discovered(A)).includes(b.id));
  });

  it('an id is free on B once its holder on A closed', async () => {
    const id = uid('free');
    const first = await connect(A, id, 'one');
    await first.close();
    for (let attempt = 0; ; attempt++) {
      const s = new PeerJsSocket(instanceTarget(B), id, 'two');
      const m = JSON.parse(await s.next());
      if (m.type === 'OPEN') {
        sockets.push(s);
        break;
      }
      expect(m.type).toBe('ID-TAKEN');
      await s.closed;
      expect(attempt).toBeLessThan(50);
      await new Promise((r) => setTimeout(r, 100));
    }
  });

  it('while Redis is down: peers on one instance keep talking, a peer elsewhere gets one EXPIRE per pair, a new id opens; all recovers on the same sockets', { timeout: 60_000 }, async () => {
    const a = await connect(A, uid('out-a'));
    const near = await connect(A, uid('out-near'));
    const far = await connect(B, uid('out-far'));
    await redis.kill();
    await Promise.all([A.waitReady(503), B.waitReady(503)]);

    a.json({ type: 'OFFER', dst: near.id, payload: 'local' });
    expect(await near.nextMessage()).toEqual({ type: 'OFFER', src: a.id, dst: near.id, payload: 'local' });
    // An OFFER and its CANDIDATEs for a peer on B: one EXPIRE (the client's peer-unavailable), at once.
    a.json({ type: 'OFFER', dst: far.id, payload: 'far' });
    for (let n = 0; n < 3; n++) a.json({ type: 'CANDIDATE', dst: far.id, payload: n });
    expect(await a.nextMessage()).toEqual({ type: 'EXPIRE', src: far.id, dst: a.id });
    expect((await a.nextAfterMarker('one-expire')).payload).toEqual({ marker: 'one-expire' });
    // A new id is admitted on the instance it reaches, and bound in the directory afterwards.
    const late = await connect(A, uid('out-late'));
    late.json({ type: 'OFFER', dst: a.id, payload: 'late' });
    expect(await a.nextMessage()).toEqual({ type: 'OFFER', src: late.id, dst: a.id, payload: 'late' });
    // The cluster-wide listing cannot be read: it says so rather than list one instance.
    expect((await fetch(`${A.http}/peerjs/peers`)).status).toBe(503);

    await redis.restart();
    await Promise.all([A.waitReady(200), B.waitReady(200)]);
    // Every instance writes its peers back: once B's listing shows A's, relay crosses again.
    await waitFor('A\'s peers in the directory again', async () => {
      const ids = (await (await fetch(`${B.http}/peerjs/peers`)).json()) as string[];
      return [a.id, near.id, late.id, far.id].every((id) => ids.includes(id));
    });
    a.json({ type: 'OFFER', dst: far.id, payload: 'after' });
    expect(await far.nextMessage()).toEqual({ type: 'OFFER', src: a.id, dst: far.id, payload: 'after' });
    far.json({ type: 'ANSWER', dst: late.id, payload: 'back' });
    expect(await late.nextMessage()).toEqual({ type: 'ANSWER', src: far.id, dst: late.id, payload: 'back' });
    for (const s of [a, near, far, late]) expect(s.ws.readyState).toBe(s.ws.OPEN);
  });

  // Last: it drains A for good.
  it("a drain closes A's PeerJS sockets with 1001 and the same id and token open again on B", async () => {
    const id = uid('drained');
    const a = await connect(A, id, 'keep');
    const c = await connect(B, uid('c'));
    const draining = A.terminate();
    expect((await a.closed).code).toBe(1001);
    // What the client's reconnect() does once the load balancer sends it elsewhere.
    const again = await connect(B, id, 'keep');
    c.json({ type: 'OFFER', dst: id, payload: 'welcome back' });
    expect(await again.nextMessage()).toEqual({ type: 'OFFER', src: c.id, dst: id, payload: 'welcome back' });
    expect(await draining).toBe(0);
  });
});
