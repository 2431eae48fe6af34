import type { WebSocket } from 'ws';
import type { ErrorCode } from '../core/errors.js';
import type { PeerEvent, Protocol, Session } from '../core/types.js';
import { closeCodeOf } from '../protocol/error-table.js';
import { CLOSE, type ConnectionContext } from './context.js';
import { Guard, type GuardLimits, type Violation } from './guard.js';
import { heard } from './heartbeat.js';
import { Inbox } from './inbox.js';
import { closeSocket, sendText } from './send.js';

/**
 * What every protocol connection shares: the socket wiring, the guard (rate limit, join
 * timeout), the inbox that keeps messages in order around async work, the refusal of
 * binary frames and the close. An adapter supplies only its protocol: how to handle a text
 * message, how to render the core's events and errors, and what a close means to the core.
 */
export abstract class Connection implements Session {
  abstract readonly protocol: Protocol;
  protected readonly inbox = new Inbox((text) => this.handle(text));
  protected readonly guard: Guard;

  constructor(
    protected readonly ws: WebSocket,
    protected readonly ctx: ConnectionContext,
    limits: GuardLimits = ctx.limits,
  ) {
    this.guard = new Guard(limits, (v) => this.violated(v));
    ws.on('message', (data, isBinary) => {
      heard(ws);
      this.received();
      if (isBinary) return this.binaryFrame();
      if (!this.guard.allow()) return this.refuse('rate-limited', 'too many messages; slow down');
      this.inbox.push(data.toString());
    });
    ws.on('close', (code) => {
      this.guard.dispose();
      this.closed(code);
      ctx.ended(this, code);
    });
  }

  abstract deliver(event: PeerEvent): void;

  /** The core (or the gateway) ends this connection. */
  close(code: number, reason: string): void {
    closeSocket(this.ws, code, reason);
  }

  /** One text message, in arrival order. */
  protected abstract handle(text: string): void | Promise<void>;
  /** The socket closed with `code`: tell the core. */
  protected abstract closed(code: number): void;
  /** Reports an error not tied to a request, in the protocol's form (error table). */
  protected abstract refuse(code: ErrorCode, message: string): void;

  /** Any frame arrived (before it is judged): liveness hooks. */
  protected received(): void {}

  /** No protocol here carries binary frames: by default they are refused with bad-request. */
  protected binaryFrame(): void {
    this.refuse('bad-request', 'binary frames are not supported');
  }

  protected write(text: string): void {
    sendText(this.ws, text);
  }

  /** Rate abuse closes with 4429; a join timeout is reported, then closes with its code. */
  protected violated(violation: Violation): void {
    if (violation === 'rate-abuse') return this.close(CLOSE.rateLimited, 'rate limit exceeded repeatedly');
    this.refuse('join-timeout', 'no room joined in time');
    this.close(closeCodeOf('join-timeout'), 'no room joined in time');
  }
}
