import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Cluster, Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../src/config.js';
import { RedisConnection } from '../../src/cluster/redis/connection.js';
import { faultKind } from '../../src/cluster/redis/faults.js';
import { redisTarget } from '../../src/cluster/redis/options.js';

/**
 * What REDIS_* settings become in ioredis' own options, in each of the three modes (one
 * server, Redis Cluster, Sentinel), read back from the clients Herald builds (never
 * connected here: the integration tests connect them to real TLS, ACL and Sentinel servers).
 */

const dir = mkdtempSync(join(tmpdir(), 'herald-redis-options-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const file = (name: string, text: string) => {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
};
const ca = file('ca.pem', 'the CA');
const cert = file('client.pem', 'the client certificate');
const key = file('client-key.pem', 'the client key');
const tlsFiles = { REDIS_TLS_CA_FILE: ca, REDIS_TLS_CERT_FILE: cert, REDIS_TLS_KEY_FILE: key };
const tls = { ca: Buffer.from('the CA'), cert: Buffer.from('the client certificate'), key: Buffer.from('the client key') };

function connection(env: Record<string, string>): RedisConnection {
  return new RedisConnection(redisTarget(loadConfig({}, env)), 'inst-test');
}

describe('Redis options from the settings', () => {
  it('REDIS_URL rediss:// with a CA and a client certificate: TLS with them, the URL user and password', () => {
    const conn = connection({ REDIS_URL: 'rediss://herald:pw@redis.test:6380', ...tlsFiles });
    for (const c of [conn.cmd, conn.sub] as Redis[]) {
      expect(c.options).toMatchObject({ host: 'redis.test', port: 6380, username: 'herald', password: 'pw', tls });
    }
    expect(conn.describe()).not.toContain('pw');
    conn.disconnect();
  });

  it('REDIS_URL redis:// is plain TCP; REDIS_USERNAME/REDIS_PASSWORD apply when the URL has none', () => {
    const conn = connection({ REDIS_URL: 'redis://redis.test:6379', REDIS_USERNAME: 'herald', REDIS_PASSWORD: 'pw' });
    expect((conn.cmd as Redis).options.tls).toBeUndefined();
    expect((conn.cmd as Redis).options).toMatchObject({ username: 'herald', password: 'pw' });
    conn.disconnect();
  });

  it('REDIS_CLUSTER_NODES with REDIS_TLS: every node connection gets TLS and the user', () => {
    const conn = connection({ REDIS_CLUSTER_NODES: 'n1:7000,n2:7001', REDIS_TLS: 'true', REDIS_USERNAME: 'herald', REDIS_PASSWORD: 'pw', ...tlsFiles });
    for (const c of [conn.cmd, conn.sub] as Cluster[]) {
      expect(c.options.redisOptions).toMatchObject({ username: 'herald', password: 'pw', tls });
    }
    expect(conn.sharded).toBe(true);
    conn.disconnect();
  });

  it('REDIS_SENTINELS: the master by name, the sentinels with their own password, TLS to both', () => {
    const conn = connection({
      REDIS_SENTINELS: 's1:26379,s2:26380',
      REDIS_SENTINEL_NAME: 'signal',
      REDIS_SENTINEL_PASSWORD: 'sp',
      REDIS_USERNAME: 'herald',
      REDIS_PASSWORD: 'pw',
      REDIS_TLS: 'true',
      ...tlsFiles,
    });
    for (const c of [conn.cmd, conn.sub] as Redis[]) {
      expect(c.options).toMatchObject({
        sentinels: [{ host: 's1', port: 26379 }, { host: 's2', port: 26380 }],
        name: 'signal',
        role: 'master',
        sentinelPassword: 'sp',
        username: 'herald',
        password: 'pw',
        tls,
        enableTLSForSentinelMode: true,
        sentinelTLS: tls,
      });
      expect(c.options.failoverDetector).toBeFalsy();
    }
    expect(conn.sharded).toBe(false);
    expect(conn.describe()).toBe('sentinel signal via s1:26379,s2:26380');
    conn.disconnect();
  });

  it('REDIS_SENTINELS without REDIS_TLS: no TLS anywhere', () => {
    const conn = connection({ REDIS_SENTINELS: 's1:26379' });
    expect((conn.cmd as Redis).options).toMatchObject({ name: 'mymaster', enableTLSForSentinelMode: false });
    expect((conn.cmd as Redis).options.tls).toBeUndefined();
    expect((conn.cmd as Redis).options.sentinelTLS).toBeUndefined();
    conn.disconnect();
  });

  it('an unreadable certificate file stops the start, naming its setting', () => {
    const config = loadConfig({}, { REDIS_URL: 'rediss://r:6380', REDIS_TLS_CA_FILE: join(dir, 'missing.pem') });
    expect(() => redisTarget(config)).toThrow(ConfigError);
    expect(() => redisTarget(config)).toThrow(/REDIS_TLS_CA_FILE .*ENOENT/);
  });
});

describe('which Redis errors are the operator’s to fix', () => {
  const cases: [string, unknown, string | undefined][] = [
    ['an untrusted server certificate', Object.assign(new Error('self-signed certificate in certificate chain'), { code: 'SELF_SIGNED_CERT_IN_CHAIN' }), 'tls'],
    ['a certificate for another host', Object.assign(new Error("Hostname/IP does not match certificate's altnames"), { code: 'ERR_TLS_CERT_ALTNAME_INVALID' }), 'tls'],
    ['a sentinel behind an untrusted certificate', new Error('failed to connect to sentinel 127.0.0.1:1 because unable to verify the first certificate'), 'tls'],
    ['a wrong password', new Error('WRONGPASS invalid username-password pair or user is disabled.'), 'auth'],
    ['a missing permission', new Error("NOPERM User herald has no permissions to run the 'publish' command"), 'permission'],
    ['a refused connection', Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:1'), { code: 'ECONNREFUSED' }), undefined],
    ['a closed connection', new Error('Connection is closed.'), undefined],
  ];
  for (const [name, err, kind] of cases) {
    it(`${name}: ${kind ?? 'retried quietly'}`, () => {
      expect(faultKind(err)).toBe(kind);
    });
  }
});
