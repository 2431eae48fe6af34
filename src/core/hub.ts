import { randomBytes } from 'node:crypto';
import type { Cluster, ClusterListener, Handoff, ResumeClaim } from '../cluster/cluster.js';
import { HeraldError } from './errors.js';
import { allows, checkGrant, type Grant } from './grant.js';
import { Presence } from './presence.js';
import type { Room } from './room.js';
import { maySignal, type LeaveReason, type Member, type Payload, type PeerEvent, type Protocol, type Role, type Session } from './types.js';

export interface HubOptions {
  /** 0 = no cap. */
  maxPeersPerRoom: number;
  /** 0 = no cap. */
  maxRoomsPerPeer: number;
  /** How long a dropped resumable peer keeps its rooms. */
  resumeGraceMs: number;
  /** How many events wait for a detached peer before senders are told `expired`. */
  resumeQueueMax: number;
  /** At most one `counts` update per room per this many ms (0 = never send counts). */
  countsIntervalMs?: number;
}

/** Hooks the observability layer listens to; the core itself does no I/O. */
export interface HubObserver {
  joined?(member: Member): void;
  left?(member: Member, reason: LeaveReason): void;
  relayed?(payload: Payload, seconds: number): void;
}

interface Detached {
  timer: NodeJS.Timeout;
  /** Everything addressed to the peer while away, in order. */
  queue: PeerEvent[];
  /** Signals in `queue`, capped at `resumeQueueMax` (past it, senders are told `expired`). */
  signals: number;
  /** Membership notices in `queue`, capped at `resumeQueueMax` too (past it, the resume is given up). */
  notices: number;
  /** Senders (room + id) already told `expired`: each is told once. */
  told: Set<string>;
}

/** One peer id held by this instance: connected (session) or waiting to resume (detached). */
interface PeerState {
  readonly id: string;
  /** Token identity (`sub`); undefined in open mode. */
  readonly identity: string | undefined;
  /** The grant in force: that of the token the current session came with. */
  grant: Grant | undefined;
  protocol: Protocol;
  session: Session | undefined;
  detached: Detached | undefined;
  /** Rooms this peer is in, and its role in each. */
  readonly rooms: Map<string, Role>;
  readonly resumeToken: string;
}

export interface Connected {
  peerId: string;
  resumeToken: string;
  /** Rooms kept from before (resume or replace-on-reconnect). */
  rooms: Map<string, Role>;
  /** True when another instance handed this peer over (a resume across instances). */
  resumed?: boolean;
}

/**
 * The core: peers, rooms and the rules between them (join, leave, who may signal whom,
 * resume). Sessions come in from protocol adapters; rooms and delivery go out through the
 * cluster, and membership changes come back from the cluster on every instance involved,
 * so each instance tells only its own peers.
 */
export class Hub implements ClusterListener {
  private readonly peers = new Map<string, PeerState>();
  private readonly byResumeToken = new Map<string, PeerState>();
  private readonly presence: Presence | undefined;

  constructor(
    readonly cluster: Cluster,
    readonly options: HubOptions,
    private readonly observer: HubObserver = {},
  ) {
    if (options.countsIntervalMs) this.presence = new Presence(options.countsIntervalMs, (id) => this.sendCounts(id));
  }

  get instanceId(): string {
    return this.cluster.instanceId;
  }

  get peerCount(): number {
    return this.peers.size;
  }

  /** How many rooms peer `peerId` is in (0 when unknown). */
  roomsHeld(peerId: string): number {
    return this.peers.get(peerId)?.rooms.size ?? 0;
  }

  /** Rooms this instance holds members of. */
  get roomCount(): number {
    return this.cluster.localRoomCount();
  }

