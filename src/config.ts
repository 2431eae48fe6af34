import proxyaddr from 'proxy-addr';
import { z } from 'zod';

const int = (min: number, max = Number.MAX_SAFE_INTEGER) => z.coerce.number().int().min(min).max(max);
const list = z
  .string()
  .transform((s) => s.split(',').map((x) => x.trim()).filter(Boolean));

const iceServer = z.object({
  urls: z.union([z.string(), z.array(z.string()).min(1)]),
  username: z.string().optional(),
  credential: z.string().optional(),
});
const iceServers = z.string().transform((s, ctx) => {
  try {
    return z.array(iceServer).parse(JSON.parse(s));
  } catch {
    ctx.addIssue({ code: 'custom', message: 'must be a JSON array of RTCIceServer objects' });
    return z.NEVER;
  }
});

const bool = z.enum(['true', 'false', '1', '0']).transform((v) => v === 'true' || v === '1');

/** `host:port,host:port,…` (IPv6 in brackets): Redis Cluster seed nodes, or sentinels. */
const hostPorts = (what: string) =>
  z.string().transform((s, ctx) => {
    const nodes = s.split(',').map((x) => x.trim()).filter(Boolean).map((n) => {
      const m = /^(\[[^\]]+\]|[^:\s]+):(\d{1,5})$/.exec(n);
      const port = Number(m?.[2]);
      return m && port > 0 && port < 65536 ? { host: m[1]!.replace(/^\[|\]$/g, ''), port } : undefined;
    });
    if (nodes.length === 0 || nodes.some((n) => n === undefined)) {
      ctx.addIssue({ code: 'custom', message: `must be a comma list of host:port ${what}` });
      return z.NEVER;
    }
    return nodes as { host: string; port: number }[];
  });

/**
 * Which proxies in front of Herald to believe about the client address (X-Forwarded-For):
 * `false`/`0` none; `true` exactly one hop (the socket peer is the proxy, as behind one
 * nginx); a number N: N hops; or a comma list of trusted proxy addresses/CIDRs (proxy-addr
 * syntax, e.g. `loopback,10.0.0.0/8`). The client is the right-most address not trusted.
 */
export type TrustProxy = false | number | string[];
const trustProxy = z.coerce.string().transform((v, ctx): TrustProxy => {
  const s = v.trim();
  if (s === 'false') return false;
  if (s === 'true') return 1;
  if (/^\d{1,2}$/.test(s)) return Number(s) === 0 ? false : Number(s);
  const list = s.split(',').map((x) => x.trim()).filter(Boolean);
  try {
    if (list.length === 0) throw new Error('empty');
    proxyaddr.compile(list);
  } catch {
    ctx.addIssue({ code: 'custom', message: 'must be true, false, a hop count, or a comma list of proxy addresses/CIDRs' });
    return z.NEVER;
  }
  return list;
});

/**
 * Every setting, its environment variable and its default. Flags (camelCase keys) win over
 * the environment; anything invalid stops the start with one line naming the setting.
 */
