import { randomUUID } from 'node:crypto';
import type { Config } from '../../config.js';
import type { Cluster, ClusterListener, Handoff, InstanceStatus, PeerHolding, Receipt, ResumeClaim, RoomSummary } from '../../core/cluster.js';
import { HeraldError } from '../../core/errors.js';
import type { Room } from '../../core/room.js';
import { fanOutLocally } from '../../core/fanout.js';
import { eventRoom, type FanoutEvent, type LeaveReason, type Member, type PeerEvent } from '../../core/types.js';
import type { Logger } from '../../observability/logger.js';
import { LocalDelivery } from '../local.js';
import { Admin } from './admin.js';
import { Bus } from './bus.js';
import { RedisConnection } from './connection.js';
import { Context } from './context.js';
import { RedisDirectMail } from './direct.js';
import { InstanceReports } from './instances.js';
import { Keys } from './keys.js';
import { Masters } from './masters.js';
import { redisTarget, type RedisSettings } from './options.js';
import { Membership } from './membership.js';
import { PeerClaims } from './peers.js';
import { LinkProbe } from './probe.js';
import { Registration } from './registration.js';
import { Replicas } from './replicas.js';
import { withoutRaw, type Wire } from './wire.js';

const BOOT_WAIT_MS = 3000;
/** On stop, how long local members get to resume elsewhere (drain) before being removed. */
const STOP_HANDOFF_MS = 5000;

/**
 * Many Herald instances as one service, over one Redis or a Redis Cluster
 * (docs/architecture.md "The Redis cluster in more detail"). This file only wires the
 * concerns together; each lives in its own file here:
 *
 *   connection.ts    the command and subscriber connections; which errors mean "unreachable"
 *   keys.ts          every key and channel, with its data type and hash tag
 *   scripts.ts       the Lua scripts (atomic admission, claims, reaping, restore)
 *   wire.ts          the named messages instances send each other
 *   bus.ts           publishing (batched per channel and tick) and receiving them
 *   replicas.ts      this instance's ordered copy of each room it holds members of
 *   membership.ts    join and leave
 *   peers.ts         peer claims, resume hand-off, forwarding
 *   registration.ts  liveness, crash reaping, registering again after an outage
 *   masters.ts       Redis Cluster masters: which are up, which restarted empty
 *   probe.ts         one Redis: noticing a link that went silent without closing
 *   admin.ts         the cluster-wide room and peer listings
 *
 * Local delivery is LocalDelivery (src/cluster/local.ts), shared with the memory cluster.
 * Boot: `start()` waits up to BOOT_WAIT_MS for Redis; if it is not reachable by then the
 * instance starts anyway and reports not-ready (/readyz 503) until it is: a fleet restarting
 * with Redis should not crash-loop, and orchestrators read readiness.
 */
export class RedisCluster implements Cluster {
  readonly instanceId = `inst-${randomUUID().slice(0, 12)}`;
  private readonly ctx: Context;
  private readonly local = new LocalDelivery(this.instanceId);
  readonly direct: RedisDirectMail;
  private readonly reports: InstanceReports;
  private readonly probe: LinkProbe;