  /**
   * Binds `peerId` to a new session. A peer id already held here is taken over
   * (replace-on-reconnect): its old session is closed with 4000 and its rooms carry over.
   * Another identity may never take a held id.
   */
  async connect(peerId: string, session: Session, grant?: Grant, resumeToken?: string): Promise<Connected> {
    const identity = grant?.sub;
    const existing = this.peers.get(peerId);
    if (existing) {
      if (existing.identity !== identity) {
        throw new HeraldError('conflict', `peer id ${peerId} belongs to another identity`);
      }
      this.expireQueue(existing);
      this.attach(existing, session);
      this.regrant(existing, grant);
      return { peerId, resumeToken: existing.resumeToken, rooms: existing.rooms };
    }
    const state: PeerState = {
      id: peerId,
      identity,
      grant,
      protocol: session.protocol,
      session,
      detached: undefined,
      rooms: new Map(),
      resumeToken: randomBytes(18).toString('base64url'),
    };
    this.peers.set(peerId, state);
    this.byResumeToken.set(state.resumeToken, state);
    // With a resume token the peer may be resuming from another instance, which then hands
    // over its rooms (moved here already) and the events that waited for it. The claim also
    // refuses an id that another identity holds on another instance (conflict).
    let handoff;
    try {
      handoff = await this.cluster.claimPeer(peerId, { resumeToken, identity });
    } catch (err) {
      if (this.peers.get(peerId) === state) this.unregister(state);
      throw err;
    }
    if (!handoff) return { peerId, resumeToken: state.resumeToken, rooms: state.rooms };
    for (const [room, role] of handoff.rooms) state.rooms.set(room, role);
    if (this.peers.get(peerId) === state) for (const event of handoff.queue) this.deliver(peerId, event);
    this.regrant(state, grant);
    return { peerId, resumeToken: state.resumeToken, rooms: state.rooms, resumed: true };
  }

  /** Restores a peer from its resume token; queued events are delivered in order. */
  resume(resumeToken: string, session: Session, grant?: Grant): Connected | undefined {
    const state = this.byResumeToken.get(resumeToken);
    if (!state || state.identity !== grant?.sub) return undefined;
    const queued = state.detached?.queue ?? [];
    this.attach(state, session);
    for (const event of queued) session.deliver(event);
    this.regrant(state, grant);
    return { peerId: state.id, resumeToken, rooms: state.rooms };
  }

  /**
   * A session ended. A resumable peer with rooms waits `resumeGraceMs` for its resume
   * token; anything else leaves its rooms now. A session that was already replaced is ignored.
   */
  disconnect(peerId: string, session: Session, resumable: boolean, reason: LeaveReason = 'closed'): void {
    const state = this.peers.get(peerId);
    if (!state || state.session !== session) return;
    state.session = undefined;
    if (resumable && this.options.resumeGraceMs > 0 && state.rooms.size > 0) {
      const timer = setTimeout(() => this.graceExpired(state), this.options.resumeGraceMs);
      timer.unref();
      state.detached = { timer, queue: [], signals: 0, notices: 0, told: new Set() };
      return;
    }
    void this.forget(state, reason);
  }

  async join(peerId: string, roomId: string, role: Role): Promise<Room> {
    const state = this.requirePeer(peerId);
    checkGrant(state.grant, roomId, role);
    const current = state.rooms.get(roomId);
    if (current !== undefined && current !== role) {
      // Switching in place would tell no one that the old role left (a broadcaster turning
      // viewer would leave its viewers waiting on it): leave, then join again.
      throw new HeraldError('conflict', `already in room ${roomId} as ${current}; leave it first to change role`);
    }
    const { maxRoomsPerPeer, maxPeersPerRoom } = this.options;
    if (maxRoomsPerPeer > 0 && !state.rooms.has(roomId) && state.rooms.size >= maxRoomsPerPeer) {
      throw new HeraldError('forbidden', `a connection may join at most ${maxRoomsPerPeer} rooms`);
    }
    const member: Member = {
      peerId,
      role,
      protocol: state.protocol,
      instanceId: this.instanceId,
      identity: state.identity,
      joinedAt: Date.now(),
    };
    const room = await this.cluster.join(roomId, member, maxPeersPerRoom);
    if (this.peers.get(peerId) !== state) {
      // The peer went away while the join was in flight: undo it.
      await this.cluster.leave(roomId, peerId, 'closed');
      throw new HeraldError('not-found', `peer ${peerId} is gone`);
    }
    state.rooms.set(roomId, role);
    return room;
  }

  async leave(peerId: string, roomId: string, reason: LeaveReason = 'left'): Promise<boolean> {
    const state = this.peers.get(peerId);
    if (!state?.rooms.delete(roomId)) return false;
    await this.cluster.leave(roomId, peerId, reason);
    return true;
  }

