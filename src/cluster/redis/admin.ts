import type { PeerHolding, RoomSummary } from '../../core/cluster.js';
import { HeraldError } from '../../core/errors.js';
import type { Member } from '../../core/types.js';
import type { Context } from './context.js';
import { mapError } from './membership.js';
import { parseMember } from './wire.js';

/**
 * The operator's cluster-wide view. Rooms come from the room index (a SET every join adds
 * to), never from a SCAN: on a Redis Cluster a SCAN sees one node only. A room whose slot is
 * unreachable is listed with what this instance's replica knows, marked `unavailable`.
 */
export class Admin {
  constructor(private readonly ctx: Context) {}

  async listRooms(): Promise<RoomSummary[]> {
    const { ctx } = this;
    this.requireHealthy();
    let ids: string[];
    try {
      ids = await ctx.cmd.smembers(ctx.keys.roomIndex);
    } catch (err) {
      throw mapError(err, '', 0);
    }
    const rooms: RoomSummary[] = [];
    const empty: string[] = [];
    await Promise.all(
      ids.map(async (id) => {
        const [members, bcast] = ctx.keys.room(id);
        try {
          const [size, broadcaster] = await Promise.all([ctx.cmd.hlen(members), ctx.cmd.get(bcast)]);
          if (size > 0) rooms.push({ id, members: size, broadcaster });
          else empty.push(id);
        } catch {
          const room = ctx.replicas.get(id)?.room;
          rooms.push({ id, members: room?.size ?? 0, broadcaster: room?.broadcaster?.peerId ?? null, unavailable: true });
        }
      }),
    );
    // Prune rooms that emptied; a join racing this re-adds its room right after its script.
    if (empty.length) void ctx.cmd.srem(ctx.keys.roomIndex, ...empty).catch(() => {});
    return rooms.sort((a, b) => a.id.localeCompare(b.id));
  }

  async roomMembers(roomId: string): Promise<Member[] | undefined> {
    this.requireHealthy();
    try {
      const all = await this.ctx.cmd.hvals(this.ctx.keys.room(roomId)[0]);
      return all.length ? all.map(parseMember) : undefined;
    } catch (err) {
      throw mapError(err, roomId, 0);
    }
  }

  /**
   * The peers each other live instance holds, from its `{inst:I}:peers` set (one read per
   * instance: on a Redis Cluster each set lives in its instance's slot). An instance whose
   * liveness key is gone is left out: it is dead, or about to be reaped.
   */
  async remotePeers(): Promise<PeerHolding[]> {
    const { ctx } = this;
    this.requireHealthy();
    let others: string[];
    try {
      others = (await ctx.cmd.smembers(ctx.keys.instances)).filter((id) => id !== ctx.me);
    } catch (err) {
      throw mapError(err, '', 0);
    }
    const held = await Promise.all(
      others.map(async (instance): Promise<PeerHolding | undefined> => {
        try {
          const [alive, peers] = await Promise.all([ctx.cmd.exists(ctx.keys.instance(instance, 'alive')), ctx.cmd.smembers(ctx.keys.instance(instance, 'peers'))]);
          return alive === 1 ? { instance, peers: peers.sort() } : undefined;
        } catch {
          return { instance, peers: [], unavailable: true };
        }
      }),
    );
    return held.filter((h): h is PeerHolding => h !== undefined).sort((a, b) => a.instance.localeCompare(b.instance));
  }

  private requireHealthy(): void {
    if (!this.ctx.healthy) throw new HeraldError('unavailable', 'the cluster directory (redis) is unreachable');
  }
}
