import { randomBytes } from 'node:crypto';
import type { Cluster, ClusterListener, Handoff, Receipt, ResumeClaim } from './cluster.js';
import { DirectExpiry, type QueuedDirect } from './direct.js';
import { HeraldError } from './errors.js';
import { allows, checkGrant, type Grant } from './grant.js';
import { NO_ROOMS, PeerTable, type PeerState } from './peer-table.js';
import { Presence } from './presence.js';
import { ResumeQueue } from './resume-queue.js';
import type { Room } from './room.js';
import { maySignal, type LeaveReason, type Member, type Payload, type PeerEvent, type Role, type Session } from './types.js';

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
  /** How long a room-less (direct) message waits for a recipient that is not connected. */
  directTtlMs?: number;
  /** How many direct messages may wait for one recipient. */
  directQueueMax?: number;
}

/** Hooks the observability layer listens to; the core itself does no I/O. */
export interface HubObserver {
  joined?(member: Member): void;
  left?(member: Member, reason: LeaveReason): void;
  relayed?(payload: Payload, seconds: number): void;
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
  private readonly peers: PeerTable;
  private readonly waiting: ResumeQueue;
  private readonly presence: Presence | undefined;
  private readonly directExpiry: DirectExpiry;

  constructor(
    readonly cluster: Cluster,
    readonly options: HubOptions,
    private readonly observer: HubObserver = {},
  ) {
    this.peers = new PeerTable(options.resumeQueueMax);
    this.waiting = new ResumeQueue(options.resumeGraceMs, options.resumeQueueMax, {
      graceExpired: (state) => this.graceExpired(state),
      tellExpired: (roomId, senderId, to) => {
        const sender = this.cluster.room(roomId)?.get(senderId);
        if (sender) this.cluster.send(sender, { type: 'expired', room: roomId, to });
      },
    });
    if (options.countsIntervalMs) this.presence = new Presence(options.countsIntervalMs, (id) => this.sendCounts(id));
    this.directExpiry = new DirectExpiry(
      () => this.cluster.direct,
      options.directTtlMs ?? 5000,
      (from, to) => this.deliver(from, { type: 'direct-expired', to }),
    );
  }

  get instanceId(): string {
    return this.cluster.instanceId;
  }

  get peerCount(): number {
    return this.peers.size;
  }

  /** True when this instance holds `peerId`. */
  isHeld(peerId: string): boolean {
    return this.peers.has(peerId);
  }

