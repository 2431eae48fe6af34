import type { Redis } from 'ioredis';
import type { DirectMail, QueuedDirect } from '../core/direct.js';
import { HeraldError } from '../core/errors.js';

/**
 * POST: KEYS peer, queue (one hash slot: `{peer:P}`); ARGV channel-prefix, wire, entry,
 * ttl-ms, max. When an instance holds the peer, publishes `wire` on that instance's channel
 * (it arrives as any other delivery does); otherwise appends `entry` to the peer's queue,
 * which lives at most `ttl` past its last message. Lookup and queueing are one atomic step,
 * so a message can neither miss a peer that has just claimed its id nor be queued after it.
 */
const POST = `
local inst = redis.call('HGET', KEYS[1], 'i')
if inst then
  redis.call('PUBLISH', ARGV[1] .. inst, ARGV[2])
  return 'sent'
end
if redis.call('LLEN', KEYS[2]) >= tonumber(ARGV[5]) then return 'full' end
redis.call('RPUSH', KEYS[2], ARGV[3])
redis.call('PEXPIRE', KEYS[2], ARGV[4])
return 'queued'
`;

/** COLLECT: KEYS queue. Removes and returns everything waiting, oldest first. */
const COLLECT = `
local items = redis.call('LRANGE', KEYS[1], 0, -1)
redis.call('DEL', KEYS[1])
return items
`;

/** EXPIRE: KEYS queue; ARGV sender. Drops the sender's waiting messages; returns how many. */
const EXPIRE = `
local items = redis.call('LRANGE', KEYS[1], 0, -1)
local dropped = 0
for _, item in ipairs(items) do
  if cjson.decode(item).from == ARGV[1] then
    redis.call('LREM', KEYS[1], 1, item)
    dropped = dropped + 1
  end
end
return dropped
`;

type DirectCommands = Redis & {
  heraldDirectPost(...args: (string | number)[]): Promise<'sent' | 'queued' | 'full'>;
  heraldDirectCollect(...args: string[]): Promise<string[]>;
  heraldDirectExpire(...args: string[]): Promise<number>;
};

/** Where RedisCluster keeps a peer's binding and where an instance listens. */
export interface RedisDirectKeys {
  /** The peer's binding hash (`i` = holding instance). */
  peerKey(peerId: string): string;
  /** An instance's channel is this prefix + its id. */
  channelPrefix: string;
  healthy(): boolean;
}

/**
 * Room-less delivery over Redis: one script call per message finds the holder in the peer
 * directory and publishes to its instance only, or queues the message under the peer's key
 * for whichever instance it connects to.
 */
export class RedisDirectMail implements DirectMail {
  private readonly cmd: DirectCommands;

  constructor(
    cmd: Redis,
    private readonly keys: RedisDirectKeys,
  ) {
    this.cmd = cmd as DirectCommands;
    this.cmd.defineCommand('heraldDirectPost', { numberOfKeys: 2, lua: POST });
    this.cmd.defineCommand('heraldDirectCollect', { numberOfKeys: 1, lua: COLLECT });
    this.cmd.defineCommand('heraldDirectExpire', { numberOfKeys: 1, lua: EXPIRE });
  }

  private queueKey(peerId: string): string {
    return `${this.keys.peerKey(peerId)}:queue`;
  }

  async post(to: string, queued: QueuedDirect, ttlMs: number, max: number): Promise<'sent' | 'queued' | 'full'> {
    this.requireHealthy(to);
    // The wire is what RedisCluster's subscriber delivers to a local peer (`t: 'd'`).
    const wire = JSON.stringify({ t: 'd', p: to, e: queued.event });
    return this.cmd.heraldDirectPost(this.keys.peerKey(to), this.queueKey(to), this.keys.channelPrefix, wire, JSON.stringify(queued), ttlMs, max);
  }

  async collect(to: string): Promise<QueuedDirect[]> {
    if (!this.keys.healthy()) return [];
    const items = await this.cmd.heraldDirectCollect(this.queueKey(to));
    return items.map((item) => JSON.parse(item) as QueuedDirect);
  }

  async expire(to: string, from: string): Promise<number> {
    if (!this.keys.healthy()) return 0;
    return this.cmd.heraldDirectExpire(this.queueKey(to), from);
  }

  private requireHealthy(to: string): void {
    if (!this.keys.healthy()) throw new HeraldError('unavailable', `cannot reach peer ${to}: the cluster is unreachable`);
  }
}