  /** Removes a peer from a room on an operator's request; the peer is told. */
  async kick(roomId: string, peerId: string): Promise<boolean> {
    return (await this.cluster.leave(roomId, peerId, 'kicked')) !== undefined;
  }

  /** Relays `payload` from one member of a room to another, if the roles allow it. */
  signal(fromId: string, roomId: string, toId: string, payload: Payload): void {
    const { room, from } = this.membership(fromId, roomId);
    const to = room.get(toId);
    if (!to) throw new HeraldError('not-found', `peer ${toId} is not in room ${roomId}`);
    this.relay(room, from, to, payload);
  }

  /** Relays `payload` to the room's broadcaster (the seed reader's only destination). */
  signalBroadcaster(fromId: string, roomId: string, payload: Payload): void {
    const { room, from } = this.membership(fromId, roomId);
    const to = room.broadcaster;
    if (!to) throw new HeraldError('not-found', `room ${roomId} has no broadcaster`);
    this.relay(room, from, to, payload);
  }

  // ---- ClusterListener: what the cluster reports back, on every instance involved ----

  memberJoined(room: Room, member: Member): void {
    if (member.instanceId === this.instanceId) this.observer.joined?.(member);
    const event: PeerEvent = { type: 'peer-joined', room: room.id, member };
    for (const listener of room.listenersOf(member)) {
      if (listener.instanceId === this.instanceId) this.deliver(listener.peerId, event);
    }
    this.presence?.touch(room.id);
  }

  memberLeft(room: Room, member: Member, reason: LeaveReason): void {
    if (member.instanceId === this.instanceId) {
      this.observer.left?.(member, reason);
      // A leave this peer did not ask for (kick, instance takeover): tell it.
      const state = this.peers.get(member.peerId);
      if (state?.rooms.delete(room.id)) this.deliver(member.peerId, { type: 'removed', room: room.id, reason });
    }
    const event: PeerEvent = { type: 'peer-left', room: room.id, member, reason };
    for (const listener of room.listenersOf(member)) {
      if (listener.instanceId === this.instanceId) this.deliver(listener.peerId, event);
    }
    this.presence?.touch(room.id);
  }

  deliver(peerId: string, event: PeerEvent): void {
    const state = this.peers.get(peerId);
    if (!state) return;
    if (state.session) {
      state.session.deliver(event);
      return;
    }
    const detached = state.detached;
    if (!detached) return;
    // Membership notices are kept, so a resumed peer's view of its rooms is complete. They
    // are capped too: a view that needs more than `resumeQueueMax` of them is no longer worth
    // replaying, so the resume is given up (the peer leaves its rooms now; on return it says
    // hello afresh and joins again). Signals are capped: past the cap, senders are told.
    if (event.type !== 'signal') {
      if (detached.notices >= this.options.resumeQueueMax) {
        if (detached.notices++ > this.options.resumeQueueMax) return; // given up already
        clearTimeout(detached.timer);
        // Not inside this delivery: it may be one of a loop over the room's members.
        setImmediate(() => this.graceExpired(state));
        return;
      }
      detached.notices++;
      detached.queue.push(event);
    } else if (detached.signals < this.options.resumeQueueMax) {
      detached.signals++;
      detached.queue.push(event);
    } else this.bounceExpired(detached, event.room, event.from, peerId);
  }

  handOff(peerId: string, claim: ResumeClaim): Handoff | undefined {
    const state = this.peers.get(peerId);
    if (!state || claim.resumeToken === undefined || state.resumeToken !== claim.resumeToken || state.identity !== claim.identity) return undefined;
    const queue = state.detached?.queue ?? [];
    const rooms = [...state.rooms];
    this.unregister(state);
    state.session?.close(4000, 'replaced');
    return { rooms, queue };
  }

  peerTaken(peerId: string): void {
    const state = this.peers.get(peerId);
    if (!state) return;
    this.unregister(state);
    state.session?.close(4000, 'replaced');
  }

