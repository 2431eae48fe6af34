import { z } from 'zod';
import { ERROR_CODES } from '../core/errors.js';
import { ROLES } from '../core/types.js';

/**
 * Herald's JSON protocol v1: the one source of truth. The server validates every incoming
 * message with these schemas; the browser SDK imports the derived types.
 */

const noControl = /^[^\u0000-\u001f\u007f]+$/;
/**
 * A lone surrogate: UTF-8 (Redis keys, logs) cannot carry one, so `show\uD800` and
 * `show\uDBFF` would both be written as `show\uFFFD` and share one room. Refused instead.
 */
const loneSurrogate = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;
export const RoomId = z
  .string()
  .min(1)
  .max(128)
  .regex(noControl, 'must not contain control characters')
  .refine((s) => !loneSurrogate.test(s), 'must be well-formed UTF-16 (no lone surrogates)');
/** Client-chosen peer ids exclude '/', so they can never collide with a seed sender's id. */
export const PeerId = z.string().regex(/^[A-Za-z0-9_.:@~-]{1,64}$/, 'must be 1-64 of A-Z a-z 0-9 _ . : @ ~ -');
export const RequestId = z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER);
export const Role = z.enum(ROLES as unknown as ['broadcaster', 'viewer', 'peer']);

export const Hello = z.strictObject({
  type: z.literal('hello'),
  id: RequestId,
  /** Ask for a specific peer id (kept across reconnects); otherwise the server picks one. */
  peerId: PeerId.optional(),
  /** Resume a dropped session: rooms kept, queued signals delivered in order. */
  resumeToken: z.string().regex(/^[A-Za-z0-9_-]{1,128}$/, 'must be a token a welcome gave').optional(),
  /**
   * The client acknowledges what it receives: pushes carry `seq`, and this is the last one
   * it received (0 at first). A resume then replays every push after it, in order.
   */
  lastSeq: z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER).optional(),
});

/** The client received every push up to `seq` (cumulative; no reply). */
export const Ack = z.strictObject({ type: z.literal('ack'), seq: z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER) });

export const Join = z.strictObject({ type: z.literal('join'), id: RequestId, room: RoomId, role: Role });
export const Leave = z.strictObject({ type: z.literal('leave'), id: RequestId, room: RoomId });

/**
 * How deep a signal's `data` may nest. SDP and candidates need 2 levels; the cap keeps a
 * frame of 30k `[` (which JSON.parse takes) from overflowing the stack of the JSON.stringify
 * that delivers it.
 */
export const MAX_DATA_DEPTH = 32;

/** True when `value` nests at most `levels` arrays/objects deep. Visits containers only. */
function nestsWithin(value: unknown, levels: number): boolean {
  if (value === null || typeof value !== 'object') return true;
  if (levels === 0) return false;
  const children = Array.isArray(value) ? value : Object.values(value);
  for (const child of children) if (!nestsWithin(child, levels - 1)) return false;
  return true;
}

/** `data` is opaque (SDP, candidate, app data); only its size and depth are capped. `id` is optional. */
export const Signal = z.strictObject({
  type: z.literal('signal'),
  id: RequestId.optional(),
  room: RoomId,
  to: z.string().min(1).max(200),
  data: z
    .unknown()
    .refine((d) => d !== undefined, 'data is required')
    .refine((d) => nestsWithin(d, MAX_DATA_DEPTH), `data nests deeper than ${MAX_DATA_DEPTH} levels`),
});

/**
 * The relay hot path's check of a `signal`: the same rules as the `Signal` schema, written
 * out so a well-formed signal costs no zod pass. It only ever accepts what `Signal` accepts
 * (test/unit/json-messages.test.ts holds them to that); anything it refuses goes through zod,
 * which produces the error message.
 */
export function fastSignal(raw: unknown): SignalMessage | undefined {
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) return undefined;
  const m = raw as Record<string, unknown>;
  for (const key in m) if (!SIGNAL_KEYS.has(key)) return undefined;
  const { id, room, to, data } = m;
  if (m.type !== 'signal' || data === undefined) return undefined;
  if (id !== undefined && !(typeof id === 'number' && Number.isSafeInteger(id) && id >= 0)) return undefined;
  if (typeof room !== 'string' || room.length > 128 || !noControl.test(room) || loneSurrogate.test(room)) return undefined;
  if (typeof to !== 'string' || to.length === 0 || to.length > 200) return undefined;
  if (!nestsWithin(data, MAX_DATA_DEPTH)) return undefined;
  return m as SignalMessage;
}
const SIGNAL_KEYS = new Set(['type', 'id', 'room', 'to', 'data']);

/**
 * Application-level liveness check. Browsers cannot see WebSocket pings, so a client whose
 * network silently died would not notice for minutes; the SDK pings every `heartbeatMs`.
 */
export const Ping = z.strictObject({ type: z.literal('ping'), id: RequestId });

export const ClientMessage = z.discriminatedUnion('type', [Hello, Join, Leave, Signal, Ping, Ack]);
export type ClientMessage = z.infer<typeof ClientMessage>;
export type HelloMessage = z.infer<typeof Hello>;
export type JoinMessage = z.infer<typeof Join>;
export type LeaveMessage = z.infer<typeof Leave>;
export type SignalMessage = z.infer<typeof Signal>;

// ---- server → client (typed here, not validated at runtime: the server builds them) ----

export type ErrorCode = (typeof ERROR_CODES)[number];
export type RoleName = z.infer<typeof Role>;

export interface PeerInfo {
  id: string;
  role: RoleName;
  /** A WHEP player (docs/whep.md): it offers, the broadcaster answers with a complete SDP, no data channel. */
  whep?: true;
}

export interface IceServer {
  urls: string | string[];
  username?: string;
  credential?: string;
}

export type Welcome = {
  type: 'ack';
  id: number;
  peerId: string;
  resumeToken: string;
  resumed: boolean;
  /** Rooms kept from before (after a resume). */
  rooms: { room: string; role: RoleName }[];
  iceServers: IceServer[];
  heartbeatMs: number;
};

export type JoinAck = {
  type: 'ack';
  id: number;
  room: string;
  role: RoleName;
  /** The members this peer may signal (viewers see only the broadcaster). */
  members: PeerInfo[];
  counts: { broadcaster: boolean; viewers: number; peers: number };
};

/** A push's number in the session's stream, present when the client said `lastSeq` in hello. */
type Numbered = { seq?: number };

export type ServerMessage =
  | Welcome
  | JoinAck
  | { type: 'ack'; id: number; room?: string }
  | { type: 'error'; id?: number; code: ErrorCode; message: string }
  | ({ type: 'signal'; room: string; from: string; data: unknown } & Numbered)
  | ({ type: 'peer-joined'; room: string; peer: PeerInfo } & Numbered)
  | ({ type: 'peer-left'; room: string; peer: PeerInfo; reason: string } & Numbered)
  | ({ type: 'expired'; room: string; to: string } & Numbered)
  | ({ type: 'removed'; room: string; reason: string } & Numbered)
  | ({ type: 'counts'; room: string; counts: { broadcaster: boolean; viewers: number; peers: number } } & Numbered)
  | { type: 'bye'; reason: string; reconnect: boolean };

export { CLOSE } from './close-codes.js';
