import type { WebSocket } from 'ws';
import { isHeraldError, type ErrorCode } from '../core/errors.js';
import type { Grant } from '../core/grant.js';
import type { PeerEvent, Session } from '../core/types.js';
import { closeCodeOf, seedCodeOf } from '../protocol/error-table.js';
import { Connection } from './connection.js';
import { CLOSE, type ConnectionContext } from './context.js';
import { toSeed } from './translate.js';
import { PeerId, RoomId } from '../protocol/json-messages.js';

/**
 * The article's pipe protocol (docs/protocol.md §1) as a thin translator onto the core.
 * A sender is the broadcaster of room `<roomId>`; a reader is a viewer with id `<userId>`.
 * Frames are `type|target|value`; the server rewrites the target to the other side's id.
 */

export type SeedRole = 'sender' | 'reader';

const SENDER_PREFIX = 'sender/';
/** Longest room or user id, on the path and in a reader's join. */
const MAX_ID_LENGTH = 128;

/** Parses `/webrtc/<role>/<id>[?query]`; returns a reason string when the path is bad. */
export function parseSeedPath(pathname: string): { role: SeedRole; id: string } | string {
  const parts = pathname.split('/');
  // ['', 'webrtc', role, id]
  if (parts.length !== 4 || parts[1] !== 'webrtc') return 'expected /webrtc/sender/<roomId> or /webrtc/reader/<userId>';
  const role = parts[2]!;
  // The reason goes into a close frame (at most 123 bytes): never echo unbounded input.
  // The pathname is percent-encoded ASCII, so 32 characters are 32 bytes.
  if (role !== 'sender' && role !== 'reader') {
    return `unknown role "${role.length > 32 ? role.slice(0, 32) + '...' : role}"`;
  }
  let id: string;
  try {
    id = decodeURIComponent(parts[3]!);
  } catch {
    return 'id is not valid percent-encoding';
  }
  if (!id) return 'missing id';
  if (role === 'reader') {
    // The JSON protocol's peer-id rule: no '/' (sender peer ids are `sender/<roomId>`), and
    // no '|' or control character, which would split or forge frames the sender reads.
    if (!PeerId.safeParse(id).success) return 'reader id must be 1-64 of A-Z a-z 0-9 _ . : @ ~ -';
  } else {
    const bad = badRoomId(id);
    if (bad) return bad;
  }
  return { role, id };
}

/**
 * Why a seed room id is refused, or undefined: the JSON protocol's room rule (1-128
 * characters, no control characters, well-formed UTF-16) plus no '|', the frame separator.
 */
function badRoomId(id: string): string | undefined {
  if (id.length > MAX_ID_LENGTH) return `room id longer than ${MAX_ID_LENGTH} characters`;
  if (id.includes('|')) return 'room id may not contain "|"';
  if (!RoomId.safeParse(id).success) return 'room id may not contain control characters or lone surrogates';
  return undefined;
}

export class SeedConnection extends Connection implements Session {
  readonly protocol = 'seed' as const;
  readonly peerId: string;
  /** The room this connection is bound to: the sender's own room, or the reader's join. */
  private room: string | undefined;

  constructor(
    ws: WebSocket,
    ctx: ConnectionContext,
    readonly role: SeedRole,
    readonly id: string,
    private readonly grant?: Grant,
  ) {
    super(ws, ctx);
    // parseSeedPath refuses reader ids containing '/', so these can never clash.
    this.peerId = role === 'sender' ? SENDER_PREFIX + id : id;
    void this.inbox.waitFor(this.open());
  }

  protected closed(): void {
    this.ctx.hub.disconnect(this.peerId, this, false);
  }

  /** The article's clients get 1003 for a binary frame, as ever. */
  protected override binaryFrame(): void {
    this.close(CLOSE.unsupportedData, 'binary frames are not supported');
  }

  protected refuse(code: ErrorCode, message: string): void {
    this.error(seedCodeOf(code), message);
  }

  private async open(): Promise<void> {
    try {
      const { rooms } = await this.ctx.hub.connect(this.peerId, this, this.grant);
      if (this.role === 'sender') {
        const room = await this.ctx.hub.join(this.peerId, this.id, 'broadcaster');
        this.room = this.id;
        this.guard.joined();
        // Readers already waiting in the room are announced as if they had just joined.
        for (const viewer of room.viewers.values()) this.send(`join|${viewer.peerId}`);
      } else {
        this.room = rooms.keys().next().value; // a replaced reader keeps its binding
        if (this.room) this.guard.joined();
      }
    } catch (err) {
      const code = closeCodeOf(isHeraldError(err) ? err.code : 'internal');
      this.fail(err);
      this.close(code, isHeraldError(err) ? err.message : 'internal error');
    }
  }

