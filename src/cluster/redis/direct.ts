import type { DirectMail, QueuedDirect } from '../../core/direct.js';
import { HeraldError } from '../../core/errors.js';
import type { Context } from './context.js';

/**
 * POST: KEYS peer, queue (one hash slot: `{peer:P}`); ARGV entry, ttl-ms, max. Returns the
 * instance holding the peer, or appends `entry` to the peer's queue (which lives at most
 * `ttl` past its last message) and returns 'queued' / 'full'. Lookup and queueing are one
 * atomic step, so a message cannot be queued after its peer has claimed its id. The publish
 * itself goes through the bus (a Lua script on Redis Cluster may only touch its own slot).
 */
const POST = `
local inst = redis.call('HGET', KEYS[1], 'i')
if inst then return 'to:' .. inst end
if redis.call('LLEN', KEYS[2]) >= tonumber(ARGV[3]) then return 'full' end
redis.call('RPUSH', KEYS[2], ARGV[1])
redis.call('PEXPIRE', KEYS[2], ARGV[2])
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

/** How long a queue key outlives its expiry (see post). */
const QUEUE_KEY_GRACE_MS = 30_000;

/** The direct-mail scripts, registered with the others by the connection. */
export const DIRECT_SCRIPTS = [
  ['heraldDirectPost', 2, POST],
  ['heraldDirectCollect', 1, COLLECT],
  ['heraldDirectExpire', 1, EXPIRE],
] as const;

type DirectCommands = {
  heraldDirectPost(...args: (string | number)[]): Promise<string>;
  heraldDirectCollect(...args: string[]): Promise<string[]>;
  heraldDirectExpire(...args: string[]): Promise<number>;
};

/**
 * Room-less delivery over Redis: one script call per message finds the holder in the peer
 * directory (then the bus publishes to that instance only), or queues the message under the
 * peer's key for whichever instance it connects to.
 */
export class RedisDirectMail implements DirectMail {
  constructor(private readonly ctx: Context) {}

  private get cmd(): DirectCommands {
    return this.ctx.cmd as unknown as DirectCommands;
  }

  /** LIST of QueuedDirect JSON waiting for a room-less peer (tag `{peer:<id>}`, TTL = expiry). */
  private queueKey(peerId: string): string {
    return `${this.ctx.keys.peer(peerId)}:queue`;
  }

  async post(to: string, queued: QueuedDirect, ttlMs: number, max: number): Promise<'sent' | 'queued' | 'full'> {
    if (!this.ctx.healthy) throw new HeraldError('unavailable', `cannot reach peer ${to}: the cluster is unreachable`);
    // The hub's expiry timer drops the pair's messages and tells the sender; the key's own TTL
    // is only a safety net for a sender that died. It must outlive the timer, or a timer that
    // fires late on a loaded event loop finds the queue already gone and nobody is told.
    const keyTtlMs = ttlMs + QUEUE_KEY_GRACE_MS;
    const outcome = await this.cmd.heraldDirectPost(this.ctx.keys.peer(to), this.queueKey(to), JSON.stringify(queued), keyTtlMs, max);
    if (!outcome.startsWith('to:')) return outcome as 'queued' | 'full';
    const instanceId = outcome.slice(3);
    if (instanceId === this.ctx.me) this.ctx.peers.receiveEvent(to, queued.event);
    else this.ctx.bus.publish(instanceId, { type: 'deliver', peer: to, event: queued.event });
    return 'sent';
  }

  async collect(to: string): Promise<QueuedDirect[]> {
    if (!this.ctx.healthy) return [];
    const items = await this.cmd.heraldDirectCollect(this.queueKey(to));
    return items.map((item) => JSON.parse(item) as QueuedDirect);
  }

  async expire(to: string, from: string): Promise<number> {
    if (!this.ctx.healthy) return 0;
    return this.cmd.heraldDirectExpire(this.queueKey(to), from);
  }
}
