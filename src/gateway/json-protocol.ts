import type { WebSocket } from 'ws';
import { HeraldError, isHeraldError, type ErrorCode } from '../core/errors.js';
import type { Grant } from '../core/grant.js';
import { idNamespace, newPeerId, ownsPeerId } from '../core/peer-ids.js';
import type { Member, PeerEvent, Session } from '../core/types.js';
import {
  ClientMessage,
  fastSignal,
  type HelloMessage,
  type JoinAck,
  type JoinMessage,
  type LeaveMessage,
  type PeerInfo,
  type ServerMessage,
  type SignalMessage,
  type Welcome,
} from '../protocol/json-messages.js';
import { Connection } from './connection.js';
import { CLOSE, type ConnectionContext } from './context.js';
import { rawMember } from '../protocol/raw-member.js';
import { sendText } from './send.js';
import { toJsonData } from './translate.js';

/** Client close codes that mean "I am leaving for good": no resume grace for those. */
const FINAL_CLOSE = new Set([1000, 1001]);

/**
 * Herald's JSON protocol (docs/protocol.md §2) as a thin translator onto the core. Requests carry an
 * `id` and get exactly one `ack` or `error`; pushes (`signal`, `peer-joined`, ...) carry none.
 */
export class JsonConnection extends Connection implements Session {
  readonly protocol = 'json' as const;
  peerId: string | undefined;
  private closedByServer = false;
  /** The close code, once the socket has closed (a hello may still be in flight then). */
  private closeCode: number | undefined;
  /** While hello is being answered, pushes wait here so that they follow the welcome. */
  private held: [PeerEvent, number | undefined][] | undefined;
  /** Set by hello's `lastSeq`: pushes are numbered and kept until the client acknowledges them. */
  acknowledges = false;

  constructor(
    ws: WebSocket,
    ctx: ConnectionContext,
    private readonly grant?: Grant,
  ) {
    super(ws, ctx);
  }

  protected closed(code: number): void {
    this.closeCode = code;
    if (!this.peerId) return; // a hello in flight tells the hub itself (see `hello`)
    const resumable = this.closedByServer || !FINAL_CLOSE.has(code);
    this.ctx.hub.disconnect(this.peerId, this, resumable);
  }

  protected refuse(code: ErrorCode, message: string): void {
    this.error(undefined, code, message);
  }

  // ---- Session: the core pushes ----

  deliver(event: PeerEvent, seq?: number): void {
    if (this.held) {
      this.held.push([event, seq]);
      return;
    }
    switch (event.type) {
      case 'signal': {
        const { payload } = event;
        if (payload.kind === 'json' && payload.raw !== undefined) {
          // The JSON that JSON.stringify({type, room, from, data, seq}) would give, without re-encoding data.
          const tail = seq === undefined ? '}' : `,"seq":${seq}}`;
          return sendText(this.ws, `{"type":"signal","room":${JSON.stringify(event.room)},"from":${JSON.stringify(event.from)},"data":${payload.raw}${tail}`);
        }
        return this.send({ type: 'signal', room: event.room, from: event.from, data: toJsonData(payload), seq });
      }
      case 'peer-joined':
        return this.send({ type: 'peer-joined', room: event.room, peer: info(event.member), seq });
      case 'peer-left':
        return this.send({ type: 'peer-left', room: event.room, peer: info(event.member), reason: event.reason, seq });
      case 'expired':
        return this.send({ type: 'expired', room: event.room, to: event.to, seq });
      case 'undelivered':
        return this.error(undefined, 'unavailable', `a signal to ${event.to} in room ${event.room} was not delivered: its instance did not confirm it`);
      case 'removed':
        if (this.peerId && this.ctx.hub.roomsHeld(this.peerId) === 0) this.guard.left();
        return this.send({ type: 'removed', room: event.room, reason: event.reason, seq });
      case 'counts':
        return this.send({ type: 'counts', room: event.room, counts: event.counts, seq });
    }
  }

