import { randomUUID } from 'node:crypto';
import { Redis, type RedisOptions } from 'ioredis';
import type { Config } from '../config.js';
import { HeraldError } from '../core/errors.js';
import { Room } from '../core/room.js';
import type { LeaveReason, Member, PeerEvent, Role } from '../core/types.js';
import type { Logger } from '../observability/logger.js';
import type { Cluster, ClusterListener, Handoff, InstanceStatus, ResumeClaim, RoomSummary } from './cluster.js';
import { RedisInstanceReports } from './redis-instances.js';
import { Replica } from './redis-replica.js';
import * as lua from './redis-scripts.js';

/**
 * Many Herald instances as one service, over Redis (docs/architecture.md "The Redis cluster in more detail").
 *
 * - Redis is the directory: room membership (admitted atomically by a Lua script), the
 *   peer -> instance binding, and a liveness key per instance that it refreshes every
 *   second under a 5 s TTL.
 * - Every instance keeps a local replica (a core `Room`) of each room it holds members of,
 *   so the per-message path (`room()`, `send()`) never waits on Redis. A change to a room
 *   is published only to the channels of the instances holding members of it; each replica
 *   applies changes in the order of the room's version counter, per member.
 * - A signal for a local peer is delivered in-process; one for a peer elsewhere is exactly
 *   one PUBLISH on that instance's channel, on one connection, so a pair keeps its order.
 * - A dead instance (liveness key expired) is reaped by exactly one survivor, which wins a
 *   lock, removes its members and tells their rooms (`instance-lost`).
 * - During a Redis outage the instance stays up, serves rooms held entirely here, answers
 *   cross-instance sends with `unavailable`, and re-registers everything when Redis returns.
 *
 * Boot: `start()` waits up to `BOOT_WAIT_MS` for Redis. If it is not reachable by then, the
 * instance starts anyway and reports not-ready (/readyz 503) until it is: a fleet restarting
 * with Redis should not crash-loop, and orchestrators read readiness.
 */

const ALIVE_TTL_MS = 5000;
const TICK_MS = 1000;
const REAP_LOCK_MS = 30_000;
const BOOT_WAIT_MS = 3000;
/** After Redis returns, how long instances get to re-register before absent ones count as gone. */
const RESETTLE_MS = 3000;
/** How long a taken-over peer's memberships wait for the new holder to re-join them. */
const TAKEOVER_GRACE_MS = 3000;
const TOMBSTONE_MS = 60_000;
const STALE = 'this peer id was claimed again on another instance';
/** How long a resume waits for the previous holder to hand the peer over. */
const HANDOFF_WAIT_MS = 2000;
/** How long the previous holder forwards events for a handed-over peer (in flight meanwhile). */
const FORWARD_MS = 10_000;
/** On stop, how long local members get to resume elsewhere (drain) before being removed. */
const STOP_HANDOFF_MS = 5000;

/** What instances publish to each other's channels. */
type Wire =
  /** A member joined; `mv`: it only moved to another instance (a resume), nobody is told. */
  | { t: 'j'; r: string; v: number; m: Member; mv?: 1 }
  | { t: 'l'; r: string; v: number; ms: Member[]; why: LeaveReason }
  | { t: 'd'; p: string; e: PeerEvent }
  /** Peer taken by instance `from`; with `rid`, a resume asking for a handoff reply. */
  | { t: 'k'; p: string; rid?: string; from?: string; tok?: string; idn?: string }
  | { t: 'h'; rid: string; h: WireHandoff | null };

interface WireHandoff {
  rooms: [string, Role][];
  queue: PeerEvent[];
  /** The peer's membership records, as the previous holder's replicas had them. */
  members: { roomId: string; member: Member }[];
}

type RoomWire = Extract<Wire, { t: 'j' | 'l' }>;

/** A Member as stored in Redis: plus the holder's claim number. */
type Stored = Member & { c?: number };

function parseMember(json: string): Member {
  const m = JSON.parse(json) as Stored;
  delete m.c;
  return m;
}

function sameMember(a: Member, b: Member): boolean {
  return a.instanceId === b.instanceId && a.joinedAt === b.joinedAt && a.role === b.role;
}

/** A signal's raw JSON text is a same-process shortcut; the wire carries `data` once. */
function withoutRaw(event: PeerEvent): PeerEvent {
  if (event.type !== 'signal' || event.payload.kind !== 'json' || event.payload.raw === undefined) return event;
  return { ...event, payload: { kind: 'json', data: event.payload.data } };
}

interface Loading {
  buffer: RoomWire[];
  done: Promise<void>;
  resolve(): void;
}

type Commands = Redis & {
  heraldJoin(...args: (string | number)[]): Promise<[number, string[], string, string[]]>;
  heraldLeave(...args: (string | number)[]): Promise<[] | [number, string[], string]>;
  heraldReap(...args: (string | number)[]): Promise<(number | string | string[])[]>;
  heraldRestore(...args: (string | number)[]): Promise<[number, string[], string[], string[], string[], string[]]>;
  heraldSnapshot(...args: (string | number)[]): Promise<[number, string[]]>;
  heraldClaim(...args: (string | number)[]): Promise<[string, number]>;
  heraldReclaim(...args: (string | number)[]): Promise<string>;
  heraldRelease(...args: (string | number)[]): Promise<number>;
};

