import type { DirectMail } from './direct.js';
import type { HeraldError } from './errors.js';
import type { Room } from './room.js';
import type { FanoutEvent, LeaveReason, Member, PeerEvent, Role, Sequenced } from './types.js';

/** A peer's state handed from the instance that held it to the one it resumed on. */
export interface Handoff {
  /** Its rooms and roles; its memberships move with it (no one hears it leave or join). */
  rooms: [string, Role][];
  /** Events that waited for it, in order. */
  queue: PeerEvent[];
  /** Events given to it but not acknowledged yet (they may be lost in a dead socket), in order. */
  unacked?: Sequenced[];
  /** The last sequence number it was given. */
  seq?: number;
}

/**
 * Told once whether one sent event arrived: without an error when it was delivered to its
 * peer (or queued for it), with `unavailable` when it could not be. A JSON `signal` with an
 * `id` answers its `ack` or `error` from this.
 */
export type Receipt = (err?: HeraldError) => void;

/** What a reconnecting peer presents so that another instance may hand its state over. */
export interface ResumeClaim {
  /** Absent for a plain connect: then only the identity is checked (never another's id). */
  resumeToken?: string;
  identity: string | undefined;
  /**
   * A seed reconnect (the seed protocol has no resume token): the previous holder hands the
   * peer's rooms over if the identity matches, as a reconnect on the same instance keeps them.
   */
  carryRooms?: boolean;
}

/** What a cluster tells the core of this instance. */
export interface ClusterListener {
  /** `member` joined `room`; called on every instance that holds members of the room. */
  memberJoined(room: Room, member: Member): void;
  /** `member` left `room`; called on every instance that holds members of the room. */
  memberLeft(room: Room, member: Member, reason: LeaveReason): void;
  /** An event for a peer that lives on this instance. */
  deliver(peerId: string, event: PeerEvent): void;
  /** Another instance took over a peer of ours (reconnect or resume elsewhere). */
  peerTaken(peerId: string): void;
  /**
   * Another instance resumes `peerId`: if the claim matches (token and identity), give up
   * the peer here without leaving its rooms and return its state; otherwise undefined.
   */
  handOff(peerId: string, claim: ResumeClaim): Handoff | undefined;
}

export interface RoomSummary {
  id: string;
  members: number;
  broadcaster: string | null;
  /** Set when the room's part of the directory cannot be reached now (counts are this instance's view). */
  unavailable?: true;
}

/** The peers one other instance holds, from the peer directory. */
export interface PeerHolding {
  instance: string;
  peers: string[];
  /** Set when that instance's part of the directory cannot be read now (`peers` is empty). */
  unavailable?: true;
}

/** An instance of the service as the operators' console sees it (GET /api/instances). */
export interface InstanceStatus {
  id: string;
  /** Its liveness is current (memory: always true). */
  up: boolean;
  /** What it last stored with reportInstance() (opaque JSON), or null when none is left. */
  report: unknown;
}

/**
 * Where peers live and how a message reaches them. The server never asks which
 * implementation it has: `memory` for one process, `redis` for many (one Redis or a Redis
 * Cluster). The core owns this interface; implementations live in src/cluster/.
 *
 * Contract (what the core relies on; every implementation keeps it):
 *
 * Atomicity
 * - `join` is the only admission decision: one broadcaster per room and the `maxPeers` cap
 *   are checked and applied as one step, cluster-wide. Two instances racing never both win.
 * - `claimPeer` binds a peer id to one instance; the newest claim wins and an older holder is
 *   told through `ClusterListener.peerTaken` (or `handOff` for a resume). Another identity
 *   never takes a held id (`conflict`).
 * - `leave` removes only what this instance holds, except an operator's `kicked`.
 *
 * Ordering
 * - `send` from one instance to one member keeps the order of calls (same instance: in-process
 *   and synchronous; another instance: one ordered channel per instance pair and room), and
 *   delivers each event once or tells its sender (see `send`).
 * - A member's join is reported (`memberJoined`) on every instance holding members of the
 *   room before any `send` issued after `join` resolved reaches those instances.
 * - `fanout` of one room from one instance keeps the order of calls on every instance, and
 *   keeps its order with `send`s to members of that room from the same instance (they share
 *   the one ordered channel per instance pair and room). It reaches every member held when it
 *   arrives on the member's instance exactly once, and crosses to each other instance holding
 *   members once, not once per member. A member whose join was reported on an instance before
 *   the fan-out arrived there receives it; one that joins later does not.
 * - Changes to one member of one room are applied in the room's own order everywhere: a late
 *   or duplicated notice never undoes a newer one. No order holds across rooms.
 *
 * Availability
 * - `healthy` is false only when nothing cluster-wide works (drives /readyz). A partial
 *   outage (one Redis Cluster master) keeps it true and makes only the affected rooms answer
 *   `unavailable`.
 * - `room()` and `send()` never wait on the network: they read this instance's replica.
 */
export interface Cluster {
  readonly instanceId: string;
  /** False while the cluster cannot reach its backing store (drives /readyz). */
  readonly healthy: boolean;

  start(listener: ClusterListener): Promise<void>;
  stop(): Promise<void>;

  /** Admits `member` atomically (one broadcaster, `maxPeers` cap) and returns the room. */
  join(roomId: string, member: Member, maxPeers: number): Promise<Room>;
  /** Removes a peer from a room; resolves to the member removed, if it was there. */
  leave(roomId: string, peerId: string, reason: LeaveReason): Promise<Member | undefined>;

  /** How many rooms this instance holds members of (metrics). */
  localRoomCount(): number;

  /** This instance's view of a room it holds members of. Synchronous: used per message. */
  room(roomId: string): Room | undefined;

  /**
   * Sends an event to a member wherever it lives. Local members never touch the network.
   * `receipt`, when given and `send` does not throw, is called exactly once: at once for a
   * local member, when the other instance confirms, or with `unavailable` when it does not.
   * A lost event without a receipt is reported to its sender as an event (`undelivered`,
   * `direct-expired`).
   */
  send(to: Member, event: PeerEvent, receipt?: Receipt): void;

  /**
   * Gives `event` to every member of `room` (this instance's replica), the sender included:
   * local members in-process, each other instance holding members by one message
   * (core/fanout.ts). Never waits on the network; a room whose cluster directory cannot be
   * reached reaches only its local members.
   */
  fanout(room: Room, event: FanoutEvent): void;

  /**
   * Records that this instance now holds `peerId`, telling any previous holder to let go.
   * With `resume`, a previous holder on another instance hands the peer's state over: its
   * rooms (already moved to this instance) and its queued events.
   */
  claimPeer(peerId: string, resume?: ResumeClaim): Promise<Handoff | undefined>;
  releasePeer(peerId: string): Promise<void>;

  /** Room-less delivery by peer id, queueing for ids connected nowhere (core/direct.ts). */
  readonly direct: DirectMail;

  listRooms(): Promise<RoomSummary[]>;
  roomMembers(roomId: string): Promise<Member[] | undefined>;
  /**
   * The peers every other live instance holds (the caller knows its own): for listings, never
   * on the message path. It reads one directory set per instance. Memory: none.
   */
  remotePeers(): Promise<PeerHolding[]>;

  /** Stores this instance's status report (console) for every instance to read; kept about a minute. */
  reportInstance(report: object): Promise<void>;
  /** Every instance registered or seen reporting in the last minute, with its up-state and last report. */
  instances(): Promise<InstanceStatus[]>;
}