  /** Drops the socket without a close frame, as a lost network would; the peer may resume. */
  terminate(): void {
    this.ws.terminate();
  }

  override close(code: number, reason: string): void {
    this.closedByServer = true;
    if (code === CLOSE.restart) this.send({ type: 'bye', reason, reconnect: true });
    super.close(code, reason);
  }

  // ---- requests ----

  protected handle(text: string): void | Promise<void> {
    let raw: unknown;
    try {
      raw = JSON.parse(text);
    } catch {
      return this.error(undefined, 'bad-request', 'not JSON');
    }
    // Signals, nearly all traffic, skip zod when well-formed; zod judges everything else.
    const signal = this.peerId ? fastSignal(raw) : undefined;
    if (signal) return this.signal(signal, text);
    const parsed = ClientMessage.safeParse(raw);
    const id = requestId(raw);
    if (!parsed.success) {
      const issue = parsed.error.issues[0]!;
      return this.error(id, 'bad-request', `${issue.path.join('.') || 'message'}: ${issue.message}`);
    }
    const msg = parsed.data;
    if (msg.type === 'ping') return this.send({ type: 'ack', id: msg.id });
    if (msg.type === 'ack') return this.acknowledge(msg.seq);
    if (msg.type === 'hello') return this.greet(msg);
    if (!this.peerId) return this.error(id, 'bad-request', 'send hello first');
    switch (msg.type) {
      case 'signal':
        return this.signal(msg, text);
      case 'join':
        return this.run(msg.id, () => this.join(msg));
      case 'leave':
        return this.run(msg.id, () => this.leave(msg));
    }
  }

  /**
   * Answers hello. Pushes that arrive meanwhile (a resume replays its queue synchronously)
   * are held and delivered after the welcome, in order.
   */
  private async greet(msg: HelloMessage): Promise<void> {
    this.held = [];
    try {
      await this.run(msg.id, () => this.hello(msg));
    } finally {
      const held = this.held;
      this.held = undefined;
      for (const [event, seq] of held) this.deliver(event, seq);
    }
  }

  private async hello(msg: HelloMessage): Promise<Welcome> {
    if (this.peerId) throw new HeraldError('conflict', 'hello was already said on this connection');
    const { hub } = this.ctx;
    this.acknowledges = msg.lastSeq !== undefined;
    let connected = msg.resumeToken ? hub.resume(msg.resumeToken, this, this.grant, msg.lastSeq) : undefined;
    if (msg.resumeToken && !connected && !msg.peerId) {
      throw new HeraldError('not-found', 'resume token unknown or expired; say hello without it');
    }
    let resumed = connected !== undefined;
    if (!connected && msg.peerId && !ownsPeerId(this.grant?.sub, msg.peerId)) {
      throw new HeraldError('forbidden', `peer id ${msg.peerId} belongs to another identity; this token may use ${idNamespace(this.grant!.sub)} or ${idNamespace(this.grant!.sub)}~<suffix>`);
    }
    // Not held here: the token may belong to another instance, which hands the peer over.
    connected ??= await hub.connect(msg.peerId ?? newPeerId(this.grant?.sub), this, this.grant, msg.resumeToken, msg.lastSeq);
    resumed ||= connected.resumed === true;
    this.peerId = connected.peerId;
    if (this.closeCode !== undefined) {
      // The socket closed while hello was in flight, so its close handler saw no peer: let
      // the hub know now, or the peer would be held forever by a session nobody can reach.
      this.ctx.hub.disconnect(connected.peerId, this, this.closedByServer || !FINAL_CLOSE.has(this.closeCode));
    }
    if (connected.rooms.size > 0) this.guard.joined();
    return {
      type: 'ack',
      id: msg.id,
      peerId: connected.peerId,
      resumeToken: connected.resumeToken,
      resumed,
      rooms: [...connected.rooms].map(([room, role]) => ({ room, role })),
      iceServers: this.ctx.iceServers(this.grant?.sub),
      heartbeatMs: this.ctx.heartbeatMs,
    };
  }

