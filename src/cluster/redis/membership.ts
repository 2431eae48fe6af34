import { HeraldError } from '../../core/errors.js';
import { checkAdmission, type Room } from '../../core/room.js';
import type { LeaveReason, Member } from '../../core/types.js';
import { isUnavailable, UNREACHABLE } from './connection.js';
import type { Context } from './context.js';
import type { Replica } from './replicas.js';
import { parseMember, sameMember, type Stored } from './wire.js';

/** The claim error a JOIN script raises: a newer claim of this peer id exists elsewhere. */
export const STALE = 'this peer id was claimed again on another instance';

/**
 * Joining and leaving rooms: the JOIN and LEAVE scripts decide atomically in the room's slot,
 * then the instances holding members of the room are told, and the local replica applies
 * the change in version order.
 */
export class Membership {
  /** Rooms a local member left while Redis was away: recovery writes them again. */
  readonly dirtyRooms = new Set<string>();

  constructor(private readonly ctx: Context) {}

  async join(roomId: string, member: Member, maxPeers: number): Promise<Room> {
    if (!this.ctx.roomAvailable(roomId)) return this.joinOffline(roomId, member, maxPeers);
    return (await this.admit(roomId, member, maxPeers, false)).room;
  }

  /**
   * The directory (or this room's slot) is unreachable. A room this instance holds members
   * of is admitted into locally, by the same rule (checkAdmission) against the local replica:
   * its local members hear the newcomer at once, and registering again writes it to the
   * directory (other instances hear it then). A room not held here cannot be judged: unavailable.
   */
  private joinOffline(roomId: string, member: Member, maxPeers: number): Room {
    const replica = this.ctx.replicas.get(roomId);
    if (!replica) throw this.unavailable(roomId);
    checkAdmission(replica.room, member, maxPeers);
    const prev = replica.put(member, replica.seen.get(member.peerId) ?? replica.base);
    this.dirtyRooms.add(roomId);
    if (!prev || !sameMember(prev, member)) this.ctx.local.joined(replica.room, member);
    return replica.room;
  }

  /** Admits a member; `moved`: a resumed member taking its place over, announced to no one. */
  async admit(roomId: string, member: Member, maxPeers: number, moved: boolean): Promise<Replica> {
    const { ctx } = this;
    const { replicas, keys, me } = ctx;
    const wantSnapshot = replicas.needsSnapshot(roomId);
    if (wantSnapshot) replicas.startLoading(roomId);
    const claim = ctx.peers.claimSeq(member.peerId);
    const stored: Stored = { ...member, c: claim };
    replicas.beginJoin(roomId);
    let result: [number, string[], string, string[]];
    try {
      if (wantSnapshot) {
        // Listen before joining: other instances publish to us as soon as the script has run.
        await ctx.bus.subscribeRoom(roomId);
        void ctx.cmd.sadd(keys.instance(me, 'rooms'), roomId).catch(() => {});
      }
      result = await ctx.track(
        ctx.cmd.heraldJoin(...keys.room(roomId), member.peerId, JSON.stringify(stored), member.role, me, maxPeers, wantSnapshot ? '1' : '0', claim),
      );
    } catch (err) {
      if (wantSnapshot) replicas.abortLoading(roomId);
      replicas.endJoin(roomId);
      const mapped = mapError(err, roomId, maxPeers);
      // A newer claim of this peer id exists elsewhere and its `taken` notice is on the way:
      // act on it now, so the socket is closed as replaced (4000), not refused.
      if (mapped instanceof HeraldError && mapped.message === STALE) ctx.peers.taken(member.peerId);
      throw mapped;
    }
    void ctx.cmd.sadd(keys.roomIndex, roomId).catch(() => {});
    const [v, insts, prevJson, snapshot] = result;
    const prev = prevJson ? parseMember(prevJson) : undefined;
    // Tell the other instances first, so that what the local side does next (an offer to
    // the newcomer, say) reaches them after the notice.
    ctx.bus.publishRoom(insts, prev, moved ? { type: 'joined', room: roomId, v, member, moved: true } : { type: 'joined', room: roomId, v, member });
    let replica: Replica;
    if (wantSnapshot) {
      replica = replicas.finishLoading(roomId, v, snapshot.map(parseMember), moved ? undefined : member);
    } else {
      await replicas.loaded(roomId);
      replica = replicas.get(roomId) ?? (await this.ensureReplica(roomId));
      replicas.applyJoin(replica, member, v, moved);
    }
    replicas.endJoin(roomId);
    return replica;
  }

