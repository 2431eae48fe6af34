/**
 * The core's vocabulary. Nothing here knows about sockets, wire formats or Redis:
 * protocol adapters translate to and from these shapes, and clusters carry them.
 */

export type Role = 'broadcaster' | 'viewer' | 'peer';
export const ROLES: readonly Role[] = ['broadcaster', 'viewer', 'peer'];

/** `whep`: a WHEP player's viewer session (src/http/whep-session.ts), answered by an SDK broadcaster. */
export type Protocol = 'seed' | 'json' | 'peerjs' | 'whep' | 'ywebrtc';

/** One peer's membership of one room, as every instance sees it. */
export interface Member {
  peerId: string;
  role: Role;
  protocol: Protocol;
  /** The instance whose socket (or resume grace) holds this peer. */
  instanceId: string;
  /** Authenticated identity (token `sub`), if any. */
  identity?: string;
  joinedAt: number;
}

/**
 * What travels in a signal. It is opaque to the core. Each protocol keeps its own form so
 * that a seed-to-seed or json-to-json relay is passed through untouched; only a mixed pair
 * is translated, by the receiving adapter.
 */
export type Payload =
  | { kind: 'seed'; type: string; value: string }
  /** `raw`, when present, is `data` as the sender's JSON text: JSON recipients get it verbatim. */
  | { kind: 'json'; data: unknown; raw?: string }
  /** A PeerJS message: its `type` and its `payload` as the sender's JSON text (undefined when absent). */
  | { kind: 'peerjs'; type: string; payload: string | undefined }
  /** A y-webrtc publish: the frame every subscriber gets, as text (rendered once by the sender's adapter). */
  | { kind: 'ywebrtc'; text: string };

export type LeaveReason =
  | 'left'        // asked to leave
  | 'closed'      // socket closed, no resume possible
  | 'timeout'     // heartbeat or resume grace ran out
  | 'kicked'      // admin removed it
  | 'unbound'     // seed reader unbound because its sender left
  | 'revoked'     // the token it resumed or reconnected with does not allow this room/role
  | 'instance-lost' // the instance holding it died
  | 'conflict';     // two broadcasters admitted during a Redis outage: the later one lost

export interface RoomCounts {
  broadcaster: boolean;
  viewers: number;
  peers: number;
}

/** Everything the core may push to one connected peer. */
export type PeerEvent =
  | { type: 'signal'; room: string; from: string; fromRole: Role; payload: Payload }
  | { type: 'peer-joined'; room: string; member: Member }
  | { type: 'peer-left'; room: string; member: Member; reason: LeaveReason }
  /** Signals this peer sent to `to` were dropped: `to` never came back. */
  | { type: 'expired'; room: string; to: string }
  /** One signal this peer sent to `to` (on another instance) was not delivered: that instance did not confirm it. */
  | { type: 'undelivered'; room: string; to: string }
  /** How many members the room has now (coalesced; see core/presence.ts). */
  | { type: 'counts'; room: string; counts: RoomCounts }
  /** Room notice pushed to the peer itself: it was removed. */
  | { type: 'removed'; room: string; reason: LeaveReason }
  /** A room-less message addressed by peer id (core/direct.ts). */
  | { type: 'direct'; from: string; payload: Payload }
  /** Direct messages this peer sent to `to` waited for it in vain and were dropped. */
  | { type: 'direct-expired'; to: string }
  /** A message to the whole room, its sender included (core/fanout.ts). */
  | FanoutEvent;

/** One publish to every member of a room (core/fanout.ts). */
export interface FanoutEvent {
  type: 'fanout';
  room: string;
  from: string;
  payload: Payload;
}

/** A connected peer as the core sees it: somewhere to push events, something to close. */
export interface Session {
  readonly protocol: Protocol;
  /**
   * True when the client acknowledges what it receives (JSON protocol, `lastSeq` in hello):
   * then every event it is given carries a sequence number, and events stay kept until
   * acknowledged, so that a resume (here or on another instance) replays what was lost.
   */
  readonly acknowledges?: boolean;
  /** `seq`: the event's number in this peer's stream (only when the session acknowledges). */
  deliver(event: PeerEvent, seq?: number): void;
  /** The core ends this session (replaced, kicked, draining). */
  close(code: number, reason: string): void;
}

/** An event given to an acknowledging session, kept until the client acknowledges `seq`. */
export interface Sequenced {
  seq: number;
  event: PeerEvent;
}

/** Who may signal whom: the rule docs/protocol.md §2 gives for each pair of roles. */
export function maySignal(from: Role, to: Role): boolean {
  if (from === 'peer') return to === 'peer';
  if (from === 'viewer') return to === 'broadcaster';
  return to === 'viewer';
}

/** Who hears that `subject` joined or left: the members it may talk to. */
export function hears(listener: Role, subject: Role): boolean {
  if (subject === 'broadcaster') return listener === 'viewer';
  return maySignal(subject, listener);
}

/** The room an event concerns; undefined for room-less (direct) events. */
export function eventRoom(event: PeerEvent): string | undefined {
  return 'room' in event ? event.room : undefined;
}