  constructor(config: RedisSettings & Pick<Config, 'redisPrefix'>, log: Logger) {
    const ctx = new Context(this.instanceId, new RedisConnection(redisTarget(config), this.instanceId, log), new Keys(config.redisPrefix), log, this.local);
    ctx.replicas = new Replicas(this.instanceId, {
      joined: (room, m) => this.local.joined(room, m),
      left: (room, m, reason) => this.local.left(room, m, reason),
      dropped: (roomId) => {
        ctx.bus.unsubscribeRoom(roomId);
        if (ctx.healthy) void ctx.cmd.srem(ctx.keys.instance(ctx.me, 'rooms'), roomId).catch(() => {});
      },
    });
    ctx.bus = new Bus(ctx, (wire) => this.undelivered(wire));
    ctx.membership = new Membership(ctx);
    ctx.peers = new PeerClaims(ctx);
    ctx.registration = new Registration(ctx);
    ctx.masters = new Masters(ctx, (address, emptied) => void ctx.registration.reRegister(address, emptied));
    ctx.admin = new Admin(ctx);
    this.direct = new RedisDirectMail(ctx);
    this.reports = new InstanceReports(ctx);
    this.probe = new LinkProbe(ctx, (quietMs) => {
      // Not-ready at once (a load balancer stops sending clients here); both connections
      // start over, and their 'ready' registers again (src/cluster/redis/registration.ts).
      ctx.log.warn({ redis: ctx.conn.describe(), quietMs }, 'redis link is silent: not ready; reconnecting');
      ctx.registration.lost();
      ctx.conn.cmd.disconnect(true);
      ctx.conn.sub.disconnect(true);
    });
    this.ctx = ctx;
  }

  get healthy(): boolean {
    return this.ctx.healthy;
  }