  async leave(roomId: string, peerId: string, reason: LeaveReason): Promise<Member | undefined> {
    // Only an operator's kick removes a member held elsewhere; every other leave is this
    // instance letting go of its own peer, and must not remove a newer holder's membership.
    return this.remove(roomId, peerId, reason, reason === 'kicked' ? '' : this.ctx.me);
  }

  async remove(roomId: string, peerId: string, reason: LeaveReason, onlyInstance: string): Promise<Member | undefined> {
    const { ctx } = this;
    const replica = ctx.replicas.get(roomId);
    if (!ctx.roomAvailable(roomId)) return this.leaveOffline(replica, peerId, reason);
    let result: [] | [number, string[], string];
    try {
      result = await ctx.track(ctx.cmd.heraldLeave(...ctx.keys.room(roomId), peerId, onlyInstance));
    } catch (err) {
      if (!isUnavailable(err)) throw err;
      return this.leaveOffline(replica, peerId, reason);
    }
    if (result.length === 0) return undefined;
    const [v, insts, json] = result;
    if (insts.length === 0) this.unindex(roomId);
    const member = parseMember(json);
    ctx.bus.publishRoom(insts, member, { type: 'left', room: roomId, v, members: [member], reason });
    const current = ctx.replicas.get(roomId);
    if (current) ctx.replicas.applyLeave(current, member, v, reason);
    return member;
  }

  /**
   * Redis (or this room's slot) is away: a local member leaves the local replica now (its
   * local room-mates hear it); recovery later removes it from Redis and tells the others.
   */
  private leaveOffline(replica: Replica | undefined, peerId: string, reason: LeaveReason): Member | undefined {
    const member = replica?.room.get(peerId);
    if (!replica || !member) return undefined;
    if (member.instanceId !== this.ctx.me) throw new HeraldError('unavailable', UNREACHABLE);
    this.dirtyRooms.add(replica.room.id);
    return this.ctx.replicas.removeOffline(replica, peerId, reason);
  }

  /**
   * The room emptied: take it out of the room index (a different slot than the room's, so
   * not inside the script). A join racing this puts it back: checked after removing.
   */
  unindex(roomId: string): void {
    const { cmd, keys } = this.ctx;
    void (async () => {
      await cmd.srem(keys.roomIndex, roomId);
      if ((await cmd.hlen(keys.room(roomId)[0])) > 0) await cmd.sadd(keys.roomIndex, roomId);
    })().catch(() => {});
  }

  /** A join landed after this instance had dropped the room's replica: load it again. */
  async ensureReplica(roomId: string): Promise<Replica> {
    const { ctx } = this;
    const existing = ctx.replicas.get(roomId);
    if (existing) return existing;
    if (!ctx.replicas.needsSnapshot(roomId)) {
      await ctx.replicas.loaded(roomId);
      return this.ensureReplica(roomId);
    }
    ctx.replicas.startLoading(roomId);
    try {
      await ctx.bus.subscribeRoom(roomId);
      void ctx.cmd.sadd(ctx.keys.instance(ctx.me, 'rooms'), roomId).catch(() => {});
      const [members, , , ver] = ctx.keys.room(roomId);
      const [v, snapshot] = await ctx.cmd.heraldSnapshot(members, ver);
      return ctx.replicas.finishLoading(roomId, Number(v), snapshot.map(parseMember));
    } catch (err) {
      ctx.replicas.abortLoading(roomId);
      throw mapError(err, roomId, 0);
    }
  }

  /** Why a room cannot be reached now: the whole directory, or (Redis Cluster) its slot. */
  private unavailable(roomId: string): HeraldError {
    if (!this.ctx.healthy) return new HeraldError('unavailable', UNREACHABLE);
    return new HeraldError('unavailable', `room ${roomId} is unavailable: its Redis Cluster slot has no reachable master`);
  }
}

export function mapError(err: unknown, roomId: string, maxPeers: number): Error {
  // Redis prefixes a script's error_reply with ERR.
  const message = (err instanceof Error ? err.message : String(err)).replace(/^ERR /, '');
  if (message === 'conflict') return new HeraldError('conflict', `room ${roomId} already has a broadcaster`);
  if (message.startsWith('room-full')) return new HeraldError('room-full', `room ${roomId} is full (${maxPeers} members)`);
  if (message === 'stale') return new HeraldError('conflict', STALE);
  if (isUnavailable(err)) return new HeraldError('unavailable', roomId ? `room ${roomId} is unavailable: ${UNREACHABLE}` : UNREACHABLE);
  return err instanceof Error ? err : new Error(message);
}
