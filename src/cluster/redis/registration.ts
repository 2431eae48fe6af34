import type { LeaveReason } from '../../core/types.js';
import type { Context } from './context.js';
import { checkPermissions } from './permissions.js';
import { parseMember } from './wire.js';

const ALIVE_TTL_MS = 5000;
export const TICK_MS = 1000;
const REAP_LOCK_MS = 30_000;
/** After Redis (or a master) returns, how long instances get to re-register before absent ones count as gone. */
const RESETTLE_MS = 3000;
/** A liveness key must stay missing this long, on a master stable all along, before its instance is reaped. */
const CONFIRM_MS = 1500;

/**
 * This instance in the directory: registering (liveness key, peer bindings, the members it
 * holds), keeping its liveness key fresh, reaping dead instances, and registering again
 * whenever Redis (or one master of a Redis Cluster) comes back, possibly empty.
 */
export class Registration {
  registered = false;
  private recovering: Promise<void> | undefined;
  private timer: NodeJS.Timeout | undefined;
  /** Instances whose liveness key was found missing, and since when. */
  private readonly suspects = new Map<string, number>();

  constructor(private readonly ctx: Context) {}

  start(): void {
    this.timer = setInterval(() => void this.tick(), TICK_MS);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
    this.registered = false;
  }

  /** A connection dropped (one Redis: everything is gone until it is back). */
  lost(): void {
    if (this.ctx.stopping) return;
    if (this.registered) this.ctx.log.warn('redis connection lost: cross-instance delivery unavailable');
    this.registered = false;
  }

  private async tick(): Promise<void> {
    const { ctx } = this;
    if (ctx.stopping) return;
    ctx.replicas.pruneTombstones();
    ctx.peers.prune(Date.now());
    ctx.masters.refresh();
    if (!ctx.conn.ready) return;
    if (!this.registered) {
      void this.recover();
      return;
    }
    const { cmd, keys, me } = ctx;
    try {
      const refreshed = await cmd.set(keys.instance(me, 'alive'), '1', 'PX', ALIVE_TTL_MS, 'XX');
      if (refreshed === null) {
        // Our key was gone: Redis lost its data, or we were presumed dead. Register again.
        ctx.log.warn('liveness key was missing: re-registering');
        if (ctx.conn.sharded) await this.reRegister(undefined, true);
        else {
          this.registered = false;
          void this.recover();
        }
        return;
      }
      await this.checkOthers();
    } catch (err) {
      // An ACL changed under a running instance: not ready until it is fixed.
      if (ctx.conn.faults.report(err, ctx.conn.describe())) this.registered = false;
      else ctx.log.debug({ err: String(err) }, 'liveness tick failed');
    }
  }

  /**
   * Reaps instances whose liveness key is gone. A key that vanished with a master's restart
   * is not a death: a miss counts only on a master that has been up, with the same run id,
   * for RESETTLE_MS (its owner re-registers within a tick), and must persist for CONFIRM_MS.
   */
  private async checkOthers(): Promise<void> {
    const { cmd, keys, me, masters } = this.ctx;
    const others = (await cmd.smembers(keys.instances)).filter((id) => id !== me);
    const alive = await Promise.allSettled(others.map((id) => cmd.exists(keys.instance(id, 'alive'))));
    const now = Date.now();
    for (let i = 0; i < others.length; i++) {
      const id = others[i]!;
      const result = alive[i]!;
      const missing = result.status === 'fulfilled' && result.value === 0 && masters.stableFor(keys.instance(id, 'alive'), now) >= RESETTLE_MS;
      if (!missing) {
        this.suspects.delete(id);
        continue;
      }
      const since = this.suspects.get(id);
      if (since === undefined) this.suspects.set(id, now);
      else if (now - since >= CONFIRM_MS) {
        this.suspects.delete(id);
        await this.reapDead(id);
      }
    }
  }

  private async reapDead(dead: string): Promise<void> {
    const { cmd, keys, me, log } = this.ctx;
    const won = await cmd.set(keys.reapLock(dead), me, 'PX', REAP_LOCK_MS, 'NX');
    if (won === null) return; // another survivor has it
    const started = Date.now();
    const { removed, complete } = await this.reapInstance(dead, 'instance-lost');
    this.ctx.bus.forget(dead);
    if (complete) await cmd.srem(keys.instances, dead);
    else await cmd.del(keys.reapLock(dead)); // some rooms' slots were unreachable: try again next tick
    log.warn({ instance: dead, members: removed, complete, ms: Date.now() - started }, 'reaped a dead instance');
  }

