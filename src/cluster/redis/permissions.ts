import type { Context } from './context.js';

/** Every command the Lua scripts run (src/cluster/redis/scripts.ts and direct.ts), on throwaway keys. */
const SCRIPT_COMMANDS = `
redis.call('HSET', KEYS[1], 'f', '1')
redis.call('HGET', KEYS[1], 'f')
redis.call('HLEN', KEYS[1])
redis.call('HKEYS', KEYS[1])
redis.call('HVALS', KEYS[1])
redis.call('HGETALL', KEYS[1])
redis.call('HINCRBY', KEYS[1], 'n', 1)
redis.call('HDEL', KEYS[1], 'f', 'n')
redis.call('SET', KEYS[2], '1')
redis.call('GET', KEYS[2])
redis.call('INCR', KEYS[2])
redis.call('EXPIRE', KEYS[2], 60)
redis.call('PEXPIRE', KEYS[2], 60000)
redis.call('PERSIST', KEYS[2])
redis.call('RPUSH', KEYS[3], 'x')
redis.call('LLEN', KEYS[3])
redis.call('LRANGE', KEYS[3], 0, -1)
redis.call('LREM', KEYS[3], 1, 'x')
redis.call('DEL', KEYS[1], KEYS[2], KEYS[3])
return 1`;

/** The Redis user lacks something Herald needs (NOPERM): the command or key it was refused. */
export class PermissionError extends Error {}

/**
 * Runs, once, each command Herald uses (docs/operations.md "Redis ACL" lists them), on
 * keys and a channel of this instance's own under the prefix, so that a user missing one
 * of them is found at registration, not at the first signal that needs it: the instance
 * then stays not-ready (/readyz 503) and says which command was refused.
 */
export async function checkPermissions(ctx: Context): Promise<void> {
  const { cmd, conn, keys, me } = ctx;
  // This instance's own hash tag: the check depends on the master its liveness key lives on, no other.
  const base = `${keys.prefix}:{inst:${me}}:probe`;
  const [hash, str, list, set, zset] = ['h', 's', 'l', 'set', 'z'].map((k) => `${base}:${k}`) as [string, string, string, string, string];
  const channel = `${base}:ch`;
  const checks: [string, () => Promise<unknown>][] = [
    ['EVAL (and the commands its scripts run)', () => cmd.eval(SCRIPT_COMMANDS, 3, hash, str, list)],
    // An unknown script: NOSCRIPT when EVALSHA is allowed, NOPERM when not.
    ['EVALSHA', () => cmd.evalsha('0'.repeat(40), 1, hash).catch((err: Error) => {
      if (!/NOSCRIPT/.test(err.message)) throw err;
    })],
    ['SET, GET, EXISTS, DEL', async () => {
      await cmd.set(str, '1', 'PX', 60_000, 'NX');
      await cmd.get(str);
      await cmd.exists(str);
      await cmd.del(str);
    }],
    ['SADD, SMEMBERS, SREM', async () => {
      await cmd.sadd(set, me);
      await cmd.smembers(set);
      await cmd.srem(set, me);
    }],
    ['HLEN, HVALS', async () => {
      await cmd.hlen(hash);
      await cmd.hvals(hash);
    }],
    ['ZADD, ZRANGE, ZREMRANGEBYSCORE', async () => {
      await cmd.zadd(zset, 0, me);
      await cmd.zrange(zset, '0', '-1');
      await cmd.zremrangebyscore(zset, '-inf', '+inf');
    }],
    [conn.sharded ? 'SPUBLISH' : 'PUBLISH', () => (conn.sharded ? cmd.spublish(channel, 'probe') : cmd.publish(channel, 'probe'))],
    [conn.sharded ? 'SSUBSCRIBE, SUNSUBSCRIBE' : 'SUBSCRIBE, UNSUBSCRIBE', async () => {
      if (conn.sharded) {
        await conn.sub.ssubscribe(channel);
        await conn.sub.sunsubscribe(channel);
      } else {
        await conn.sub.subscribe(channel);
        await conn.sub.unsubscribe(channel);
      }
    }],
  ];
  const results = await Promise.allSettled(checks.map(([, run]) => run()));
  for (let i = 0; i < results.length; i++) {
    const result = results[i]!;
    if (result.status === 'fulfilled') continue;
    const err = result.reason as Error;
    if (!/NOPERM|no permissions? to/i.test(String(err?.message))) throw err;
    throw new PermissionError(`NOPERM: the redis user may not run ${checks[i]![0]} on ${keys.prefix}:* keys or channels: ${err.message}`);
  }
}