  /** Ids of the peers this instance holds (operations; never on the message path). */
  peerIds(): IterableIterator<string> {
    return this.peers.ids();
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
   * Another identity may never take a held id. `direct` binds a room-less peer: its identity
   * is given (not the token's `sub`) and it has no resume token.
   */
  async connect(
    peerId: string,
    session: Session,
    grant?: Grant,
    resumeToken?: string,
    lastSeq?: number,
    direct?: { identity: string },
  ): Promise<Connected> {
    const identity = direct ? direct.identity : grant?.sub;
    const existing = this.peers.get(peerId);
    if (existing) {
      if (existing.identity !== identity) {
        throw new HeraldError('conflict', `peer id ${peerId} belongs to another identity`);
      }
      this.waiting.expire(existing);
      this.peers.attach(existing, session);
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
      rooms: direct ? NO_ROOMS : new Map(),
      // Room-less peers never resume: no token, no index entry (memory per idle peer).
      resumeToken: direct ? '' : randomBytes(18).toString('base64url'),
      seq: 0,
      unacked: [],
    };
    this.peers.add(state);
    // With a resume token the peer may be resuming from another instance, which then hands
    // over its rooms (moved here already) and the events that waited for it. The claim also
    // refuses an id that another identity holds on another instance (conflict).
    let handoff;
    try {
      // A seed peer (no resume token in that protocol) keeps its room binding wherever it reconnects.
      handoff = await this.cluster.claimPeer(peerId, { resumeToken, identity, carryRooms: session.protocol === 'seed' && resumeToken === undefined });
    } catch (err) {
      if (this.peers.get(peerId) === state) this.peers.remove(state);
      throw err;
    }
    if (!handoff) return { peerId, resumeToken: state.resumeToken, rooms: state.rooms };
    if (state.rooms !== NO_ROOMS) for (const [room, role] of handoff.rooms) state.rooms.set(room, role);
    if (this.peers.get(peerId) === state) {
      // The stream goes on where the previous instance left it: what it gave but never heard
      // acknowledged is replayed past the client's lastSeq, then what waited.
      state.seq = handoff.seq ?? 0;
      state.unacked = handoff.unacked ?? [];
      this.peers.replay(state, session, lastSeq);
      for (const event of handoff.queue) this.deliver(peerId, event);
    }
    this.regrant(state, grant);
    return { peerId, resumeToken: state.resumeToken, rooms: state.rooms, resumed: true };
  }

  /**
   * Restores a peer from its resume token. Events given to the old session that the client
   * did not receive (past `lastSeq`) are given again with their numbers, then the events
   * queued while it was away, in order: nothing lost, nothing twice.
   */
  resume(resumeToken: string, session: Session, grant?: Grant, lastSeq?: number): Connected | undefined {
    const state = this.peers.byToken(resumeToken);
    if (!state || state.identity !== grant?.sub) return undefined;
    const queued = state.detached?.queue ?? [];
    this.peers.attach(state, session);
    this.peers.replay(state, session, lastSeq);
    for (const event of queued) this.peers.give(state, session, event);
    this.regrant(state, grant);
    return { peerId: state.id, resumeToken, rooms: state.rooms };
  }

  /**
   * The client received everything up to `seq`: forget it. False when `seq` was never given
   * (an acknowledgement from the future is a client bug, answered as a bad request).
   */
  ack(peerId: string, seq: number): boolean {
    const state = this.peers.get(peerId);
    return state !== undefined && this.peers.ack(state, seq);
  }

  /**
   * A session ended. A resumable peer with rooms waits `resumeGraceMs` for its resume
   * token; anything else leaves its rooms now. A session that was already replaced is ignored.
   */
  disconnect(peerId: string, session: Session, resumable: boolean, reason: LeaveReason = 'closed'): void {
    const state = this.peers.get(peerId);
    if (!state || state.session !== session) return;
    state.session = undefined;
    if (resumable && this.waiting.detach(state)) return;
    void this.forget(state, reason);
  }

  async join(peerId: string, roomId: string, role: Role): Promise<Room> {
    const state = this.requirePeer(peerId);
    if (state.rooms === NO_ROOMS) throw new HeraldError('forbidden', 'a room-less peer joins no rooms');
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

  /**
   * Relays `payload` from one member of a room to another, if the roles allow it. With a
   * `receipt`, it is told once whether the signal arrived (Cluster.send).
   */
  signal(fromId: string, roomId: string, toId: string, payload: Payload, receipt?: Receipt): void {
    const { room, from } = this.membership(fromId, roomId);
    const to = room.get(toId);
    if (!to) throw new HeraldError('not-found', `peer ${toId} is not in room ${roomId}`);
    this.relay(room, from, to, payload, receipt);
  }

  /** Relays `payload` to the room's broadcaster (the seed reader's only destination). */
  signalBroadcaster(fromId: string, roomId: string, payload: Payload): void {
    const { room, from } = this.membership(fromId, roomId);
    const to = room.broadcaster;
    if (!to) throw new HeraldError('not-found', `room ${roomId} has no broadcaster`);
    this.relay(room, from, to, payload);
  }

  // ---- room-less (direct) addressing: core/direct.ts ----

  /**
   * Binds a room-less peer (O(1): no room, no presence) and returns, oldest first, the
   * direct messages that waited for it, wherever they were sent from.
   */
  async connectDirect(peerId: string, session: Session, identity: string, grant?: Grant): Promise<PeerEvent[]> {
    await this.connect(peerId, session, grant, undefined, undefined, { identity });
    // Best effort: the peer is connected either way, and a queue out of reach expires on its own.
    const waiting = await this.cluster.direct.collect(peerId).catch((): QueuedDirect[] => []);
    return waiting.map((q) => q.event);
  }

  /**
   * Sends `payload` to peer `toId` wherever it is connected, with no room between them. For
   * an id connected nowhere the message waits (`directTtlMs`); then the sender gets one
   * `direct-expired` per recipient, as it does when the cluster cannot take the message.
   * A message that must not `wait` is dropped silently when its recipient is not connected.
   */
  sendDirect(fromId: string, toId: string, payload: Payload, wait = true): void {
    const started = performance.now();
    const event: PeerEvent = { type: 'direct', from: fromId, payload };
    const local = this.peers.get(toId);
    if (local?.session) {
      local.session.deliver(event);
      this.observer.relayed?.(payload, (performance.now() - started) / 1000);
      return;
    }
    const at = Date.now();
    const bounce = () => wait && this.deliver(fromId, { type: 'direct-expired', to: toId });
    const max = wait ? (this.options.directQueueMax ?? 256) : 0;
    this.cluster.direct.post(toId, { from: fromId, at, event }, this.options.directTtlMs ?? 5000, max).then((outcome) => {
      if (outcome === 'queued') this.directExpiry.queued(fromId, toId, at);
      else if (outcome === 'sent') this.observer.relayed?.(payload, (performance.now() - started) / 1000);
      // A full queue: the sender hears once, now or when its waiting messages expire.
      else if (!this.directExpiry.waiting(fromId, toId)) bounce();
      // The cluster could not take it (Redis away): the sender hears at once, once per pair.
    }, () => wait && this.directExpiry.refusedNow(fromId, toId) && bounce());
  }

  // ---- fan-out to a whole room: core/fanout.ts ----

  /**
   * Binds a peer whose id the server made up and nobody addresses (y-webrtc): no claim in
   * the cluster's peer directory (no Redis round trip), no resume token, rooms allowed.
   */
  connectAnonymous(peerId: string, session: Session, grant?: Grant): void {
    if (this.peers.has(peerId)) throw new HeraldError('conflict', `peer id ${peerId} is taken`);
    this.peers.add({
      id: peerId,
      identity: grant?.sub,
      grant,
      protocol: session.protocol,
      session,
      detached: undefined,
      rooms: new Map(),
      resumeToken: '',
      seq: 0,
      unacked: [],
    });
  }

  /** True when `peerId` is in room `roomId` on this instance. */
  isMember(peerId: string, roomId: string): boolean {
    return this.peers.get(peerId)?.rooms.has(roomId) ?? false;
  }

  /**
   * Publishes to every member of a room, the sender included (y-webrtc's publish):
   * `render(members)` makes the payload from the room's member count, once for all
   * recipients. The sender must be a member. False when it is not (nothing is sent).
   */
  publish(fromId: string, roomId: string, render: (members: number) => Payload): boolean {
    const room = this.cluster.room(roomId);
    if (!room || !this.peers.get(fromId)?.rooms.has(roomId)) return false;
    const started = performance.now();
    const payload = render(room.size);
    this.cluster.fanout(room, { type: 'fanout', room: roomId, from: fromId, payload });
    this.observer.relayed?.(payload, (performance.now() - started) / 1000);
    return true;
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
    if (state.session) this.peers.give(state, state.session, event);
    else if (state.detached) this.waiting.hold(state, state.detached, event);
  }

  handOff(peerId: string, claim: ResumeClaim): Handoff | undefined {
    const state = this.peers.get(peerId);
    if (!state || state.identity !== claim.identity) return undefined;
    const byToken = claim.resumeToken !== undefined && state.resumeToken === claim.resumeToken;
    const seedReconnect = claim.carryRooms === true && state.protocol === 'seed';
    if (!byToken && !seedReconnect) return undefined;
    const queue = state.detached?.queue ?? [];
    const rooms = [...state.rooms];
    this.peers.remove(state);
    state.session?.close(4000, 'replaced');
    return { rooms, queue, unacked: state.unacked, seq: state.seq };
  }

  peerTaken(peerId: string): void {
    const state = this.peers.get(peerId);
    if (!state) return;
    this.peers.remove(state);
    state.session?.close(4000, 'replaced');
  }

  /** Tells this instance's connected members of a room how many members it has now. */
  private sendCounts(roomId: string): void {
    const room = this.cluster.room(roomId);
    if (!room) return;
    const event: PeerEvent = { type: 'counts', room: roomId, counts: room.counts() };
    for (const member of room.members()) {
      if (member.instanceId !== this.instanceId) continue;
      const state = this.peers.get(member.peerId);
      if (state?.session) this.peers.give(state, state.session, event);
    }
  }

  /** Stops timers (server shutdown). */
  stop(): void {
    this.presence?.stop();
    this.directExpiry.stop();
  }

  // ---- internals ----

  private relay(room: Room, from: Member, to: Member, payload: Payload, receipt?: Receipt): void {
    if (!maySignal(from.role, to.role)) {
      throw new HeraldError('forbidden', `a ${from.role} may not signal a ${to.role}`);
    }
    const started = performance.now();
    this.cluster.send(to, { type: 'signal', room: room.id, from: from.peerId, fromRole: from.role, payload }, receipt);
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

  private graceExpired(state: PeerState): void {
    if (this.peers.get(state.id) !== state || state.session) return;
    this.waiting.expire(state);
    void this.forget(state, 'timeout');
  }

  private async forget(state: PeerState, reason: LeaveReason): Promise<void> {
    if (this.peers.get(state.id) !== state) return;
    this.peers.remove(state);
    const rooms = [...state.rooms.keys()];
    state.rooms.clear();
    // Best effort: a cluster that cannot be reached (Redis outage) must not turn a closed
    // socket into an unhandled rejection; the cluster reconciles when it is back.
    await Promise.allSettled(rooms.map((roomId) => this.cluster.leave(roomId, state.id, reason)));
    await this.cluster.releasePeer(state.id).catch(() => undefined);
  }
}