  /** Removes every member and peer binding `dead` holds, telling the rooms. */
  async reapInstance(dead: string, reason: LeaveReason): Promise<{ removed: number; complete: boolean }> {
    const { ctx } = this;
    const { cmd, keys, me } = ctx;
    let removed = 0;
    let complete = true;
    const rooms = await cmd.smembers(keys.instance(dead, 'rooms'));
    if (dead === me) for (const id of ctx.replicas.ids()) if (!rooms.includes(id)) rooms.push(id);
    for (const roomId of rooms) {
      let out: (number | string | string[])[];
      try {
        out = await cmd.heraldReap(...keys.room(roomId), dead);
      } catch (err) {
        complete = false;
        ctx.log.debug({ err: String(err), room: roomId }, 'could not reap a room (its slot is unreachable)');
        continue;
      }
      if (out.length === 0) continue;
      const v = out[0] as number;
      const insts = out[1] as string[];
      if (insts.length === 0) ctx.membership.unindex(roomId);
      const ms = (out.slice(2) as string[]).map(parseMember);
      removed += ms.length;
      ctx.bus.publishRoom(insts, undefined, { type: 'left', room: roomId, v, members: ms, reason });
      const replica = ctx.replicas.get(roomId);
      if (replica && dead !== me) for (const m of ms) ctx.replicas.applyLeave(replica, m, v, reason);
    }
    const peers = await cmd.smembers(keys.instance(dead, 'peers'));
    const released = await Promise.allSettled(peers.map((p) => cmd.heraldRelease(keys.peer(p), dead)));
    if (released.some((r) => r.status === 'rejected')) complete = false;
    if (complete) await cmd.del(keys.instance(dead, 'rooms'), keys.instance(dead, 'peers'));
    return { removed, complete };
  }

  /**
   * (Re-)registers this instance: liveness key, peer bindings, and the members it holds in
   * each room, then re-bases every replica on an atomic snapshot. Runs at start, whenever
   * a Redis connection comes back, and when our liveness key went missing on one Redis.
   * Clients notice nothing: a member other instances already had is not announced again.
   */
  recover(): Promise<void> {
    const { ctx } = this;
    if (ctx.stopping || !ctx.conn.ready || this.registered) return Promise.resolve();
    this.recovering ??= this.doRecover().then(
      () => {
        this.recovering = undefined;
      },
      (err: unknown) => {
        this.recovering = undefined;
        ctx.replicas.release();
        if (!ctx.conn.faults.report(err, ctx.conn.describe())) ctx.log.warn({ err: String(err) }, 'redis registration failed; retrying');
      },
    );
    return this.recovering;
  }

  private async doRecover(): Promise<void> {
    const { ctx } = this;
    const { cmd, keys, me } = ctx;
    await checkPermissions(ctx);
    // Room notices wait until the replicas are re-based below.
    ctx.replicas.hold();
    await cmd.set(keys.instance(me, 'alive'), '1', 'PX', ALIVE_TTL_MS);
    await cmd.sadd(keys.instances, me);
    await ctx.bus.subscribeOwn();

    for (const peerId of ctx.peers.pendingRelease) {
      await cmd.heraldRelease(keys.peer(peerId), me);
      await cmd.srem(keys.instance(me, 'peers'), peerId);
    }
    ctx.peers.pendingRelease.clear();
    const lostPeers = await this.reclaimPeers();

    ctx.membership.dirtyRooms.clear();
    const rooms = new Set([...ctx.replicas.ids(), ...(await cmd.smembers(keys.instance(me, 'rooms')))]);
    for (const roomId of rooms) {
      if (ctx.replicas.get(roomId)) await ctx.bus.subscribeRoom(roomId);
      await this.restoreRoom(roomId);
    }
    for (const peerId of lostPeers) ctx.peers.taken(peerId);

    this.registered = true;
    ctx.conn.faults.clear();
    ctx.replicas.release();
    // Local members that left while this ran: write those rooms again.
    for (const roomId of ctx.membership.dirtyRooms) await this.restoreRoom(roomId, false);
    ctx.membership.dirtyRooms.clear();
    ctx.log.info({ rooms: rooms.size, peers: ctx.peers.claims.size }, 'registered with redis');
    // Members that other instances have not re-registered yet stay until they have had the
    // time to; then whatever is still absent from Redis is gone.
    const recheck = ctx.replicas.ids();
    if (recheck.length) ctx.later(RESETTLE_MS, () => this.resettle(recheck));
  }

  /** Binds every peer held here back to this instance; returns those another instance holds now. */
  private async reclaimPeers(onlyUnboundOn?: string): Promise<string[]> {
    const { cmd, keys, me, peers, masters } = this.ctx;
    const lost: string[] = [];
    for (const [peerId, claim] of peers.claims) {
      if (onlyUnboundOn !== undefined && !(peers.unbound.has(peerId) && masters.servesKey(onlyUnboundOn, keys.peer(peerId)))) continue;
      const other = await cmd.heraldReclaim(keys.peer(peerId), me, claim.seq, claim.identity);
      if (other) lost.push(peerId);
      else {
        peers.unbound.delete(peerId);
        await cmd.sadd(keys.instance(me, 'peers'), peerId);
      }
    }
    return lost;
  }