export class RedisCluster implements Cluster {
  readonly instanceId = `inst-${randomUUID().slice(0, 12)}`;
  private readonly cmd: Commands;
  private readonly sub: Redis;
  private readonly prefix: string;
  private listener!: ClusterListener;

  /** Wires waiting for this tick's PUBLISH, per target instance, in order. */
  private readonly outbox = new Map<string, string[]>();
  private readonly replicas = new Map<string, Replica>();
  private readonly loading = new Map<string, Loading>();
  /** Joins in flight per room: a replica is kept while one is pending. */
  private readonly joining = new Map<string, number>();
  /** Peers claimed here: claim number, and how many connects hold it. */
  private readonly claims = new Map<string, { seq: number; holds: number; identity: string }>();
  /** Releases that could not reach Redis; replayed by recovery. */
  private readonly pendingRelease = new Set<string>();
  /** Rooms a local member left while Redis was away: recovery writes them again. */
  private readonly dirtyRooms = new Set<string>();
  /** Room changes received while recovering, applied once replicas are re-based. */
  private recoveryBuffer: RoomWire[] | undefined;

  private registered = false;
  private recovering: Promise<void> | undefined;
  private stopping = false;
  private timer: NodeJS.Timeout | undefined;
  private readonly inflight = new Set<Promise<unknown>>();
  /** Resumes waiting for the previous holder's handoff, by request id. */
  private readonly handoffWaits = new Map<string, (h: WireHandoff | null) => void>();
  /** Events for a peer whose handoff is being completed here, held to keep their order. */
  private readonly handoffBuffers = new Map<string, PeerEvent[]>();
  /** Peers handed over to another instance: events still arriving here are passed on. */
  private readonly forwarded = new Map<string, { to: string; until: number }>();
  private readonly timers = new Set<NodeJS.Timeout>();
  private readonly reports: RedisInstanceReports;

  constructor(
    private readonly config: Pick<Config, 'redisUrl' | 'redisPrefix'>,
    private readonly log: Logger,
  ) {
    if (!config.redisUrl) throw new Error('RedisCluster needs REDIS_URL');
    this.prefix = config.redisPrefix;
    const options: RedisOptions = {
      lazyConnect: true,
      // Fail fast instead of queueing while Redis is away: callers answer `unavailable`.
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      commandTimeout: 2000,
      connectTimeout: 2000,
      retryStrategy: (attempt) => Math.min(attempt * 100, 1000),
      enableAutoPipelining: true,
    };
    this.cmd = new Redis(config.redisUrl, { ...options, connectionName: `herald:${this.instanceId}` }) as Commands;
    this.sub = new Redis(config.redisUrl, {
      ...options,
      enableAutoPipelining: false,
      autoResubscribe: false, // recovery subscribes, after re-basing the replicas
      connectionName: `herald-sub:${this.instanceId}`,
    });
    for (const [name, numberOfKeys, script] of [
      ['heraldJoin', 4, lua.JOIN],
      ['heraldLeave', 4, lua.LEAVE],
      ['heraldReap', 4, lua.REAP],
      ['heraldRestore', 4, lua.RESTORE],
      ['heraldSnapshot', 2, lua.SNAPSHOT],
      ['heraldClaim', 1, lua.CLAIM],
      ['heraldReclaim', 1, lua.RECLAIM],
      ['heraldRelease', 1, lua.RELEASE],
    ] as const) {
      this.cmd.defineCommand(name, { numberOfKeys, lua: script });
    }
    this.reports = new RedisInstanceReports(this.cmd, {
      instances: this.instancesKey,
      reporters: `${this.prefix}:reporters`,
      alive: (id) => this.instKey(id, 'alive'),
      report: (id) => `${this.prefix}:{inst:${id}}:report`,
    });
  }

  // ---- keys ----

  private roomKeys(roomId: string): [string, string, string, string] {
    const base = `${this.prefix}:{room:${roomId}}`;
    return [`${base}:members`, `${base}:bcast`, `${base}:insts`, `${base}:ver`];
  }
  private peerKey(peerId: string): string {
    return `${this.prefix}:{peer:${peerId}}`;
  }
  private instKey(id: string, what: 'alive' | 'rooms' | 'peers'): string {
    return `${this.prefix}:{inst:${id}}:${what}`;
  }
  private get instancesKey(): string {
    return `${this.prefix}:instances`;
  }
  private channel(id: string): string {
    return `${this.prefix}:inst:${id}`;
  }

  // ---- lifecycle ----

  get healthy(): boolean {
    return this.registered && this.cmd.status === 'ready' && this.sub.status === 'ready';
  }