  deliver(event: PeerEvent): void {
    switch (event.type) {
      case 'signal': {
        const { type, value } = toSeed(event.payload);
        // Senders see the reader's id; readers see the room id (the article's rewrite).
        const target = this.role === 'sender' ? event.from : event.room;
        this.send(`${type}|${target}|${value}`);
        return;
      }
      case 'peer-joined':
        if (this.role === 'sender' && event.member.role === 'viewer') this.send(`join|${event.member.peerId}`);
        return;
      case 'peer-left':
        if (this.role === 'sender') this.send(`leave|${event.member.peerId}`);
        else if (event.member.role === 'broadcaster' && this.room === event.room) this.unbind('unbound');
        return;
      case 'removed':
        if (this.role === 'sender' && event.reason === 'conflict') this.close(CLOSE.conflict, 'conflict: another sender held the room first');
        else if (this.role === 'sender') this.close(CLOSE.kicked, 'removed from the room');
        else if (this.room === event.room) {
          this.room = undefined;
          this.guard.left();
          this.send('leaveline');
        }
        return;
      case 'expired':
        this.send(`error|expired|messages to ${event.to} were not delivered`);
        return;
      case 'undelivered':
        this.send(`error|unavailable|a message to ${event.to} was not delivered: its instance did not confirm it`);
        return;
    }
  }

  protected handle(frame: string): void | Promise<void> {
    const bar1 = frame.indexOf('|');
    if (bar1 <= 0) return this.error('bad-frame', 'expected type|target|value');
    const bar2 = frame.indexOf('|', bar1 + 1);
    const type = frame.slice(0, bar1);
    const target = frame.slice(bar1 + 1, bar2 < 0 ? undefined : bar2);
    if (!target) return this.error('bad-frame', 'missing target');
    if (this.role === 'reader' && type === 'join') return this.join(target);
    if (bar2 < 0) return this.error('bad-frame', 'expected type|target|value');
    const payload = { kind: 'seed' as const, type, value: frame.slice(bar2 + 1) };
    try {
      if (this.role === 'sender') {
        this.ctx.hub.signal(this.peerId, this.id, target, payload);
      } else {
        if (this.room !== target) return this.error('not-joined', `send join|${target} first`);
        this.ctx.hub.signalBroadcaster(this.peerId, target, payload);
      }
    } catch (err) {
      this.fail(err, this.role === 'sender' ? 'no-such-peer' : 'no-sender');
    }
  }

  private async join(roomId: string): Promise<void> {
    const bad = badRoomId(roomId);
    if (bad) return this.error('bad-frame', bad);
    try {
      if (this.room && this.room !== roomId) await this.ctx.hub.leave(this.peerId, this.room);
      if (this.room !== undefined) this.guard.left(); // a failed join below leaves it in no room
      this.room = undefined;
      await this.ctx.hub.join(this.peerId, roomId, 'viewer');
      this.room = roomId;
      this.guard.joined();
    } catch (err) {
      this.fail(err);
    }
  }

  /** The room's sender left: the article sends `leaveline` and unbinds the reader. */
  private unbind(reason: 'unbound'): void {
    const room = this.room!;
    this.room = undefined;
    this.guard.left();
    this.send('leaveline');
    this.ctx.hub.leave(this.peerId, room, reason).catch((err) => this.ctx.log.warn({ err, peer: this.peerId }, 'unbind failed'));
  }

  private fail(err: unknown, notFoundCode = 'no-such-peer'): void {
    if (!isHeraldError(err)) {
      this.ctx.log.error({ err, peer: this.peerId }, 'seed connection failed');
      return this.error('internal', 'internal error');
    }
    this.error(err.code === 'not-found' ? notFoundCode : seedCodeOf(err.code), err.message);
  }

  private error(code: string, message: string): void {
    this.ctx.metrics.error(code, 'seed');
    this.send(`error|${code}|${message}`);
  }

  private send(frame: string): void {
    this.write(frame);
  }
}