  /**
   * Redis Cluster: master `address` answers again. If it restarted empty (`emptied`), what
   * lived there is written again: our liveness key, peer bindings, and our members of each
   * room it serves. Either way those rooms are re-synced, since notices may have been lost.
   * The instance stays ready throughout: other rooms never stopped working.
   */
  async reRegister(address: string | undefined, emptied: boolean): Promise<void> {
    const { ctx } = this;
    if (ctx.stopping || !this.registered) return;
    const { cmd, keys, me } = ctx;
    try {
      await cmd.set(keys.instance(me, 'alive'), '1', 'PX', ALIVE_TTL_MS);
      await cmd.sadd(keys.instances, me);
      // Peers admitted while their slot was away are bound now; after an empty restart, all.
      for (const peerId of await this.reclaimPeers(emptied ? undefined : address)) ctx.peers.taken(peerId);
      if (emptied) {
        await ctx.bus.subscribeOwn();
        const ids = ctx.replicas.ids();
        if (ids.length) await cmd.sadd(keys.instance(me, 'rooms'), ...ids);
      }
      const rooms = ctx.replicas.ids().filter((id) => address === undefined || ctx.masters.serves(address, id));
      for (const roomId of rooms) {
        await ctx.bus.subscribeRoom(roomId);
        await this.restoreRoom(roomId, emptied);
        void cmd.sadd(keys.roomIndex, roomId).catch(() => {});
      }
      ctx.log.info({ master: address, rooms: rooms.length, emptied }, 'registered again after a master came back');
      if (rooms.length) ctx.later(RESETTLE_MS, () => this.resettle(rooms));
    } catch (err) {
      ctx.log.warn({ err: String(err), master: address }, 'registering again after a master came back failed; retrying');
      ctx.later(TICK_MS, () => this.reRegister(address, emptied));
    }
  }

  /** Writes back this instance's members of one room and re-bases its replica on Redis. */
  private async restoreRoom(roomId: string, restart = true): Promise<void> {
    const { ctx } = this;
    const { cmd, keys, me } = ctx;
    const replica = ctx.replicas.get(roomId);
    const mine = replica ? replica.mine() : [];
    const args = mine.map((m) => JSON.stringify({ ...m, c: ctx.peers.claimSeq(m.peerId) }));
    const [v, insts, added, removed, lost, snapshot, outranked, evicted] = await cmd.heraldRestore(...keys.room(roomId), me, ...args);
    if (removed.length) ctx.bus.publishRoom(insts, undefined, { type: 'left', room: roomId, v, members: removed.map(parseMember), reason: 'closed' });
    // Another instance's broadcaster lost to ours: its holder (and the room) hear `conflict`,
    // before they hear of the winner.
    for (const json of evicted) {
      const loser = parseMember(json);
      ctx.bus.publishRoom(insts, loser, { type: 'left', room: roomId, v, members: [loser], reason: 'conflict' });
      if (replica && ctx.replicas.get(roomId) === replica) ctx.replicas.applyLeave(replica, loser, v, 'conflict');
    }
    for (const json of added) ctx.bus.publishRoom(insts, undefined, { type: 'joined', room: roomId, v, member: parseMember(json) });
    if (!replica || ctx.replicas.get(roomId) !== replica) {
      if (mine.length === 0) await cmd.srem(keys.instance(me, 'rooms'), roomId);
      return;
    }
    await cmd.sadd(keys.instance(me, 'rooms'), roomId);
    // Ours no longer: held elsewhere now (kicked), or another broadcaster came first (conflict).
    for (const [list, reason] of [[lost, 'kicked'], [outranked, 'conflict']] as const) {
      for (const json of list) {
        const m = parseMember(json);
        if (replica.room.get(m.peerId)?.instanceId !== me) continue;
        replica.remove(m.peerId, 0);
        ctx.local.left(replica.room, m, reason);
      }
    }
    ctx.replicas.rebase(replica, v, snapshot.map(parseMember), { removeMissing: false, restart });
  }

  private async resettle(roomIds: string[]): Promise<void> {
    const { ctx } = this;
    for (const roomId of roomIds) {
      if (!ctx.roomAvailable(roomId)) continue;
      const replica = ctx.replicas.get(roomId);
      if (!replica) continue;
      const [members, , , ver] = ctx.keys.room(roomId);
      const [v, snapshot] = await ctx.cmd.heraldSnapshot(members, ver);
      if (ctx.replicas.get(roomId) === replica) ctx.replicas.rebase(replica, Number(v), snapshot.map(parseMember), { removeMissing: true, restart: false });
    }
  }
}