  private async join(msg: JoinMessage): Promise<JoinAck> {
    const room = await this.ctx.hub.join(this.peerId!, msg.room, msg.role);
    this.guard.joined();
    const members = msg.role === 'peer' ? [...room.peers.values()] : msg.role === 'viewer' ? (room.broadcaster ? [room.broadcaster] : []) : [...room.viewers.values()];
    return {
      type: 'ack',
      id: msg.id,
      room: msg.room,
      role: msg.role,
      members: members.filter((m) => m.peerId !== this.peerId).map(info),
      counts: room.counts(),
    };
  }

  private async leave(msg: LeaveMessage): Promise<ServerMessage> {
    if (!(await this.ctx.hub.leave(this.peerId!, msg.room))) {
      throw new HeraldError('not-found', `not a member of room ${msg.room}`);
    }
    // In no room again: the join timeout applies again, or a connection could park forever.
    if (this.ctx.hub.roomsHeld(this.peerId!) === 0) this.guard.left();
    return { type: 'ack', id: msg.id, room: msg.room };
  }

  /** The client received every push up to `seq`. */
  private acknowledge(seq: number): void {
    if (!this.peerId || !this.acknowledges) return this.error(undefined, 'bad-request', 'ack needs a hello with lastSeq first');
    if (!this.ctx.hub.ack(this.peerId, seq)) this.error(undefined, 'bad-request', `ack of ${seq}: no push with that number was sent`);
  }

  /** The hot path: synchronous, no promise, `data` forwarded without being inspected. */
  private signal(msg: SignalMessage, text: string): void {
    // UTF-8 takes at most 3 bytes per UTF-16 unit: only a frame that might be over the cap
    // is measured, so ordinary signals are not scanned a second time.
    const max = this.ctx.maxSignalBytes;
    if (text.length * 3 > max) {
      const size = Buffer.byteLength(text, 'utf8');
      if (size > max) return this.error(msg.id, 'too-large', `signal is ${size} bytes; the limit is ${max}`);
    }
    try {
      // The text of `data` as received rides along, so JSON recipients need no re-serialization.
      // With an id, the ack (or error) waits until the recipient's instance has it.
      const { id } = msg;
      const receipt = id === undefined ? undefined : (err?: HeraldError) => (err ? this.fail(id, err) : this.send({ type: 'ack', id }));
      this.ctx.hub.signal(this.peerId!, msg.room, msg.to, { kind: 'json', data: msg.data, raw: rawMember(text, 'data') }, receipt);
    } catch (err) {
      this.fail(msg.id, err);
    }
  }

  /** Runs an async request and answers it with exactly one ack or error. */
  private async run(id: number, work: () => Promise<ServerMessage>): Promise<void> {
    try {
      this.send(await work());
    } catch (err) {
      this.fail(id, err);
    }
  }

  private fail(id: number | undefined, err: unknown): void {
    if (isHeraldError(err)) return this.error(id, err.code, err.message);
    this.ctx.log.error({ err, peer: this.peerId }, 'json request failed');
    this.error(id, 'internal', 'internal error');
  }

  private error(id: number | undefined, code: ErrorCode, message: string): void {
    this.ctx.metrics.error(code, 'json');
    this.send(id === undefined ? { type: 'error', code, message } : { type: 'error', id, code, message });
  }

  private send(msg: ServerMessage): void {
    sendText(this.ws, JSON.stringify(msg));
  }
}

function info(member: Member): PeerInfo {
  return member.protocol === 'whep' ? { id: member.peerId, role: member.role, whep: true } : { id: member.peerId, role: member.role };
}

/** The request id of a message that failed validation, when one can be read off it. */
function requestId(raw: unknown): number | undefined {
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) return undefined;
  const id = (raw as { id?: unknown }).id;
  return typeof id === 'number' && Number.isSafeInteger(id) && id >= 0 ? id : undefined;
}
