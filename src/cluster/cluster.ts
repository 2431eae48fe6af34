import type { Room } from '../core/room.js';
import type { LeaveReason, Member, PeerEvent } from '../core/types.js';

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
}

export interface RoomSummary {
  id: string;
  members: number;
  broadcaster: string | null;
}

/**
 * Where peers live and how a message reaches them (DESIGN.md §3). The server never asks
 * which implementation it has: `memory` for one process, `redis` for many.
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

  /** Sends an event to a member wherever it lives. Local members never touch the network. */
  send(to: Member, event: PeerEvent): void;

  /** Records that this instance now holds `peerId`, telling any previous holder to let go. */
  claimPeer(peerId: string): Promise<void>;
  releasePeer(peerId: string): Promise<void>;

  listRooms(): Promise<RoomSummary[]>;
  roomMembers(roomId: string): Promise<Member[] | undefined>;
}
