import { readFileSync } from 'node:fs';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { Instance, startInstances, waitFor } from '../helpers/instances.js';
import { InstanceClients, uniqueIds } from '../helpers/instance-clients.js';
import type { RedisProcess } from '../helpers/redis-process.js';
import { makeCertificates, removeCertificates, startTlsCluster, startTlsRedis, type Certificates } from '../helpers/tls-redis.js';

/**
 * TLS and ACL to Redis (issue 18 item 4): a TLS-only `redis-server` (no plain port, client
 * certificates required) with certificates made here by openssl, and a Redis user created
 * with exactly the ACL line docs/operations.md "Redis ACL" gives. Two instances signal
 * across under it. A user missing one command, and a CA that did not sign the server's
 * certificate, each give an error log naming the problem and /readyz 503.
 */

const ROOT = new URL('../../', import.meta.url);
const clients = new InstanceClients();
const uniq = uniqueIds();
const instances: Instance[] = [];
let certs: Certificates;
let redis: RedisProcess;

/** The documented ACL line, as words, with this test's password. */
function documentedAcl(user: string, password: string): string[] {
  const docs = readFileSync(new URL('docs/operations.md', ROOT), 'utf8');
  const line = docs.split('\n').find((l) => l.startsWith('ACL SETUSER herald on '));
  if (!line) throw new Error('docs/operations.md has no "ACL SETUSER herald on …" line');
  return line.trim().split(/\s+/).map((w) => (w === '>CHANGE-ME' ? `>${password}` : w === 'herald' ? user : w));
}

async function createUser(words: string[]): Promise<void> {
  // words: ACL SETUSER <user> …
  expect(await redis.call(...words)).toBe('OK');
}

function env(user: string, password: string, ca = certs.ca): Record<string, string> {
  return {
    REDIS_URL: `rediss://${user}:${password}@127.0.0.1:${redis.port}`,
    REDIS_TLS_CA_FILE: ca,
    REDIS_TLS_CERT_FILE: certs.clientCert,
    REDIS_TLS_KEY_FILE: certs.clientKey,
    LOG_LEVEL: 'info',
  };
}

/** The instance's log lines at error level (pino level 50). */
function errors(i: Instance): { msg: string; err?: string; fault?: string }[] {
  return i.output
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as { level: number; msg: string; err?: string; fault?: string })
    .filter((l) => l.level === 50);
}

beforeAll(async () => {
  certs = makeCertificates();
  redis = await startTlsRedis(certs);
}, 60_000);

afterEach(async () => {
  clients.closeAll();
  await Promise.all(instances.splice(0).map((i) => i.kill()));
});

afterAll(async () => {
  await redis?.kill();
  if (certs) removeCertificates(certs);
});

