import WebSocket from 'ws';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { Instance, startInstances, waitFor } from '../helpers/instances.js';
import { InstanceClients, uniqueIds } from '../helpers/instance-clients.js';
import type { JsonClient } from '../helpers/json-client.js';
import { BlackHoleProxy } from '../helpers/proxy.js';
import { RedisProcess } from '../helpers/redis-process.js';
import { MASTER_NAME, SentinelGroup } from '../helpers/sentinel.js';
import { freePort } from '../helpers/redis.js';
import { makeCertificates, removeCertificates, type Certificates } from '../helpers/tls-redis.js';

/**
 * Redis Sentinel (issue 18 item 2), with real processes: a master, a replica and three
 * `redis-server --sentinel`, two Herald instances on REDIS_SENTINELS with a peer on each.
 * The master is SIGKILLed; then, with the old master back as a replica, a `SENTINEL
 * FAILOVER` demotes a master that stays up. Each time both instances must move to the new
 * master on their own, and signalling across resumes on the same client sockets. Last,
 * without sentinels: a master demoted behind one address (as a managed Redis fails over
 * behind its DNS name) answers READONLY, and both of each instance's connections move.
 */

const clients = new InstanceClients();
const uniq = uniqueIds();
const instances: Instance[] = [];

afterEach(() => clients.closeAll());
afterAll(async () => {
  await Promise.all(instances.splice(0).map((i) => i.kill()));
});

/** Sends tagged signals from `from` to `to` until one arrives; resolves with how long that took. */
function signalsAcross(from: JsonClient, to: JsonClient, room: string, timeoutMs = 60_000): Promise<number> {
  let n = 0;
  return waitFor(`a signal from ${from.peerId} to reach ${to.peerId}`, async () => {
    const tag = `${from.peerId}-${++n}`;
    try {
      await from.signal(room, to.peerId, { tag });
      await to.nextSignal(tag, 1000);
      return true;
    } catch {
      return false; // `unavailable` while there is no master, or lost with the old one
    }
  }, timeoutMs, 200);
}

/** Herald's connections (named herald:… and herald-sub:…) that `node` holds now. */
async function heraldConnections(node: RedisProcess): Promise<number> {
  const list = String(await node.call('CLIENT', 'LIST'));
  return list.split('\n').filter((l) => / name=herald(-sub)?:inst-/.test(l)).length;
}

/** Two peers, one on each instance, in one room, that have heard of each other. */
async function pair(A: Instance, B: Instance): Promise<{ a: JsonClient; b: JsonClient; room: string }> {
  const room = uniq('room');
  const a = await clients.json(A, { peerId: uniq('a') });
  await a.join(room, 'peer');
  const b = await clients.json(B, { peerId: uniq('b') });
  await b.join(room, 'peer');
  await a.nextWhere('peer-joined', (m) => m.peer.id === b.peerId);
  await signalsAcross(a, b, room, 5000);
  await signalsAcross(b, a, room, 5000);
  return { a, b, room };
}

describe('Redis Sentinel', () => {
  let group: SentinelGroup;
  let A: Instance;
  let B: Instance;

  beforeAll(async () => {
    group = await SentinelGroup.start();
    [A, B] = await startInstances(2, { env: { REDIS_SENTINELS: group.sentinelList, REDIS_SENTINEL_NAME: MASTER_NAME, LOG_LEVEL: 'info' } });
    instances.push(A, B);
  }, 90_000);

  afterAll(async () => {
    await group?.stop();
  });

  it('SIGKILL of the master: once the replica is promoted, signalling across works again on the same sockets, /readyz 200 everywhere', async () => {
    const { a, b, room } = await pair(A, B);
    const [oldMaster, replica] = group.nodes;
    expect(await heraldConnections(oldMaster)).toBe(4);

    const killed = Date.now();
    await oldMaster.kill();
    const promoted = await group.promotedTo(replica, 60_000);
    const aToB = await signalsAcross(a, b, room).catch((err: unknown) => {
      throw new Error(`${String(err)}; A: ${A.output.slice(-3000)}; B: ${B.output.slice(-3000)}`);
    });
    const bToA = await signalsAcross(b, a, room);
    const across = Date.now() - killed;
    await Promise.all([A.waitReady(200, 30_000), B.waitReady(200, 30_000)]);
    expect([a.socket.ws.readyState, b.socket.ws.readyState]).toEqual([WebSocket.OPEN, WebSocket.OPEN]);
    expect(await heraldConnections(replica)).toBe(4);
    // A new joiner on the new master lists both members.
    const c = await clients.json(B, { peerId: uniq('c') });
    const ack = await c.join(room, 'peer');
    expect(ack.members.map((m: { id: string }) => m.id).sort()).toEqual([a.peerId, b.peerId].sort());
    console.log(`sentinel: master SIGKILLed -> replica promoted after ${promoted} ms; signalling across again after ${across} ms (last a->b try ${aToB} ms, b->a ${bToA} ms)`);
  }, 120_000);

  it('SENTINEL FAILOVER with the old master up: both instances leave the demoted master (subscribers too) and keep signalling', async () => {
    const [oldMaster, current] = group.nodes;
    // The master killed above comes back empty and is made a replica of the current master.
    await oldMaster.start();
    await group.settledOn(current, 60_000);
    const { a, b, room } = await pair(A, B);
    expect(await heraldConnections(current)).toBe(4);

    const started = Date.now();
    await group.sentinels[0]!.call('SENTINEL', 'FAILOVER', MASTER_NAME);
    const promoted = await group.promotedTo(oldMaster, 60_000);
    await signalsAcross(a, b, room);
    await signalsAcross(b, a, room);
    const across = Date.now() - started;
    await group.settledOn(oldMaster, 60_000);
    expect(await current.role()).toBe('slave');
    // Nothing of Herald's stays on the demoted server: not the command connections, not the subscribers.
    await waitFor('Herald to leave the demoted master', async () => (await heraldConnections(current)) === 0, 30_000, 200);
    await waitFor('Herald to be on the new master', async () => (await heraldConnections(oldMaster)) === 4, 30_000, 200);
    await Promise.all([A.waitReady(200, 30_000), B.waitReady(200, 30_000)]);
    expect([a.socket.ws.readyState, b.socket.ws.readyState]).toEqual([WebSocket.OPEN, WebSocket.OPEN]);
    console.log(`sentinel: SENTINEL FAILOVER -> promoted after ${promoted} ms; signalling across again after ${across} ms`);
  }, 120_000);
});