  async start(listener: ClusterListener): Promise<void> {
    const { ctx } = this;
    this.local.attach(listener);
    ctx.bus.listen((wire) => this.receive(wire));
    for (const conn of [ctx.conn.cmd, ctx.conn.sub]) {
      // Needed: an unhandled 'error' would crash the process (sharded subscribers included).
      conn.on('error', (err: Error) => {
        if (!ctx.conn.faults.report(err, ctx.conn.describe())) ctx.log.debug({ err: err.message }, 'redis connection error');
      });
      // Cluster nodes and sentinels report their own errors (a certificate, a password).
      conn.on('node error', (err: Error) => ctx.conn.faults.report(err, ctx.conn.describe()));
      conn.on('sentinelError', (err: Error) => ctx.conn.faults.report(err, ctx.conn.describe()));
      conn.on('close', () => ctx.registration.lost());
      conn.on('ready', () => void ctx.registration.recover());
    }
    ctx.masters.start();
    ctx.registration.start();
    this.probe.start();
    ctx.conn.connect();
    const deadline = Date.now() + BOOT_WAIT_MS;
    while (!this.healthy && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    if (!this.healthy) {
      ctx.log.warn({ redis: ctx.conn.describe() }, 'redis is not reachable yet: starting not ready (/readyz 503) until it is');
    }
  }

  async stop(): Promise<void> {
    const { ctx } = this;
    await ctx.settle();
    // Draining: peers told to reconnect elsewhere resume there, and their memberships move
    // with them. Give them a moment before removing whatever is left.
    const deadline = Date.now() + STOP_HANDOFF_MS;
    while (this.healthy && Date.now() < deadline && ctx.replicas.holdsMembers) await new Promise((r) => setTimeout(r, 50));
    await ctx.settle();
    ctx.stopping = true;
    ctx.cancelTimers();
    if (this.healthy) {
      try {
        // Leave cleanly: what the reaper would do for a dead instance, done now.
        await ctx.registration.reapInstance(this.instanceId, 'closed');
        await ctx.cmd.del(ctx.keys.instance(this.instanceId, 'alive'));
        await ctx.cmd.srem(ctx.keys.instances, this.instanceId);
      } catch (err) {
        ctx.log.warn({ err }, 'could not deregister from redis');
      }
    }
    ctx.registration.stop();
    this.probe.stop();
    ctx.bus.stop();
    ctx.masters.stop();
    ctx.conn.disconnect();
    ctx.replicas.clear();
  }

  join(roomId: string, member: Member, maxPeers: number): Promise<Room> {
    return this.ctx.membership.join(roomId, member, maxPeers);
  }

  leave(roomId: string, peerId: string, reason: LeaveReason): Promise<Member | undefined> {
    return this.ctx.membership.leave(roomId, peerId, reason);
  }

  localRoomCount(): number {
    return this.ctx.replicas.size;
  }

  room(roomId: string): Room | undefined {
    return this.ctx.replicas.get(roomId)?.room;
  }

  send(to: Member, event: PeerEvent, receipt?: Receipt): void {
    const { ctx } = this;
    const forward = to.instanceId === this.instanceId ? ctx.peers.forwardedTo(to.peerId) : undefined;
    if (forward) to = { ...to, instanceId: forward };
    else if (this.local.send(to, event)) {
      receipt?.();
      return;
    }
    const room = eventRoom(event);
    if (room === undefined ? !ctx.healthy : !ctx.roomAvailable(room)) {
      // A relay answers its sender `unavailable`. Other events (an `expired` notice, sent
      // from timers) have no one to answer, so they are dropped instead of thrown.
      if (event.type !== 'signal') return;
      throw new HeraldError('unavailable', `peer ${to.peerId} is on another instance and room ${room} cannot reach its cluster directory`);
    }
    ctx.bus.publish(to.instanceId, { type: 'deliver', peer: to.peerId, event: withoutRaw(event) }, room, receipt);
  }

  /**
   * A message the receiving instance never confirmed (src/cluster/redis/outbound.ts): a
   * signal's or direct message's sender here is told. A room notice is only logged: an
   * instance that confirmed nothing for seconds has lost its link, and re-bases its
   * replicas on the directory when it registers again.
   */
  private undelivered(wire: Wire): void {
    const { ctx } = this;
    if (wire.type === 'deliver') {
      const { event } = wire;
      if (event.type === 'signal') this.local.deliver(event.from, { type: 'undelivered', room: event.room, to: wire.peer });
      else if (event.type === 'direct') this.local.deliver(event.from, { type: 'direct-expired', to: wire.peer });
      return;
    }
    ctx.log.warn({ type: wire.type, ...('room' in wire ? { room: wire.room } : {}) }, 'a cross-instance notice was not confirmed by its instance');
  }

  fanout(room: Room, event: FanoutEvent): void {
    const { ctx } = this;
    fanOutLocally(room, this.instanceId, event, (peerId, e) => this.local.deliver(peerId, e));
    // A room whose slot is away reaches its local members only (the contract: never wait).
    if (!ctx.roomAvailable(room.id)) return;
    // One message per other instance holding members, however many members it holds.
    ctx.bus.publishEach(room.instanceIds(), { type: 'fanout', event }, room.id);
  }

  claimPeer(peerId: string, resume?: ResumeClaim): Promise<Handoff | undefined> {
    return this.ctx.peers.claim(peerId, resume);
  }

  releasePeer(peerId: string): Promise<void> {
    return this.ctx.peers.release(peerId);
  }

  listRooms(): Promise<RoomSummary[]> {
    return this.ctx.admin.listRooms();
  }

  roomMembers(roomId: string): Promise<Member[] | undefined> {
    return this.ctx.admin.roomMembers(roomId);
  }

  reportInstance(report: object): Promise<void> {
    return this.reports.publish(report);
  }

  remotePeers(): Promise<PeerHolding[]> {
    return this.ctx.admin.remotePeers();
  }

  instances(): Promise<InstanceStatus[]> {
    return this.reports.list();
  }

  private receive(wire: Wire): void {
    const { ctx } = this;
    switch (wire.type) {
      case 'deliver':
        ctx.peers.receiveEvent(wire.peer, wire.event);
        return;
      case 'fanout': {
        const room = ctx.replicas.get(wire.event.room)?.room;
        if (room) fanOutLocally(room, this.instanceId, wire.event, (peerId, e) => this.local.deliver(peerId, e));
        return;
      }
      case 'taken':
        ctx.peers.receiveTaken(wire);
        return;
      case 'handoff':
        ctx.peers.receiveHandoff(wire);
        return;
      case 'joined':
      case 'left':
        ctx.replicas.receive(wire);
    }
  }
}