  /** Tells this instance's connected members of a room how many members it has now. */
  private sendCounts(roomId: string): void {
    const room = this.cluster.room(roomId);
    if (!room) return;
    const event: PeerEvent = { type: 'counts', room: roomId, counts: room.counts() };
    for (const member of room.members()) {
      if (member.instanceId === this.instanceId) this.peers.get(member.peerId)?.session?.deliver(event);
    }
  }

  /** Stops timers (server shutdown). */
  stop(): void {
    this.presence?.stop();
  }

  // ---- internals ----

  private relay(room: Room, from: Member, to: Member, payload: Payload): void {
    if (!maySignal(from.role, to.role)) {
      throw new HeraldError('forbidden', `a ${from.role} may not signal a ${to.role}`);
    }
    const started = performance.now();
    this.cluster.send(to, { type: 'signal', room: room.id, from: from.peerId, fromRole: from.role, payload });
    this.observer.relayed?.(payload, (performance.now() - started) / 1000);
  }

  private membership(peerId: string, roomId: string): { room: Room; from: Member } {
    const room = this.cluster.room(roomId);
    const from = room?.get(peerId);
    if (!room || !from) throw new HeraldError('forbidden', `not a member of room ${roomId}`);
    return { room, from };
  }

  private requirePeer(peerId: string): PeerState {
    const state = this.peers.get(peerId);
    if (!state) throw new HeraldError('not-found', `peer ${peerId} is not connected`);
    return state;
  }

  private attach(state: PeerState, session: Session): void {
    const previous = state.session;
    if (state.detached) clearTimeout(state.detached.timer);
    state.detached = undefined;
    state.session = session;
    state.protocol = session.protocol;
    if (previous && previous !== session) previous.close(4000, 'replaced');
  }

  /**
   * A session resumed or replaced with a new token: that token's grant is the one in force
   * from now on (it may be narrower than the one the peer started with). Rooms it no longer
   * allows are left, and the peer is told with `removed {reason: 'revoked'}`.
   */
  private regrant(state: PeerState, grant: Grant | undefined): void {
    state.grant = grant;
    if (!grant) return;
    for (const [roomId, role] of state.rooms) {
      if (allows(grant, roomId, role)) continue;
      state.rooms.delete(roomId); // first, so the cluster's echo of the leave tells no one twice
      this.cluster.leave(roomId, state.id, 'revoked').catch(() => undefined);
      this.deliver(state.id, { type: 'removed', room: roomId, reason: 'revoked' });
    }
  }

  /** Forgets a peer on this instance (its rooms are the caller's business). */
  private unregister(state: PeerState): void {
    this.peers.delete(state.id);
    this.byResumeToken.delete(state.resumeToken);
    if (state.detached) clearTimeout(state.detached.timer);
  }

  private graceExpired(state: PeerState): void {
    if (this.peers.get(state.id) !== state || state.session) return;
    this.expireQueue(state);
    void this.forget(state, 'timeout');
  }

  /** Tells the senders of queued signals that they will never be delivered. */
  private expireQueue(state: PeerState): void {
    const detached = state.detached;
    if (!detached) return;
    for (const event of detached.queue) {
      if (event.type === 'signal') this.bounceExpired(detached, event.room, event.from, state.id);
    }
    detached.queue.length = 0;
    detached.signals = 0;
    detached.notices = 0;
  }

  /** Sends `expired` to a sender once per absence of the recipient. */
  private bounceExpired(detached: Detached, roomId: string, senderId: string, to: string): void {
    const key = `${roomId}\n${senderId}`;
    if (detached.told.has(key)) return;
    detached.told.add(key);
    const sender = this.cluster.room(roomId)?.get(senderId);
    if (sender) this.cluster.send(sender, { type: 'expired', room: roomId, to });
  }

  private async forget(state: PeerState, reason: LeaveReason): Promise<void> {
    if (this.peers.get(state.id) !== state) return;
    this.unregister(state);
    const rooms = [...state.rooms.keys()];
    state.rooms.clear();
    // Best effort: a cluster that cannot be reached (Redis outage) must not turn a closed
    // socket into an unhandled rejection; the cluster reconciles when it is back.
    await Promise.allSettled(rooms.map((roomId) => this.cluster.leave(roomId, state.id, reason)));
    await this.cluster.releasePeer(state.id).catch(() => undefined);
  }
}
