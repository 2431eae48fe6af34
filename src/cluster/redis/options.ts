import { readFileSync } from 'node:fs';
import type { ConnectionOptions } from 'node:tls';
import type { RedisOptions } from 'ioredis';
import { ConfigError, type Config } from '../../config.js';

export interface HostPort {
  host: string;
  port: number;
}

/** Who Herald is to Redis, and how the link is secured (the same for every data node). */
export interface RedisAccess {
  username?: string;
  password?: string;
  /** Set: TLS, verified against this CA (or the system's), with this client certificate. */
  tls?: ConnectionOptions;
}

/**
 * Where Redis is: one server (`REDIS_URL`), a Redis Cluster's seed nodes
 * (`REDIS_CLUSTER_NODES`), or the sentinels watching one master (`REDIS_SENTINELS`).
 */
export type RedisTarget =
  | { kind: 'url'; url: string; access: RedisAccess }
  | { kind: 'cluster'; nodes: HostPort[]; access: RedisAccess }
  | { kind: 'sentinel'; sentinels: HostPort[]; name: string; sentinelPassword?: string; access: RedisAccess };

export type RedisSettings = Pick<
  Config,
  | 'redisUrl'
  | 'redisClusterNodes'
  | 'redisSentinels'
  | 'redisSentinelName'
  | 'redisSentinelPassword'
  | 'redisUsername'
  | 'redisPassword'
  | 'redisTls'
  | 'redisTlsCaFile'
  | 'redisTlsCertFile'
  | 'redisTlsKeyFile'
>;

/** The target the settings name (src/config.ts has checked they name exactly one); reads the TLS files. */
export function redisTarget(config: RedisSettings): RedisTarget {
  const access: RedisAccess = {};
  if (config.redisUsername) access.username = config.redisUsername;
  if (config.redisPassword) access.password = config.redisPassword;
  const tls = config.redisUrl ? config.redisUrl.startsWith('rediss:') : config.redisTls === true;
  if (tls) {
    access.tls = {};
    if (config.redisTlsCaFile) access.tls.ca = readPem('REDIS_TLS_CA_FILE', config.redisTlsCaFile);
    if (config.redisTlsCertFile) access.tls.cert = readPem('REDIS_TLS_CERT_FILE', config.redisTlsCertFile);
    if (config.redisTlsKeyFile) access.tls.key = readPem('REDIS_TLS_KEY_FILE', config.redisTlsKeyFile);
  }
  if (config.redisSentinels?.length) {
    return {
      kind: 'sentinel',
      sentinels: config.redisSentinels,
      name: config.redisSentinelName,
      ...(config.redisSentinelPassword ? { sentinelPassword: config.redisSentinelPassword } : {}),
      access,
    };
  }
  if (config.redisClusterNodes?.length) return { kind: 'cluster', nodes: config.redisClusterNodes, access };
  if (config.redisUrl) return { kind: 'url', url: config.redisUrl, access };
  throw new ConfigError('the Redis cluster needs REDIS_URL, REDIS_CLUSTER_NODES or REDIS_SENTINELS');
}

function readPem(setting: string, path: string): Buffer {
  try {
    return readFileSync(path);
  } catch (err) {
    throw new ConfigError(`invalid setting ${setting} (${path}): cannot read it: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
  }
}

/**
 * What every data connection (the one server, the master behind the sentinels, or each
 * Redis Cluster node) needs to reach Redis: credentials, TLS, and in Sentinel mode where
 * to ask for the master. Merged into each connection's own options by connection.ts.
 */
export function accessOptions(target: RedisTarget): RedisOptions {
  const { username, password, tls } = target.access;
  const options: RedisOptions = {
    ...(username ? { username } : {}),
    ...(password ? { password } : {}),
    ...(tls ? { tls } : {}),
  };
  if (target.kind !== 'sentinel') return options;
  return {
    ...options,
    sentinels: target.sentinels,
    name: target.name,
    role: 'master',
    ...(target.sentinelPassword ? { sentinelPassword: target.sentinelPassword } : {}),
    // The sentinels speak TLS when the master does (one REDIS_TLS for both).
    ...(tls ? { enableTLSForSentinelMode: true, sentinelTLS: tls } : {}),
    // No ioredis `failoverDetector`: its `+switch-master` disconnect, arriving while a
    // reconnect is asking the sentinels, leaves the client ended for good. A failover is
    // followed instead by the sentinels' CLIENT KILL, READONLY, and `sub` following `cmd`
    // (src/cluster/redis/connection.ts).
    sentinelRetryStrategy: (attempt: number) => Math.min(attempt * 100, 1000),
    sentinelCommandTimeout: 1000,
  };
}

/** Where log lines say Redis is (never a password). */
export function describeTarget(target: RedisTarget): string {
  const list = (nodes: HostPort[]) => nodes.map((n) => `${n.host}:${n.port}`).join(',');
  if (target.kind === 'cluster') return list(target.nodes);
  if (target.kind === 'sentinel') return `sentinel ${target.name} via ${list(target.sentinels)}`;
  try {
    const u = new URL(target.url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return 'redis';
  }
}