describe('Redis Sentinel over TLS with passwords (sentinels and data nodes TLS-only, client certificates)', () => {
  let certs: Certificates;
  let group: SentinelGroup;

  beforeAll(async () => {
    certs = makeCertificates();
    group = await SentinelGroup.start({ certs, password: 'master-pw', sentinelPassword: 'sentinel-pw' });
  }, 90_000);

  afterAll(async () => {
    await group?.stop();
    if (certs) removeCertificates(certs);
  });

  it('two instances reach the master through the sentinels over TLS (REDIS_PASSWORD, REDIS_SENTINEL_PASSWORD), and follow a SIGKILL failover', async () => {
    const [A, B] = await startInstances(2, {
      env: {
        REDIS_SENTINELS: group.sentinelList,
        REDIS_TLS: 'true',
        REDIS_TLS_CA_FILE: certs.ca,
        REDIS_TLS_CERT_FILE: certs.clientCert,
        REDIS_TLS_KEY_FILE: certs.clientKey,
        REDIS_PASSWORD: 'master-pw',
        REDIS_SENTINEL_PASSWORD: 'sentinel-pw',
        LOG_LEVEL: 'info',
      },
    });
    instances.push(A, B);
    const { a, b, room } = await pair(A, B);
    const [oldMaster, replica] = group.nodes;
    expect(await heraldConnections(oldMaster)).toBe(4);
    // The passwords are really asked for: without them, a sentinel and the master refuse.
    for (const node of [group.sentinels[0]!, oldMaster]) {
      const anonymous = node.client({ password: undefined });
      await expect(anonymous.ping()).rejects.toThrow(/NOAUTH/);
      anonymous.disconnect();
    }
    const killed = Date.now();
    await oldMaster.kill();
    await group.promotedTo(replica, 60_000);
    await signalsAcross(a, b, room);
    await signalsAcross(b, a, room);
    const across = Date.now() - killed;
    await Promise.all([A.waitReady(200, 30_000), B.waitReady(200, 30_000)]);
    expect(await heraldConnections(replica)).toBe(4);
    console.log(`sentinel over TLS: master SIGKILLed -> signalling across again after ${across} ms`);
  }, 120_000);
});

describe('a master demoted behind one address (READONLY)', () => {
  let proxy: BlackHoleProxy;
  const nodes: RedisProcess[] = [];

  afterAll(async () => {
    await proxy?.stop();
    await Promise.all(nodes.map((n) => n.kill()));
  });

  it('both connections of each instance reconnect, land on the new master, and signalling and joins work', async () => {
    const [xPort, yPort] = [await freePort(), await freePort()];
    const args = (port: number, replicaOf?: number) => () => [
      '--port', String(port), '--bind', '127.0.0.1', '--protected-mode', 'no', '--save', '', '--appendonly', 'no', '--loglevel', 'warning',
      ...(replicaOf ? ['--replicaof', '127.0.0.1', String(replicaOf)] : []),
    ];
    const x = new RedisProcess(xPort, args(xPort));
    const y = new RedisProcess(yPort, args(yPort, xPort));
    nodes.push(x, y);
    await x.start();
    await y.start();
    await waitFor('the replica to sync', async () => String(await y.call('INFO', 'replication')).includes('master_link_status:up'));
    proxy = await BlackHoleProxy.start(x.port);
    const [P, Q] = await startInstances(2, { redisUrl: `redis://127.0.0.1:${proxy.port}` });
    instances.push(P, Q);
    const { a, b, room } = await pair(P, Q);
    expect(await heraldConnections(x)).toBe(4);

    // The failover: the replica becomes master, the address now leads there, and the old
    // master, still up and still holding Herald's connections, becomes its replica.
    const started = Date.now();
    await y.call('REPLICAOF', 'NO', 'ONE');
    proxy.target = y.port;
    await x.call('REPLICAOF', '127.0.0.1', String(y.port));
    await waitFor('Herald to leave the demoted master', async () => (await heraldConnections(x)) === 0, 30_000, 200);
    await waitFor('Herald to be on the new master', async () => (await heraldConnections(y)) === 4, 30_000, 200);
    await signalsAcross(a, b, room);
    await signalsAcross(b, a, room);
    const across = Date.now() - started;
    await Promise.all([P.waitReady(200), Q.waitReady(200)]);
    const c = await clients.json(P, { peerId: uniq('c') });
    const ack = await c.join(room, 'peer');
    expect(ack.members.map((m: { id: string }) => m.id).sort()).toEqual([a.peerId, b.peerId].sort());
    expect(P.output + Q.output).toMatch(/READONLY/);
    console.log(`demoted behind one address: signalling across again after ${across} ms`);
  }, 120_000);
});