describe('TLS and ACL to Redis', () => {
  it('two instances signal across a TLS-only Redis, as a user with exactly the documented ACL', async () => {
    await createUser(documentedAcl('herald-ok', 'pw-ok'));
    const [A, B] = await startInstances(2, { env: env('herald-ok', 'pw-ok') });
    instances.push(A, B);
    const room = uniq('room');
    const a = await clients.json(A, { peerId: uniq('a') });
    await a.join(room, 'peer');
    const b = await clients.json(B, { peerId: uniq('b') });
    const ack = await b.join(room, 'peer');
    expect(ack.members.map((m: { id: string }) => m.id)).toEqual([a.peerId]);
    await a.nextWhere('peer-joined', (m) => m.peer.id === b.peerId);
    await a.signal(room, b.peerId, { tag: 'a-to-b' });
    expect((await b.nextSignal('a-to-b')).from).toBe(a.peerId);
    await b.signal(room, a.peerId, { tag: 'b-to-a' });
    expect((await a.nextSignal('b-to-a')).from).toBe(b.peerId);
    // The seed protocol too: a sender on A, a reader on B.
    const seedRoom = uniq('seed');
    const reader = uniq('reader');
    const s = await clients.sender(A, seedRoom);
    const r = await clients.reader(B, reader);
    r.send(`join|${seedRoom}`);
    expect(await s.next()).toBe(`join|${reader}`);
    // Herald's connections are this user's, over TLS (the server has no plain port).
    const list = String(await redis.call('CLIENT', 'LIST'));
    expect(list.split('\n').filter((l) => / name=herald(-sub)?:inst-/.test(l) && / user=herald-ok /.test(l))).toHaveLength(4);
    expect(errors(A).concat(errors(B))).toEqual([]);
  }, 60_000);

  it('a user missing one command (PUBLISH): an error naming it, and /readyz 503', async () => {
    const words = documentedAcl('herald-nopub', 'pw-nopub');
    expect(words).toContain('+publish');
    await createUser(words.filter((w) => w !== '+publish'));
    const [A] = await startInstances(1, { env: env('herald-nopub', 'pw-nopub'), readyStatus: 503 });
    instances.push(A);
    await waitFor('the permission error in the log', () => errors(A).some((e) => e.fault === 'permission'));
    const e = errors(A).find((x) => x.fault === 'permission')!;
    expect(e.err).toMatch(/NOPERM.*PUBLISH/);
    expect(e.msg).toMatch(/docs\/operations\.md "Redis ACL"/);
    expect(await A.readyz()).toBe(503);
    // Granting the command makes it ready, with no restart; it said so once, not every retry.
    expect(await redis.call('ACL', 'SETUSER', 'herald-nopub', '+publish')).toBe('OK');
    await A.waitReady(200, 15_000);
    expect(errors(A).filter((x) => x.fault === 'permission')).toHaveLength(1);
  }, 60_000);

  it('a CA that did not sign the server certificate: a TLS error naming the CA setting, and /readyz 503', async () => {
    await createUser(documentedAcl('herald-ca', 'pw-ca'));
    const [A] = await startInstances(1, { env: env('herald-ca', 'pw-ca', certs.otherCa), readyStatus: 503 });
    instances.push(A);
    await waitFor('the TLS error in the log', () => errors(A).some((e) => e.fault === 'tls'));
    const e = errors(A).find((x) => x.fault === 'tls')!;
    expect(e.msg).toMatch(/REDIS_TLS_CA_FILE/);
    expect(e.err).toMatch(/certificate/i);
    expect(await A.readyz()).toBe(503);
  }, 60_000);

  it('a wrong password: an error naming the password settings, and /readyz 503', async () => {
    await createUser(documentedAcl('herald-pw', 'pw-right'));
    const [A] = await startInstances(1, { env: env('herald-pw', 'pw-wrong'), readyStatus: 503 });
    instances.push(A);
    await waitFor('the auth error in the log', () => errors(A).some((e) => e.fault === 'auth'));
    expect(errors(A).find((x) => x.fault === 'auth')!.msg).toMatch(/REDIS_PASSWORD/);
    expect(await A.readyz()).toBe(503);
  }, 60_000);

  it('Redis Cluster over TLS (tls-cluster), as the same documented ACL user on every node: signalling across', async () => {
    const nodes = await startTlsCluster(certs);
    try {
      for (const n of nodes) expect(await n.call(...documentedAcl('herald-cl', 'pw-cl'))).toBe('OK');
      const [A, B] = await startInstances(2, {
        env: {
          REDIS_CLUSTER_NODES: nodes.map((n) => n.address).join(','),
          REDIS_TLS: 'true',
          REDIS_TLS_CA_FILE: certs.ca,
          REDIS_TLS_CERT_FILE: certs.clientCert,
          REDIS_TLS_KEY_FILE: certs.clientKey,
          REDIS_USERNAME: 'herald-cl',
          REDIS_PASSWORD: 'pw-cl',
          LOG_LEVEL: 'info',
        },
      });
      instances.push(A, B);
      const room = uniq('room');
      const a = await clients.json(A, { peerId: uniq('a') });
      await a.join(room, 'peer');
      const b = await clients.json(B, { peerId: uniq('b') });
      await b.join(room, 'peer');
      await a.nextWhere('peer-joined', (m) => m.peer.id === b.peerId);
      await a.signal(room, b.peerId, { tag: 'a-to-b' });
      expect((await b.nextSignal('a-to-b')).from).toBe(a.peerId);
      await b.signal(room, a.peerId, { tag: 'b-to-a' });
      expect((await a.nextSignal('b-to-a')).from).toBe(b.peerId);
      const lists = await Promise.all(nodes.map(async (n) => String(await n.call('CLIENT', 'LIST'))));
      expect(lists.join('\n').split('\n').some((l) => / name=herald(-sub)?:inst-/.test(l) && / user=herald-cl /.test(l))).toBe(true);
      expect(errors(A).concat(errors(B))).toEqual([]);
    } finally {
      await Promise.all(nodes.map((n) => n.kill()));
    }
  }, 90_000);
});

