import type { FanoutEvent, LeaveReason, Member, PeerEvent, Role, Sequenced } from '../../core/types.js';

/**
 * The messages instances publish to each other, by name. A batch (one tick's messages to one
 * channel) travels as a JSON array; a lone message as itself.
 */
export type Wire = MemberJoined | MembersLeft | Deliver | Fanout | PeerTaken | HandoffReply;

/** A member joined room `room` at version `v`; `moved`: it only moved instance (a resume), nobody is told. */
export interface MemberJoined {
  type: 'joined';
  room: string;
  v: number;
  member: Member;
  moved?: true;
}

/** Members left room `room` at version `v`. */
export interface MembersLeft {
  type: 'left';
  room: string;
  v: number;
  members: Member[];
  reason: LeaveReason;
}

/** An event for a peer held by the receiving instance. */
export interface Deliver {
  type: 'deliver';
  peer: string;
  event: PeerEvent;
}

/**
 * A publish to every member of a room (core/fanout.ts) that the receiving instance holds:
 * one per instance, however many members it holds there.
 */
export interface Fanout {
  type: 'fanout';
  event: FanoutEvent;
}

/**
 * Peer `peer` was claimed by another instance. With `request`, it is a resume asking the
 * receiving (previous) holder to hand the peer over and answer on `from`'s channel.
 */
export interface PeerTaken {
  type: 'taken';
  peer: string;
  request?: string;
  from?: string;
  resumeToken?: string;
  identity?: string;
  /** A seed reconnect: hand the rooms over on identity alone. */
  carryRooms?: true;
}

/** The previous holder's answer to a hand-off request: the peer's state, or null (refused). */
export interface HandoffReply {
  type: 'handoff';
  request: string;
  handoff: WireHandoff | null;
}

export interface WireHandoff {
  rooms: [string, Role][];
  queue: PeerEvent[];
  /** The peer's membership records, as the previous holder's replicas had them. */
  members: { roomId: string; member: Member }[];
  /** Events given but not acknowledged, and the last sequence number given. */
  unacked?: Sequenced[];
  seq?: number;
}

export type RoomWire = MemberJoined | MembersLeft;

/** A Member as stored in Redis: plus the holder's claim number. */
export type Stored = Member & { c?: number };

export function parseMember(json: string): Member {
  const m = JSON.parse(json) as Stored;
  delete m.c;
  return m;
}

export function sameMember(a: Member, b: Member): boolean {
  return a.instanceId === b.instanceId && a.joinedAt === b.joinedAt && a.role === b.role;
}

/** A signal's raw JSON text is a same-process shortcut; the wire carries `data` once. */
export function withoutRaw(event: PeerEvent): PeerEvent {
  if (event.type !== 'signal' || event.payload.kind !== 'json' || event.payload.raw === undefined) return event;
  return { ...event, payload: { kind: 'json', data: event.payload.data } };
}