const schema = z.object({
  port: int(0, 65535).default(9800),
  host: z.string().min(1).default('0.0.0.0'),
  logLevel: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  redisUrl: z.string().url().optional(),
  redisClusterNodes: hostPorts('seed nodes').optional(),
  redisSentinels: hostPorts('sentinels').optional(),
  redisSentinelName: z.string().min(1).default('mymaster'),
  redisSentinelPassword: z.string().min(1).optional(),
  redisUsername: z.string().min(1).optional(),
  redisPassword: z.string().min(1).optional(),
  redisTls: bool.optional(),
  redisTlsCaFile: z.string().min(1).optional(),
  redisTlsCertFile: z.string().min(1).optional(),
  redisTlsKeyFile: z.string().min(1).optional(),
  redisPrefix: z.string().min(1).default('herald'),
  secret: z.string().min(16, 'must be at least 16 characters').optional(),
  allowedOrigins: list.optional(),
  iceServers: iceServers.optional(),
  turnSecret: z.string().min(1).optional(),
  turnUrls: list.optional(),
  turnTtlSeconds: int(60).default(86400),
  trustProxy: trustProxy.default(false),
  maxFrameBytes: int(256, 16 * 1024 * 1024).default(64 * 1024),
  maxSignalBytes: int(64, 16 * 1024 * 1024).default(60 * 1024),
  heartbeatMs: int(50).default(25000),
  joinTimeoutMs: int(0).default(30000),
  resumeGraceMs: int(0).default(15000),
  resumeQueueMax: int(1).default(256),
  maxPeersPerRoom: int(0).default(0),
  maxRoomsPerConnection: int(0).default(16),
  maxConnectionsPerIp: int(0).default(0),
  rateBurst: int(1).default(200),
  ratePerSecond: int(1).default(100),
  drainGraceMs: int(0).default(1000),
  countsIntervalMs: int(0).default(1000),
  drainDeadlineMs: int(0).default(10000),
  peerjsPath: z.string().regex(/^\/[^?#\s]*$/, 'must be a path starting with /').default('/'),
  peerjsKey: z.string().min(1).max(128).regex(/^[^/?#&\s]+$/, 'must not contain / ? # & or spaces').default('peerjs'),
  peerjsExpireMs: int(100).default(5000),
  peerjsAliveTimeoutMs: int(1000).default(90000),
  peerjsDiscovery: bool.default(false),
  /** y-webrtc signaling endpoint (docs/y-webrtc.md); query strings are allowed on it. */
  ywebrtcPath: z.string().regex(/^\/[^?#\s]*$/, 'must be a path starting with /').default('/y-webrtc'),
  maxSendBufferBytes: int(0).default(4 * 1024 * 1024),
  maxFragments: int(1, 16384).default(64),
  maxConnections: int(0).default(10000),
  headersTimeoutMs: int(1000).default(10000),
  requestTimeoutMs: int(1000).default(30000),
  adminOrigins: list.optional(),
  whepAnswerTimeoutMs: int(100).default(10000),
  whepMaxSessions: int(0).default(1000),
});

export type Config = z.infer<typeof schema>;

/** Environment variable for each setting (README.md "Configuration" lists them all). */
export const ENV_NAMES: Record<keyof Config, string> = {
  port: 'PORT',
  host: 'HOST',
  logLevel: 'LOG_LEVEL',
  redisUrl: 'REDIS_URL',
  redisClusterNodes: 'REDIS_CLUSTER_NODES',
  redisSentinels: 'REDIS_SENTINELS',
  redisSentinelName: 'REDIS_SENTINEL_NAME',
  redisSentinelPassword: 'REDIS_SENTINEL_PASSWORD',
  redisUsername: 'REDIS_USERNAME',
  redisPassword: 'REDIS_PASSWORD',
  redisTls: 'REDIS_TLS',
  redisTlsCaFile: 'REDIS_TLS_CA_FILE',
  redisTlsCertFile: 'REDIS_TLS_CERT_FILE',
  redisTlsKeyFile: 'REDIS_TLS_KEY_FILE',
  redisPrefix: 'HERALD_REDIS_PREFIX',
  secret: 'HERALD_SECRET',
  allowedOrigins: 'HERALD_ALLOWED_ORIGINS',
  iceServers: 'HERALD_ICE_SERVERS',
  turnSecret: 'TURN_SECRET',
  turnUrls: 'TURN_URLS',
  turnTtlSeconds: 'TURN_TTL_SECONDS',
  trustProxy: 'HERALD_TRUST_PROXY',
  maxFrameBytes: 'HERALD_MAX_FRAME_BYTES',
  maxSignalBytes: 'HERALD_MAX_SIGNAL_BYTES',
  heartbeatMs: 'HERALD_HEARTBEAT_MS',
  joinTimeoutMs: 'HERALD_JOIN_TIMEOUT_MS',
  resumeGraceMs: 'HERALD_RESUME_GRACE_MS',
  resumeQueueMax: 'HERALD_RESUME_QUEUE_MAX',
  maxPeersPerRoom: 'HERALD_MAX_PEERS_PER_ROOM',
  maxRoomsPerConnection: 'HERALD_MAX_ROOMS_PER_CONNECTION',
  maxConnectionsPerIp: 'HERALD_MAX_CONNECTIONS_PER_IP',
  rateBurst: 'HERALD_RATE_BURST',
  ratePerSecond: 'HERALD_RATE_PER_SECOND',
  drainGraceMs: 'HERALD_DRAIN_GRACE_MS',
  countsIntervalMs: 'HERALD_COUNTS_INTERVAL_MS',
  drainDeadlineMs: 'HERALD_DRAIN_DEADLINE_MS',
  peerjsPath: 'HERALD_PEERJS_PATH',
  peerjsKey: 'HERALD_PEERJS_KEY',
  peerjsExpireMs: 'HERALD_PEERJS_EXPIRE_MS',
  peerjsAliveTimeoutMs: 'HERALD_PEERJS_ALIVE_TIMEOUT_MS',
  peerjsDiscovery: 'HERALD_PEERJS_DISCOVERY',
  ywebrtcPath: 'HERALD_YWEBRTC_PATH',
  maxSendBufferBytes: 'HERALD_MAX_SEND_BUFFER_BYTES',
  maxFragments: 'HERALD_MAX_FRAGMENTS',
  maxConnections: 'HERALD_MAX_CONNECTIONS',
  headersTimeoutMs: 'HERALD_HEADERS_TIMEOUT_MS',
  requestTimeoutMs: 'HERALD_REQUEST_TIMEOUT_MS',
  adminOrigins: 'HERALD_ADMIN_ORIGINS',
  whepAnswerTimeoutMs: 'HERALD_WHEP_ANSWER_TIMEOUT_MS',
  whepMaxSessions: 'HERALD_WHEP_MAX_SESSIONS',
};

export class ConfigError extends Error {}

const SECRET_KEYS = new Set<keyof Config>(['secret', 'turnSecret', 'redisUrl', 'redisPassword', 'redisSentinelPassword']);

type Input = Partial<Record<keyof Config, unknown>>;

/** Where Redis is and how to reach it: the combinations that cannot mean anything fail the start. */
function checkRedis(c: Config): void {
  const targets = (['redisUrl', 'redisClusterNodes', 'redisSentinels'] as const).filter((k) => c[k] !== undefined);
  if (targets.length > 1) {
    throw new ConfigError(
      `invalid setting ${ENV_NAMES[targets[1]!]}: exclusive with ${ENV_NAMES[targets[0]!]} (set one of REDIS_URL, REDIS_CLUSTER_NODES, REDIS_SENTINELS)`,
    );
  }
  const bad = (key: keyof Config, why: string) => new ConfigError(`invalid setting ${ENV_NAMES[key]}: ${why}`);
  if (c.redisSentinelPassword !== undefined && !c.redisSentinels) throw bad('redisSentinelPassword', 'only applies with REDIS_SENTINELS');
  if (targets.length === 0) {
    for (const key of ['redisUsername', 'redisPassword', 'redisTls', 'redisTlsCaFile', 'redisTlsCertFile', 'redisTlsKeyFile'] as const) {
      if (c[key] !== undefined) throw bad(key, 'needs REDIS_URL, REDIS_CLUSTER_NODES or REDIS_SENTINELS');
    }
    return;
  }
  let tls = c.redisTls === true;
  if (c.redisUrl) {
    const url = new URL(c.redisUrl);
    if (url.protocol !== 'redis:' && url.protocol !== 'rediss:') throw bad('redisUrl', 'must start with redis:// or rediss:// (TLS)');
    if (c.redisTls !== undefined) throw bad('redisTls', 'with REDIS_URL the scheme decides: rediss:// is TLS, redis:// is not');
    tls = url.protocol === 'rediss:';
    if (url.username && c.redisUsername) throw bad('redisUsername', 'REDIS_URL names a user too (give it in one place)');
    if (url.password && c.redisPassword) throw bad('redisPassword', 'REDIS_URL has a password too (give it in one place)');
  }
  for (const key of ['redisTlsCaFile', 'redisTlsCertFile', 'redisTlsKeyFile'] as const) {
    if (c[key] !== undefined && !tls) throw bad(key, c.redisUrl ? 'needs a rediss:// REDIS_URL' : 'needs REDIS_TLS=true');
  }
  if ((c.redisTlsCertFile === undefined) !== (c.redisTlsKeyFile === undefined)) {
    throw bad(c.redisTlsCertFile === undefined ? 'redisTlsCertFile' : 'redisTlsKeyFile', 'REDIS_TLS_CERT_FILE and REDIS_TLS_KEY_FILE go together');
  }
}

/** Builds the config from the environment, overridden by `overrides` (flags or tests). */
export function loadConfig(overrides: Input = {}, env: NodeJS.ProcessEnv = process.env): Config {
  const input: Input = {};
  for (const key of Object.keys(ENV_NAMES) as (keyof Config)[]) {
    const fromEnv = env[ENV_NAMES[key]];
    if (fromEnv !== undefined && fromEnv !== '') input[key] = fromEnv;
    if (overrides[key] !== undefined) input[key] = overrides[key];
  }
  const parsed = schema.safeParse(input);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    const key = issue.path[0] as keyof Config;
    // Never echo secrets into logs or terminals.
    const shown = SECRET_KEYS.has(key) ? '' : ` (${String(input[key])})`;
    throw new ConfigError(`invalid setting ${ENV_NAMES[key] ?? String(key)}${shown}: ${issue.message}`);
  }
  const config = parsed.data;
  checkRedis(config);
  if (config.turnSecret && !config.turnUrls?.length) {
    throw new ConfigError('invalid setting TURN_URLS: required when TURN_SECRET is set');
  }
  return config;
}
