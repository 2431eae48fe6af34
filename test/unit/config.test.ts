import { describe, expect, it } from 'vitest';
import { ConfigError, ENV_NAMES, loadConfig } from '../../src/config.js';

/** The ConfigError thrown by loadConfig, or a failure if none is thrown. */
function configError(overrides: Record<string, unknown>, env: Record<string, string> = {}): ConfigError {
  try {
    loadConfig(overrides, env);
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as Error).message).not.toContain('\n');
    return err as ConfigError;
  }
  throw new Error('expected a ConfigError');
}

describe('loadConfig', () => {
  it('has the documented defaults with an empty environment', () => {
    const c = loadConfig({}, {});
    expect(c.port).toBe(9800);
    expect(c.host).toBe('0.0.0.0');
    expect(c.redisUrl).toBeUndefined();
    expect(c.secret).toBeUndefined();
    expect(c.allowedOrigins).toBeUndefined();
    expect(c.maxFrameBytes).toBe(65536);
    expect(c.heartbeatMs).toBeGreaterThan(0);
  });

  it('reads the environment variables README.md names', () => {
    const c = loadConfig(
      {},
      {
        PORT: '1234',
        HOST: '127.0.0.1',
        REDIS_URL: 'redis://localhost:6379',
        HERALD_SECRET: 'x'.repeat(32),
        HERALD_ALLOWED_ORIGINS: 'https://a.test, https://b.test,,',
        HERALD_ICE_SERVERS: JSON.stringify([{ urls: 'stun:stun.test:3478' }]),
        TURN_SECRET: 'turn-secret',
        TURN_URLS: 'turn:turn.test:3478?transport=udp,turns:turn.test:5349',
        LOG_LEVEL: 'warn',
      },
    );
    expect(c.port).toBe(1234);
    expect(c.host).toBe('127.0.0.1');
    expect(c.redisUrl).toBe('redis://localhost:6379');
    expect(c.secret).toBe('x'.repeat(32));
    expect(c.allowedOrigins).toEqual(['https://a.test', 'https://b.test']);
    expect(c.iceServers).toEqual([{ urls: 'stun:stun.test:3478' }]);
    expect(c.turnSecret).toBe('turn-secret');
    expect(c.turnUrls).toEqual(['turn:turn.test:3478?transport=udp', 'turns:turn.test:5349']);
    expect(c.logLevel).toBe('warn');
  });

  it('flags win over the environment', () => {
    const c = loadConfig({ port: '4321', host: '::1' }, { PORT: '1234', HOST: '127.0.0.1' });
    expect(c.port).toBe(4321);
    expect(c.host).toBe('::1');
  });

  it('an empty environment variable counts as unset', () => {
    const c = loadConfig({}, { PORT: '', REDIS_URL: '' });
    expect(c.port).toBe(9800);
    expect(c.redisUrl).toBeUndefined();
  });

  it('every setting has its own environment variable', () => {
    const names = Object.values(ENV_NAMES);
    expect(new Set(names).size).toBe(names.length);
    expect(ENV_NAMES).toMatchObject({
      port: 'PORT',
      host: 'HOST',
      redisUrl: 'REDIS_URL',
      secret: 'HERALD_SECRET',
      allowedOrigins: 'HERALD_ALLOWED_ORIGINS',
      iceServers: 'HERALD_ICE_SERVERS',
      turnSecret: 'TURN_SECRET',
      turnUrls: 'TURN_URLS',
      logLevel: 'LOG_LEVEL',
    });
  });

  const bad: [string, Record<string, string>, string][] = [
    ['a non-numeric port', { PORT: 'abc' }, 'PORT'],
    ['a port out of range', { PORT: '70000' }, 'PORT'],
    ['a negative port', { PORT: '-1' }, 'PORT'],
    ['a fractional port', { PORT: '80.5' }, 'PORT'],
    ['an unknown log level', { LOG_LEVEL: 'loud' }, 'LOG_LEVEL'],
    ['a Redis URL that is not a URL', { REDIS_URL: 'not a url' }, 'REDIS_URL'],
    ['a short secret', { HERALD_SECRET: 'short' }, 'HERALD_SECRET'],
    ['ICE servers that are not JSON', { HERALD_ICE_SERVERS: '[{' }, 'HERALD_ICE_SERVERS'],
    ['ICE servers without urls', { HERALD_ICE_SERVERS: '[{"username":"u"}]' }, 'HERALD_ICE_SERVERS'],
    ['a TURN secret without TURN URLs', { TURN_SECRET: 's' }, 'TURN_URLS'],
    ['a frame cap below the minimum', { HERALD_MAX_FRAME_BYTES: '10' }, 'HERALD_MAX_FRAME_BYTES'],
    ['a zero heartbeat', { HERALD_HEARTBEAT_MS: '0' }, 'HERALD_HEARTBEAT_MS'],
    ['a non-boolean trust-proxy', { HERALD_TRUST_PROXY: 'yes' }, 'HERALD_TRUST_PROXY'],
    ['a cluster node without a port', { REDIS_CLUSTER_NODES: '127.0.0.1:7000,127.0.0.1' }, 'REDIS_CLUSTER_NODES'],
    ['a cluster node with a port out of range', { REDIS_CLUSTER_NODES: 'redis-a:70000' }, 'REDIS_CLUSTER_NODES'],
    ['both REDIS_URL and REDIS_CLUSTER_NODES', { REDIS_URL: 'redis://localhost:6379', REDIS_CLUSTER_NODES: 'redis-a:7000' }, 'REDIS_CLUSTER_NODES'],
    ['a sentinel without a port', { REDIS_SENTINELS: 's1:26379,s2' }, 'REDIS_SENTINELS'],
    ['a Redis URL of another scheme', { REDIS_URL: 'http://localhost:6379' }, 'REDIS_URL'],
    ['a sentinel password without sentinels', { REDIS_URL: 'redis://r:6379', REDIS_SENTINEL_PASSWORD: 'p' }, 'REDIS_SENTINEL_PASSWORD'],
    ['a password without any Redis', { REDIS_PASSWORD: 'p' }, 'REDIS_PASSWORD'],
    ['a password both in REDIS_URL and REDIS_PASSWORD', { REDIS_URL: 'redis://:a@r:6379', REDIS_PASSWORD: 'b' }, 'REDIS_PASSWORD'],
    ['a user both in REDIS_URL and REDIS_USERNAME', { REDIS_URL: 'redis://u:a@r:6379', REDIS_USERNAME: 'v' }, 'REDIS_USERNAME'],
    ['REDIS_TLS with REDIS_URL (the scheme decides)', { REDIS_URL: 'redis://r:6379', REDIS_TLS: 'true' }, 'REDIS_TLS'],
    ['a CA file with a plain redis:// URL', { REDIS_URL: 'redis://r:6379', REDIS_TLS_CA_FILE: '/ca.pem' }, 'REDIS_TLS_CA_FILE'],
    ['a CA file for cluster nodes without REDIS_TLS', { REDIS_CLUSTER_NODES: 'r:7000', REDIS_TLS_CA_FILE: '/ca.pem' }, 'REDIS_TLS_CA_FILE'],
    ['a client certificate without its key', { REDIS_URL: 'rediss://r:6379', REDIS_TLS_CERT_FILE: '/c.pem' }, 'REDIS_TLS_KEY_FILE'],
    ['a client key without its certificate', { REDIS_SENTINELS: 's:26379', REDIS_TLS: 'true', REDIS_TLS_KEY_FILE: '/k.pem' }, 'REDIS_TLS_CERT_FILE'],
    ['a non-boolean REDIS_TLS', { REDIS_SENTINELS: 's:26379', REDIS_TLS: 'yes' }, 'REDIS_TLS'],
  ];
  for (const [name, env, setting] of bad) {
    it(`${name} fails with a ConfigError naming ${setting}`, () => {
      expect(configError({}, env).message).toContain(setting);
    });
  }

  it('REDIS_CLUSTER_NODES parses into seed nodes (IPv6 in brackets too)', () => {
    const c = loadConfig({}, { REDIS_CLUSTER_NODES: 'redis-a:7000, 10.0.0.2:7001,[::1]:7002' });
    expect(c.redisClusterNodes).toEqual([
      { host: 'redis-a', port: 7000 },
      { host: '10.0.0.2', port: 7001 },
      { host: '::1', port: 7002 },
    ]);
    expect(c.redisUrl).toBeUndefined();
  });

  const targets = { REDIS_URL: 'redis://r:6379', REDIS_CLUSTER_NODES: 'r:7000', REDIS_SENTINELS: 's:26379' };
  for (const [a, b] of [['REDIS_URL', 'REDIS_CLUSTER_NODES'], ['REDIS_URL', 'REDIS_SENTINELS'], ['REDIS_CLUSTER_NODES', 'REDIS_SENTINELS']] as const) {
    it(`${a} and ${b} together fail at once, naming both`, () => {
      const message = configError({}, { [a]: targets[a], [b]: targets[b] }).message;
      expect(message).toContain(a);
      expect(message).toContain(b);
    });
  }

  it('REDIS_SENTINELS parses into sentinels, with the master name defaulting to mymaster', () => {
    const c = loadConfig({}, { REDIS_SENTINELS: 's1:26379, [::1]:26380', REDIS_SENTINEL_PASSWORD: 'sp', REDIS_USERNAME: 'herald', REDIS_PASSWORD: 'pw' });
    expect(c.redisSentinels).toEqual([
      { host: 's1', port: 26379 },
      { host: '::1', port: 26380 },
    ]);
    expect(c.redisSentinelName).toBe('mymaster');
    expect(c.redisSentinelPassword).toBe('sp');
    expect([c.redisUsername, c.redisPassword]).toEqual(['herald', 'pw']);
    expect(loadConfig({}, { REDIS_SENTINELS: 's1:26379', REDIS_SENTINEL_NAME: 'signal' }).redisSentinelName).toBe('signal');
  });

  it('never echoes a Redis password in the error', () => {
    const message = configError({}, { REDIS_URL: 'redis://:a@r:6379', REDIS_PASSWORD: 'hunter2-secret' }).message;
    expect(message).not.toContain('hunter2-secret');
  });

  it('a bad flag is reported under its setting name too', () => {
    expect(configError({ port: 'abc' }).message).toContain('PORT');
  });

  it('never echoes a secret value in the error', () => {
    const message = configError({}, { HERALD_SECRET: 'tooShortSecret' }).message;
    expect(message).toContain('HERALD_SECRET');
    expect(message).not.toContain('tooShortSecret');
  });
});