  async start(listener: ClusterListener): Promise<void> {
    this.listener = listener;
    this.sub.on('message', (_channel: string, text: string) => this.receive(text));
    for (const conn of [this.cmd, this.sub]) {
      conn.on('error', (err: Error) => this.log.debug({ err: err.message }, 'redis connection error'));
      conn.on('close', () => this.lost());
      conn.on('ready', () => void this.recover());
    }
    this.timer = setInterval(() => void this.tick(), TICK_MS);
    this.timer.unref();
    this.cmd.connect().catch(() => {});
    this.sub.connect().catch(() => {});
    const deadline = Date.now() + BOOT_WAIT_MS;
    while (!this.healthy && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    if (!this.healthy) {
      this.log.warn({ redis: redact(this.config.redisUrl!) }, 'redis is not reachable yet: starting not ready (/readyz 503) until it is');
    }
  }

  async stop(): Promise<void> {
    await Promise.allSettled([...this.inflight]);
    // Draining: peers told to reconnect elsewhere resume there, and their memberships move
    // with them. Give them a moment before removing whatever is left.
    const deadline = Date.now() + STOP_HANDOFF_MS;
    while (this.healthy && Date.now() < deadline && [...this.replicas.values()].some((r) => r.local > 0)) {
      await new Promise((r) => setTimeout(r, 50));
    }
    await Promise.allSettled([...this.inflight]);
    this.stopping = true;
    clearInterval(this.timer);
    for (const t of this.timers) clearTimeout(t);
    if (this.healthy) {
      try {
        // Leave cleanly: what the reaper would do for a dead instance, done now.
        await this.reapInstance(this.instanceId, 'closed');
        await this.cmd.del(this.instKey(this.instanceId, 'alive'));
        await this.cmd.srem(this.instancesKey, this.instanceId);
      } catch (err) {
        this.log.warn({ err }, 'could not deregister from redis');
      }
    }
    this.registered = false;
    this.cmd.disconnect();
    this.sub.disconnect();
    this.replicas.clear();
  }

  private lost(): void {
    if (this.stopping) return;
    if (this.registered) this.log.warn('redis connection lost: cross-instance delivery unavailable');
    this.registered = false;
  }

  // ---- membership ----

  async join(roomId: string, member: Member, maxPeers: number): Promise<Room> {
    this.requireHealthy();
    return (await this.admit(roomId, member, maxPeers, false)).room;
  }

  /** Admits a member; `moved`: a resumed member taking its place over, announced to no one. */
  private async admit(roomId: string, member: Member, maxPeers: number, moved: boolean): Promise<Replica> {
    const keys = this.roomKeys(roomId);
    const wantSnapshot = !this.replicas.has(roomId) && !this.loading.has(roomId);
    if (wantSnapshot) {
      this.startLoading(roomId);
      void this.cmd.sadd(this.instKey(this.instanceId, 'rooms'), roomId).catch(() => {});
    }
    const claim = this.claims.get(member.peerId)?.seq ?? 0;
    const stored: Stored = { ...member, c: claim };
    this.joining.set(roomId, (this.joining.get(roomId) ?? 0) + 1);
    let result: [number, string[], string, string[]];
    try {
      result = await this.track(
        this.cmd.heraldJoin(...keys, member.peerId, JSON.stringify(stored), member.role, this.instanceId, maxPeers, wantSnapshot ? '1' : '0', claim),
      );
    } catch (err) {
      if (wantSnapshot) this.abortLoading(roomId);
      this.unjoin(roomId);
      const mapped = this.mapError(err, roomId, maxPeers);
      // A newer claim of this peer id exists elsewhere and its `taken` notice is on the way:
      // act on it now, so the socket is closed as replaced (4000), not refused.
      if (mapped instanceof HeraldError && mapped.message === STALE) this.taken(member.peerId);
      throw mapped;
    }
    const [v, insts, prevJson, snapshot] = result;
    const prev = prevJson ? parseMember(prevJson) : undefined;
    // Tell the other instances first, so that what the local side does next (an offer to
    // the newcomer, say) reaches them after the notice.
    this.publishRoom(insts, prev, moved ? { t: 'j', r: roomId, v, m: member, mv: 1 } : { t: 'j', r: roomId, v, m: member });
    let replica: Replica | undefined;
    if (wantSnapshot) {
      replica = this.finishLoading(roomId, v, snapshot, moved ? undefined : member);
    } else {
      await this.loading.get(roomId)?.done;
      replica = this.replicas.get(roomId) ?? (await this.ensureReplica(roomId));
      this.applyJoin(replica, member, v, moved);
    }
    this.unjoin(roomId);
    return replica;
  }

  async leave(roomId: string, peerId: string, reason: LeaveReason): Promise<Member | undefined> {
    // Only an operator's kick removes a member held elsewhere; every other leave is this
    // instance letting go of its own peer, and must not remove a newer holder's membership.
    return this.removeMember(roomId, peerId, reason, reason === 'kicked' ? '' : this.instanceId);
  }

  private async removeMember(roomId: string, peerId: string, reason: LeaveReason, onlyInstance: string): Promise<Member | undefined> {
    const replica = this.replicas.get(roomId);
    if (!this.healthy) return this.leaveOffline(replica, peerId, reason);
    let result: [] | [number, string[], string];
    try {
      result = await this.track(this.cmd.heraldLeave(...this.roomKeys(roomId), peerId, onlyInstance));
    } catch (err) {
      if (!isUnavailable(err)) throw err;
      return this.leaveOffline(replica, peerId, reason);
    }
    if (result.length === 0) return undefined;
    const [v, insts, json] = result;
    const member = parseMember(json);
    this.publishRoom(insts, member, { t: 'l', r: roomId, v, ms: [member], why: reason });
    const current = this.replicas.get(roomId);
    if (current) this.applyLeave(current, member, v, reason);
    return member;
  }

  /**
   * Redis is away: a local member leaves the local replica now (its local room-mates hear
   * it); recovery later removes it from Redis and tells the other instances.
   */
  private leaveOffline(replica: Replica | undefined, peerId: string, reason: LeaveReason): Member | undefined {
    const member = replica?.room.get(peerId);
    if (!replica || !member) return undefined;
    if (member.instanceId !== this.instanceId) throw new HeraldError('unavailable', 'the cluster directory is unreachable');
    this.dirtyRooms.add(replica.room.id);
    replica.remove(peerId, replica.seen.get(peerId) ?? replica.base);
    this.listener.memberLeft(replica.room, member, reason);
    this.maybeDrop(replica);
    return member;
  }

  room(roomId: string): Room | undefined {
    return this.replicas.get(roomId)?.room;
  }

  localRoomCount(): number {
    return this.replicas.size;
  }

  // ---- delivery ----

  send(to: Member, event: PeerEvent): void {
    if (to.instanceId === this.instanceId) {
      const forward = this.forwarded.size > 0 ? this.forwarded.get(to.peerId) : undefined;
      if (!forward) {
        this.listener.deliver(to.peerId, event);
        return;
      }
      to = { ...to, instanceId: forward.to };
    }
    if (!this.healthy) {
      // A relay answers its sender `unavailable`. Other events (an `expired` notice, sent
      // from timers) have no one to answer, so they are dropped instead of thrown.
      if (event.type !== 'signal') return;
      throw new HeraldError('unavailable', `peer ${to.peerId} is on another instance and the cluster is unreachable`);
    }
    this.publish(to.instanceId, { t: 'd', p: to.peerId, e: withoutRaw(event) });
  }

  private publish(instanceId: string, wire: Wire): void {
    this.enqueue(instanceId, JSON.stringify(wire));
  }

  /**
   * Everything one tick sends to an instance goes out as one PUBLISH on its channel (a JSON
   * array when there is more than one wire), in order. Under relay load this turns hundreds
   * of PUBLISHes (and subscriber pushes) per tick into a few; a lone message is still exactly
   * one PUBLISH of itself.
   */
  private enqueue(instanceId: string, text: string): void {
    let queue = this.outbox.get(instanceId);
    if (!queue) {
      if (this.outbox.size === 0) process.nextTick(this.flushOutbox);
      this.outbox.set(instanceId, (queue = []));
    }
    queue.push(text);
  }

  private readonly flushOutbox = (): void => {
    for (const [instanceId, texts] of this.outbox) {
      const body = texts.length === 1 ? texts[0]! : `[${texts.join(',')}]`;
      this.cmd.publish(this.channel(instanceId), body).catch((err: unknown) => {
        this.log.warn({ err: String(err), to: instanceId, wires: texts.length }, 'cross-instance publish failed');
      });
    }
    this.outbox.clear();
  };

  /** One notice per instance holding members of the room, plus the previous holder of the member. */
  private publishRoom(insts: string[], previous: Member | undefined, wire: RoomWire): void {
    const text = JSON.stringify(wire);
    const targets = new Set(insts);
    if (previous) targets.add(previous.instanceId);
    targets.delete(this.instanceId);
    for (const id of targets) this.enqueue(id, text);
  }

  private receive(text: string): void {
    let parsed: Wire | Wire[];
    try {
      parsed = JSON.parse(text) as Wire | Wire[];
    } catch {
      return;
    }
    if (Array.isArray(parsed)) for (const wire of parsed) this.receiveWire(wire);
    else this.receiveWire(parsed);
  }

  private receiveWire(wire: Wire): void {
    switch (wire.t) {
      case 'd':
        this.receiveEvent(wire.p, wire.e);
        return;
      case 'k':
        if (wire.rid && wire.from) this.handOffTo(wire.from, wire.rid, wire.p, { resumeToken: wire.tok, identity: wire.idn });
        else this.taken(wire.p);
        return;
      case 'h':
        this.handoffWaits.get(wire.rid)?.(wire.h);
        return;
      default:
        this.receiveRoom(wire);
    }
  }

  private receiveRoom(wire: RoomWire): void {
    if (this.recoveryBuffer) {
      this.recoveryBuffer.push(wire);
      return;
    }
    const loading = this.loading.get(wire.r);
    if (loading) {
      loading.buffer.push(wire);
      return;
    }
    const replica = this.replicas.get(wire.r);
    if (!replica) return; // not ours (any more)
    this.applyWire(replica, wire);
  }

  private receiveEvent(peerId: string, event: PeerEvent): void {
    const held = this.handoffBuffers.get(peerId);
    if (held) {
      held.push(event);
      return;
    }
    const forward = this.forwarded.size > 0 ? this.forwarded.get(peerId) : undefined;
    if (forward) this.publish(forward.to, { t: 'd', p: peerId, e: event });
    else this.listener.deliver(peerId, event);
  }

  private applyWire(replica: Replica, wire: RoomWire): void {
    if (wire.t === 'j') this.applyJoin(replica, wire.m, wire.v, wire.mv === 1);
    else for (const m of wire.ms) this.applyLeave(replica, m, wire.v, wire.why);
  }

  private applyJoin(replica: Replica, member: Member, v: number, silent = false): void {
    if (!replica.fresh(member.peerId, v)) return;
    const prev = replica.put(member, v);
    // A re-announcement of what the replica already has (recovery) is not news, and neither
    // is a member moving with its resume to another instance.
    if (!silent && (!prev || !sameMember(prev, member))) this.listener.memberJoined(replica.room, member);
    this.maybeDrop(replica);
  }

  private applyLeave(replica: Replica, member: Member, v: number, reason: LeaveReason): void {
    if (!replica.fresh(member.peerId, v)) return;
    const gone = replica.remove(member.peerId, v);
    if (gone) this.listener.memberLeft(replica.room, gone, reason);
    this.maybeDrop(replica);
  }

  // ---- replicas ----

  private startLoading(roomId: string): Loading {
    let resolve!: () => void;
    const done = new Promise<void>((r) => (resolve = r));
    const loading = { buffer: [], done, resolve };
    this.loading.set(roomId, loading);
    return loading;
  }

  private abortLoading(roomId: string): void {
    this.loading.get(roomId)?.resolve();
    this.loading.delete(roomId);
  }

  /** Builds a replica from an atomic snapshot, then applies what arrived meanwhile. */
  private finishLoading(roomId: string, v: number, snapshot: string[], newcomer?: Member): Replica {
    const loading = this.loading.get(roomId);
    this.loading.delete(roomId);
    const replica = new Replica(roomId, this.instanceId);
    replica.base = v;
    for (const json of snapshot) replica.put(parseMember(json), v);
    this.replicas.set(roomId, replica);
    if (newcomer) this.listener.memberJoined(replica.room, newcomer);
    for (const wire of loading?.buffer ?? []) this.applyWire(replica, wire);
    loading?.resolve();
    return replica;
  }

  /** A join landed after this instance had dropped the room's replica: load it again. */
  private async ensureReplica(roomId: string): Promise<Replica> {
    const existing = this.replicas.get(roomId);
    if (existing) return existing;
    const pending = this.loading.get(roomId);
    if (pending) {
      await pending.done;
      return this.ensureReplica(roomId);
    }
    this.startLoading(roomId);
    void this.cmd.sadd(this.instKey(this.instanceId, 'rooms'), roomId).catch(() => {});
    try {
      const [members, , , ver] = this.roomKeys(roomId);
      const [v, snapshot] = await this.cmd.heraldSnapshot(members, ver);
      return this.finishLoading(roomId, Number(v), snapshot);
    } catch (err) {
      this.abortLoading(roomId);
      throw this.mapError(err, roomId, 0);
    }
  }

  private unjoin(roomId: string): void {
    const n = (this.joining.get(roomId) ?? 1) - 1;
    if (n > 0) this.joining.set(roomId, n);
    else this.joining.delete(roomId);
    const replica = this.replicas.get(roomId);
    if (replica) this.maybeDrop(replica);
  }

  /** Drops a replica once no member of it is held here and no join is on its way. */
  private maybeDrop(replica: Replica): void {
    const id = replica.room.id;
    if (replica.local > 0 || this.joining.has(id) || this.replicas.get(id) !== replica) return;
    this.replicas.delete(id);
    if (this.healthy) void this.cmd.srem(this.instKey(this.instanceId, 'rooms'), id).catch(() => {});
  }

  // ---- peers ----

  async claimPeer(peerId: string, resume?: ResumeClaim): Promise<Handoff | undefined> {
    this.requireHealthy();
    this.forwarded.delete(peerId);
    let old: string;
    let seq: number;
    try {
      [old, seq] = await this.track(this.cmd.heraldClaim(this.peerKey(peerId), this.instanceId, resume?.identity ?? ''));
    } catch (err) {
      throw this.mapError(err, '', 0);
    }
    if (old === '!') throw new HeraldError('conflict', `peer id ${peerId} belongs to another identity`);
    const held = this.claims.get(peerId);
    this.claims.set(peerId, { seq, holds: (held?.holds ?? 0) + 1, identity: resume?.identity ?? '' });
    this.pendingRelease.delete(peerId);
    void this.cmd.sadd(this.instKey(this.instanceId, 'peers'), peerId).catch(() => {});
    if (!old || old === this.instanceId) return undefined;
    if (!resume?.resumeToken) {
      this.publish(old, { t: 'k', p: peerId });
      return undefined;
    }
    return this.takeOver(old, peerId, resume);
  }

  /**
   * A resume landed here while `old` holds the peer: ask `old` to hand it over, move its
   * memberships here (silently), and return its rooms and queued events. Events for the
   * peer that arrive meanwhile are held and appended, so the order is kept.
   */
  private async takeOver(old: string, peerId: string, resume: ResumeClaim): Promise<Handoff | undefined> {
    const rid = randomUUID();
    const held: PeerEvent[] = [];
    this.handoffBuffers.set(peerId, held);
    let handed: Handoff | undefined;
    try {
      const wire = await new Promise<WireHandoff | null>((resolve) => {
        const timer = setTimeout(() => resolve(null), HANDOFF_WAIT_MS);
        this.handoffWaits.set(rid, (h) => {
          clearTimeout(timer);
          resolve(h);
        });
        this.publish(old, { t: 'k', p: peerId, rid, from: this.instanceId, tok: resume.resumeToken, idn: resume.identity });
      });
      if (!wire) return undefined;
      const rooms: [string, Role][] = [];
      for (const m of wire.members) {
        try {
          await this.admit(m.roomId, { ...m.member, instanceId: this.instanceId }, 0, true);
          rooms.push([m.roomId, m.member.role]);
        } catch (err) {
          this.log.warn({ err: String(err), peer: peerId, room: m.roomId }, 'resumed peer could not keep its room');
        }
      }
      handed = { rooms, queue: [...wire.queue, ...held] };
      return handed;
    } finally {
      this.handoffWaits.delete(rid);
      this.handoffBuffers.delete(peerId);
      if (!handed) for (const event of held) this.listener.deliver(peerId, event);
    }
  }

  /** Another instance resumes one of our peers: hand it over if its token matches. */
  private handOffTo(to: string, rid: string, peerId: string, claim: ResumeClaim): void {
    const given = this.listener.handOff(peerId, claim);
    if (!given) {
      this.publish(to, { t: 'h', rid, h: null });
      this.taken(peerId);
      return;
    }
    this.claims.delete(peerId);
    const members: { roomId: string; member: Member }[] = [];
    for (const [roomId] of given.rooms) {
      const member = this.replicas.get(roomId)?.room.get(peerId);
      if (member?.instanceId === this.instanceId) members.push({ roomId, member });
    }
    this.forwarded.set(peerId, { to, until: Date.now() + FORWARD_MS });
    this.publish(to, { t: 'h', rid, h: { rooms: given.rooms, queue: given.queue, members } });
    this.cleanUpAfter(peerId);
  }

  async releasePeer(peerId: string): Promise<void> {
    const held = this.claims.get(peerId);
    if (!held) return;
    // A newer connect of the same id claimed it again meanwhile: keep the binding.
    if (--held.holds > 0) return;
    this.claims.delete(peerId);
    if (!this.healthy) {
      this.pendingRelease.add(peerId);
      return;
    }
    try {
      await this.track(this.cmd.heraldRelease(this.peerKey(peerId), this.instanceId));
      await this.cmd.srem(this.instKey(this.instanceId, 'peers'), peerId);
    } catch {
      this.pendingRelease.add(peerId);
    }
  }

  /**
   * Another instance claimed one of our peers (a reconnect landed there): close ours, and
   * give the new holder a moment to re-join the rooms before ours are let go.
   */
  private taken(peerId: string): void {
    this.claims.delete(peerId);
    this.listener.peerTaken(peerId);
    this.cleanUpAfter(peerId);
  }

  /** Lets go of memberships a peer that left this instance still has here, after a grace. */
  private cleanUpAfter(peerId: string): void {
    const rooms = [...this.replicas.values()].filter((r) => r.room.get(peerId)?.instanceId === this.instanceId).map((r) => r.room.id);
    if (rooms.length === 0) return;
    this.later(TAKEOVER_GRACE_MS, async () => {
      for (const roomId of rooms) {
        if (this.replicas.get(roomId)?.room.get(peerId)?.instanceId !== this.instanceId) continue;
        await this.removeMember(roomId, peerId, 'closed', this.instanceId).catch(() => {});
      }
    });
  }

  // ---- liveness, reaping, recovery ----

  private async tick(): Promise<void> {
    if (this.stopping) return;
    this.pruneTombstones();
    const now = Date.now();
    for (const [peerId, f] of this.forwarded) if (f.until < now) this.forwarded.delete(peerId);
    if (this.cmd.status !== 'ready' || this.sub.status !== 'ready') return;
    if (!this.registered) {
      void this.recover();
      return;
    }
    try {
      const refreshed = await this.cmd.set(this.instKey(this.instanceId, 'alive'), '1', 'PX', ALIVE_TTL_MS, 'XX');
      if (refreshed === null) {
        // Our key was gone: Redis lost its data, or we were presumed dead. Register again.
        this.log.warn('liveness key was missing: re-registering');
        this.registered = false;
        void this.recover();
        return;
      }
      const ids = await this.cmd.smembers(this.instancesKey);
      const others = ids.filter((id) => id !== this.instanceId);
      const alive = await Promise.all(others.map((id) => this.cmd.exists(this.instKey(id, 'alive'))));
      for (let i = 0; i < others.length; i++) {
        if (alive[i] === 0) await this.reapDead(others[i]!);
      }
    } catch (err) {
      this.log.debug({ err: String(err) }, 'liveness tick failed');
    }
  }

  private async reapDead(dead: string): Promise<void> {
    const won = await this.cmd.set(`${this.prefix}:reap:{inst:${dead}}`, this.instanceId, 'PX', REAP_LOCK_MS, 'NX');
    if (won === null) return; // another survivor has it
    const started = Date.now();
    const removed = await this.reapInstance(dead, 'instance-lost');
    await this.cmd.srem(this.instancesKey, dead);
    this.log.warn({ instance: dead, members: removed, ms: Date.now() - started }, 'reaped a dead instance');
  }

  /** Removes every member and peer binding `dead` holds, telling the rooms. */
  private async reapInstance(dead: string, reason: LeaveReason): Promise<number> {
    let count = 0;
    const rooms = await this.cmd.smembers(this.instKey(dead, 'rooms'));
    if (dead === this.instanceId) for (const id of this.replicas.keys()) if (!rooms.includes(id)) rooms.push(id);
    for (const roomId of rooms) {
      const out = await this.cmd.heraldReap(...this.roomKeys(roomId), dead);
      if (out.length === 0) continue;
      const v = out[0] as number;
      const insts = out[1] as string[];
      const ms = (out.slice(2) as string[]).map(parseMember);
      count += ms.length;
      this.publishRoom(insts, undefined, { t: 'l', r: roomId, v, ms, why: reason });
      const replica = this.replicas.get(roomId);
      if (replica && dead !== this.instanceId) for (const m of ms) this.applyLeave(replica, m, v, reason);
    }
    const peers = await this.cmd.smembers(this.instKey(dead, 'peers'));
    await Promise.all(peers.map((p) => this.cmd.heraldRelease(this.peerKey(p), dead)));
    await this.cmd.del(this.instKey(dead, 'rooms'), this.instKey(dead, 'peers'));
    return count;
  }

  /**
   * (Re-)registers this instance: liveness key, peer bindings, and the members it holds in
   * each room, then re-bases every replica on an atomic snapshot. Runs at start, whenever
   * a Redis connection comes back, and when our liveness key went missing. Clients notice
   * nothing: a member other instances already had is not announced again.
   */
  private recover(): Promise<void> {
    if (this.stopping || this.cmd.status !== 'ready' || this.sub.status !== 'ready' || this.registered) return Promise.resolve();
    this.recovering ??= this.doRecover().then(
      () => {
        this.recovering = undefined;
      },
      (err: unknown) => {
        this.recovering = undefined;
        this.recoveryBuffer = undefined;
        this.log.warn({ err: String(err) }, 'redis registration failed; retrying');
      },
    );
    return this.recovering;
  }

  private async doRecover(): Promise<void> {
    const me = this.instanceId;
    const cmd = this.cmd;
    this.recoveryBuffer = [];
    await cmd.set(this.instKey(me, 'alive'), '1', 'PX', ALIVE_TTL_MS);
    await cmd.sadd(this.instancesKey, me);
    // Subscribing here (not automatically) makes room notices wait in recoveryBuffer until
    // the replicas are re-based below.
    await this.sub.subscribe(this.channel(me));

    for (const peerId of this.pendingRelease) {
      await cmd.heraldRelease(this.peerKey(peerId), me);
      await cmd.srem(this.instKey(me, 'peers'), peerId);
    }
    this.pendingRelease.clear();
    const lostPeers: string[] = [];
    for (const [peerId, claim] of this.claims) {
      const other = await cmd.heraldReclaim(this.peerKey(peerId), me, claim.seq, claim.identity);
      if (other) lostPeers.push(peerId);
      else await cmd.sadd(this.instKey(me, 'peers'), peerId);
    }

    this.dirtyRooms.clear();
    const rooms = new Set([...this.replicas.keys(), ...(await cmd.smembers(this.instKey(me, 'rooms')))]);
    for (const roomId of rooms) await this.restoreRoom(roomId);
    for (const peerId of lostPeers) this.taken(peerId);

    this.registered = true;
    const buffered = this.recoveryBuffer;
    this.recoveryBuffer = undefined;
    for (const wire of buffered) this.receiveRoom(wire);
    // Local members that left while this ran: write those rooms again.
    for (const roomId of this.dirtyRooms) await this.restoreRoom(roomId, false);
    this.dirtyRooms.clear();
    this.log.info({ rooms: rooms.size, peers: this.claims.size }, 'registered with redis');
    // Members that other instances have not re-registered yet stay until they have had the
    // time to; then whatever is still absent from Redis is gone.
    const recheck = [...this.replicas.keys()];
    if (recheck.length) this.later(RESETTLE_MS, () => this.resettle(recheck));
  }

  /** Writes back this instance's members of one room and re-bases its replica on Redis. */
  private async restoreRoom(roomId: string, restart = true): Promise<void> {
    const me = this.instanceId;
    const replica = this.replicas.get(roomId);
    const mine = replica ? replica.room.members().filter((m) => m.instanceId === me) : [];
    const args = mine.map((m) => JSON.stringify({ ...m, c: this.claims.get(m.peerId)?.seq ?? 0 }));
    const [v, insts, added, removed, lost, snapshot] = await this.cmd.heraldRestore(...this.roomKeys(roomId), me, ...args);
    for (const json of added) this.publishRoom(insts, undefined, { t: 'j', r: roomId, v, m: parseMember(json) });
    if (removed.length) this.publishRoom(insts, undefined, { t: 'l', r: roomId, v, ms: removed.map(parseMember), why: 'closed' });
    if (!replica || this.replicas.get(roomId) !== replica) {
      if (mine.length === 0) await this.cmd.srem(this.instKey(me, 'rooms'), roomId);
      return;
    }
    await this.cmd.sadd(this.instKey(me, 'rooms'), roomId);
    // Ours no longer: held elsewhere now, or another broadcaster took the slot meanwhile.
    for (const json of lost) {
      const m = parseMember(json);
      if (replica.room.get(m.peerId)?.instanceId !== me) continue;
      replica.remove(m.peerId, 0);
      this.listener.memberLeft(replica.room, m, 'kicked');
    }
    this.rebase(replica, v, snapshot.map(parseMember), { removeMissing: false, restart });
  }

  private async resettle(roomIds: string[]): Promise<void> {
    if (!this.healthy) return;
    for (const roomId of roomIds) {
      const replica = this.replicas.get(roomId);
      if (!replica) continue;
      const [members, , , ver] = this.roomKeys(roomId);
      const [v, snapshot] = await this.cmd.heraldSnapshot(members, ver);
      if (this.replicas.get(roomId) === replica) this.rebase(replica, Number(v), snapshot.map(parseMember), { removeMissing: true, restart: false });
    }
  }

  /**
   * Merges an atomic snapshot at version `v` into a replica. Members the replica has seen
   * a newer change of are kept; the others take the snapshot's state, announced only if it
   * is news. With `removeMissing`, remote members absent from the snapshot are gone. With
   * `restart`, versions start over (Redis may have restarted empty; room notices were held
   * back meanwhile, so nothing newer has been applied).
   */
  private rebase(replica: Replica, v: number, snapshot: Member[], opts: { removeMissing: boolean; restart: boolean }): void {
    if (opts.restart) replica.reset(0);
    const newer = (peerId: string) => (replica.seen.get(peerId) ?? replica.gone.get(peerId)?.v ?? 0) > v;
    const inSnapshot = new Set<string>();
    for (const m of snapshot) {
      inSnapshot.add(m.peerId);
      if (newer(m.peerId)) continue;
      const current = replica.room.get(m.peerId);
      replica.put(m, v);
      if (!current || !sameMember(current, m)) this.listener.memberJoined(replica.room, m);
    }
    if (opts.removeMissing) {
      for (const m of replica.room.members()) {
        if (m.instanceId === this.instanceId || inSnapshot.has(m.peerId) || newer(m.peerId)) continue;
        replica.remove(m.peerId, v);
        this.listener.memberLeft(replica.room, m, 'instance-lost');
      }
    }
    replica.base = Math.max(replica.base, v);
    this.maybeDrop(replica);
  }

  // ---- admin ----

  async listRooms(): Promise<RoomSummary[]> {
    this.requireHealthy();
    const match = `${this.prefix}:{room:*}:members`;
    const head = `${this.prefix}:{room:`;
    const ids = new Set<string>();
    let cursor = '0';
    do {
      const [next, keys] = await this.cmd.scan(cursor, 'MATCH', match, 'COUNT', 500);
      cursor = next;
      for (const key of keys) ids.add(key.slice(head.length, -'}:members'.length));
    } while (cursor !== '0');
    const rooms: RoomSummary[] = [];
    for (const id of ids) {
      const [members, bcast] = this.roomKeys(id);
      const [size, broadcaster] = await Promise.all([this.cmd.hlen(members), this.cmd.get(bcast)]);
      if (size > 0) rooms.push({ id, members: size, broadcaster });
    }
    return rooms.sort((a, b) => a.id.localeCompare(b.id));
  }

  async roomMembers(roomId: string): Promise<Member[] | undefined> {
    this.requireHealthy();
    const all = await this.cmd.hvals(this.roomKeys(roomId)[0]);
    return all.length ? all.map(parseMember) : undefined;
  }

  async reportInstance(report: object): Promise<void> {
    this.requireHealthy();
    await this.reports.publish(this.instanceId, report);
  }

  async instances(): Promise<InstanceStatus[]> {
    this.requireHealthy();
    return this.reports.list();
  }

  // ---- helpers ----

  private requireHealthy(): void {
    if (!this.healthy) throw new HeraldError('unavailable', 'the cluster directory (redis) is unreachable');
  }

  private mapError(err: unknown, roomId: string, maxPeers: number): Error {
    // Redis prefixes a script's error_reply with ERR.
    const message = (err instanceof Error ? err.message : String(err)).replace(/^ERR /, '');
    if (message === 'conflict') return new HeraldError('conflict', `room ${roomId} already has a broadcaster`);
    if (message.startsWith('room-full')) return new HeraldError('room-full', `room ${roomId} is full (${maxPeers} members)`);
    if (message === 'stale') return new HeraldError('conflict', STALE);
    if (isUnavailable(err)) return new HeraldError('unavailable', 'the cluster directory (redis) is unreachable');
    return err instanceof Error ? err : new Error(message);
  }

  private track<T>(work: Promise<T>): Promise<T> {
    this.inflight.add(work);
    const done = () => this.inflight.delete(work);
    work.then(done, done);
    return work;
  }

  private later(ms: number, work: () => Promise<void>): void {
    const timer = setTimeout(() => {
      this.timers.delete(timer);
      void work().catch((err: unknown) => this.log.debug({ err: String(err) }, 'deferred cluster work failed'));
    }, ms);
    timer.unref();
    this.timers.add(timer);
  }

  private pruneTombstones(): void {
    const cutoff = Date.now() - TOMBSTONE_MS;
    for (const replica of this.replicas.values()) {
      for (const [peerId, t] of replica.gone) if (t.at < cutoff) replica.gone.delete(peerId);
    }
  }
}

/** Errors that mean "Redis is not there right now" rather than a script's answer. */
function isUnavailable(err: unknown): boolean {
  if (err instanceof HeraldError) return err.code === 'unavailable';
  const text = err instanceof Error ? `${err.name} ${err.message}` : String(err);
  return /offline|enableOfflineQueue|Connection is closed|MaxRetriesPerRequest|timed out|ECONNREFUSED|ECONNRESET|EPIPE|not writeable|Stream isn't/i.test(text);
}

function redact(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return 'redis';
  }
}
