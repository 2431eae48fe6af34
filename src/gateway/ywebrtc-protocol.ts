import { randomBytes } from 'node:crypto';
import type { WebSocket } from 'ws';
import { isHeraldError, type ErrorCode } from '../core/errors.js';
import { allows, type Grant } from '../core/grant.js';
import type { PeerEvent, Session } from '../core/types.js';
import { RoomId } from '../protocol/json-messages.js';
import { Connection } from './connection.js';
import type { ConnectionContext } from './context.js';

/**
 * y-webrtc's signaling protocol, as its reference server (y-webrtc's bin/server.js) speaks
 * it, translated onto the core's rooms (a topic is a room) and its fan-out (core/fanout.ts):
 *
 *   client → server  {"type":"subscribe","topics":[T,…]}   {"type":"unsubscribe","topics":[T,…]}
 *                    {"type":"publish","topic":T,…}         {"type":"ping"}
 *   server → client  the publish, with "clients" (the topic's subscriber count) set, to every
 *                    subscriber of T, the sender included;   {"type":"pong"}
 *
 * Like the reference, the server answers nothing else: a message it cannot use is dropped
 * (and counted in herald_errors_total), the socket kept. docs/y-webrtc.md lists where Herald
 * differs (bad input that crashes the reference, tokens, caps, publishing without subscribing).
 */

const PONG = '{"type":"pong"}';
/** The y-webrtc client's keepalive: answered without a parse. */
const PING = '{"type":"ping"}';
/** Hub peer ids of y-webrtc connections: made up here, never addressed by anyone. */
const HUB_PREFIX = 'ywebrtc/';

interface Message {
  type?: unknown;
  topics?: unknown;
  topic?: unknown;
  clients?: unknown;
}

/** One y-webrtc client's signaling socket. */
export class YWebrtcConnection extends Connection implements Session {
  readonly protocol = 'ywebrtc' as const;
  readonly peerId = HUB_PREFIX + randomBytes(12).toString('base64url');
  private isClosed = false;

  constructor(
    ws: WebSocket,
    ctx: ConnectionContext,
    private readonly grant: Grant | undefined,
  ) {
    super(ws, ctx);
    ctx.hub.connectAnonymous(this.peerId, this, grant);
  }

  deliver(event: PeerEvent): void {
    if (event.type === 'fanout' && event.payload.kind === 'ywebrtc') this.write(event.payload.text);
  }

  /** The reference answers no error: it is counted, the message dropped. */
  protected refuse(code: ErrorCode): void {
    this.ctx.metrics.error(code, 'ywebrtc');
  }

  protected closed(): void {
    this.isClosed = true;
    this.ctx.hub.disconnect(this.peerId, this, false);
  }

  /** The reference parses binary frames as text; no y-webrtc client sends one: dropped, counted. */
  protected override binaryFrame(): void {
    this.refuse('bad-request');
  }

  protected handle(text: string): void | Promise<void> {
    if (this.isClosed) return;
    if (text === PING) return this.write(PONG);
    let msg: unknown;
    try {
      msg = JSON.parse(text);
    } catch {
      return this.refuse('bad-request'); // the reference crashes here
    }
    if (msg === null || typeof msg !== 'object' || Array.isArray(msg)) return this.refuse('bad-request');
    const m = msg as Message;
    switch (m.type) {
      case 'subscribe':
        return this.subscribe(m.topics);
      case 'unsubscribe':
        return this.unsubscribe(m.topics);
      case 'publish':
        return this.publish(m, text);
      case 'ping':
        return this.write(PONG);
      default:
        // The reference ignores other types silently too; only a missing type is counted.
        if (!m.type) this.refuse('bad-request');
    }
  }

  /** Topics as the reference reads them: `topics || []`, strings only; more must be a room id. */
  private topicList(topics: unknown): string[] | undefined {
    if (!topics) return [];
    if (!Array.isArray(topics)) {
      this.refuse('bad-request'); // the reference crashes on a non-array
      return undefined;
    }
    const valid: string[] = [];
    for (const t of topics) {
      if (typeof t !== 'string') continue; // the reference skips these too
      if (RoomId.safeParse(t).success) valid.push(t);
      else this.refuse('bad-request');
    }
    return valid;
  }

  /**
   * Joins each topic in turn (one at a time, so the per-connection cap counts every one).
   * A topic the token does not allow, past a cap, or unreachable is skipped and counted; the
   * others still work. The reference has no such refusals and so no message for them; a
   * close would make y-webrtc reconnect and subscribe again in a loop, so there is none.
   */
  private async subscribe(raw: unknown): Promise<void> {
    const topics = this.topicList(raw);
    if (!topics) return;
    const { hub } = this.ctx;
    for (const topic of topics) {
      if (this.isClosed) return;
      if (hub.isMember(this.peerId, topic)) continue;
      if (!allows(this.grant, topic, 'peer')) {
        this.refuse('forbidden');
        continue;
      }
      try {
        await hub.join(this.peerId, topic, 'peer');
        this.guard.joined();
      } catch (err) {
        if (!isHeraldError(err)) this.ctx.log.error({ err, peer: this.peerId }, 'y-webrtc subscribe failed');
        if (!this.isClosed) this.refuse(isHeraldError(err) ? err.code : 'internal');
      }
    }
  }

  private async unsubscribe(raw: unknown): Promise<void> {
    const topics = this.topicList(raw);
    if (!topics) return;
    const { hub } = this.ctx;
    await Promise.allSettled(topics.filter((t) => hub.isMember(this.peerId, t)).map((t) => hub.leave(this.peerId, t)));
  }

  /**
   * To every subscriber of the topic, the sender included, with `clients` set as the
   * reference does (`message.clients = receivers.size`, then JSON.stringify): rendered once,
   * whatever the number of subscribers. Only a subscriber may publish (docs/y-webrtc.md).
   */
  private publish(m: Message, text: string): void {
    const topic = m.topic;
    if (typeof topic !== 'string' || topic === '') return; // the reference: `if (message.topic)`
    const max = this.ctx.maxSignalBytes;
    if (text.length > max || (text.length * 3 > max && Buffer.byteLength(text) > max)) return this.refuse('too-large');
    const sent = this.ctx.hub.publish(this.peerId, topic, (members) => {
      m.clients = members;
      return { kind: 'ywebrtc', text: JSON.stringify(m) };
    });
    if (!sent) this.refuse('forbidden');
  }
}
