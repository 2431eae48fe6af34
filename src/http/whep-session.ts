import { HeraldError } from '../core/errors.js';
import type { Grant } from '../core/grant.js';
import type { Hub } from '../core/hub.js';
import type { LeaveReason, PeerEvent, Session } from '../core/types.js';
import type { TrickledCandidate } from './whep-sdp.js';

/**
 * What a WHEP viewer and the SDK's broadcaster say to each other in `signal.data` (besides the
 * SDK's own `{description}` / `{candidate}`): the player's offer and candidates carry
 * `whep: true`, so the broadcaster answers instead of offering; `{whep: 'end'}` from the
 * broadcaster says it dropped the player's connection.
 */
export const WHEP_END = 'end';

/** A PATCH that landed on another instance, delivered here by peer id (Cluster.direct). */
export interface WhepTrickle {
  whep: 'trickle';
  room: string;
  candidates: TrickledCandidate[];
}

export function isWhepTrickle(data: unknown): data is WhepTrickle {
  const d = data as Partial<WhepTrickle> | null;
  return typeof d === 'object' && d !== null && d.whep === 'trickle' && typeof d.room === 'string' && Array.isArray(d.candidates);
}

/**
 * One WHEP player as the core sees it: a viewer in the room, held by the instance its POST
 * landed on. It has no socket: the POST waits for the broadcaster's answer (long-poll), PATCH
 * passes candidates on, DELETE (or the broadcaster leaving) ends it.
 */
export class WhepSession implements Session {
  readonly protocol = 'whep' as const;
  private broadcaster: string | undefined;
  private answered: ((sdp: string) => void) | undefined;
  private failed: ((err: HeraldError) => void) | undefined;
  private ended = false;
  private expiry: NodeJS.Timeout | undefined;

  constructor(
    private readonly hub: Hub,
    readonly room: string,
    readonly peerId: string,
    private readonly grant: Grant | undefined,
    private readonly onEnd: (session: WhepSession) => void,
  ) {}

  /**
   * Joins the room as a viewer, hands `offer` to its broadcaster and resolves to the answer.
   * Throws (and leaves) `no-broadcaster`, `timeout` after `timeoutMs`, or what the join threw
   * (`room-full`, `unavailable`, `forbidden`). `abort` ends the wait (the player hung up).
   */
  async open(offer: string, timeoutMs: number, abort: AbortSignal): Promise<string> {
    let timer: NodeJS.Timeout | undefined;
    const onAbort = () => this.failed?.(new HeraldError('bad-request', 'the player closed the request'));
    try {
      await this.hub.connect(this.peerId, this, this.grant);
      const room = await this.hub.join(this.peerId, this.room, 'viewer');
      if (this.ended) throw new HeraldError('unavailable', 'the session ended while it joined');
      const broadcaster = room.broadcaster;
      if (!broadcaster) throw new HeraldError('no-broadcaster', `room ${this.room} has no broadcaster`);
      // Only the SDK's broadcaster (JSON protocol) answers a player's offer; a seed sender offers itself.
      if (broadcaster.protocol !== 'json') throw new HeraldError('no-broadcaster', `the broadcaster of room ${this.room} (${broadcaster.protocol} protocol) cannot answer WHEP players`);
      this.broadcaster = broadcaster.peerId;
      const answer = new Promise<string>((resolve, reject) => {
        this.answered = resolve;
        this.failed = reject;
      });
      timer = setTimeout(() => this.failed?.(new HeraldError('timeout', `the broadcaster did not answer within ${timeoutMs} ms`)), timeoutMs);
      abort.addEventListener('abort', onAbort);
      if (abort.aborted) onAbort();
      this.hub.signal(this.peerId, this.room, broadcaster.peerId, { kind: 'json', data: { description: { type: 'offer', sdp: offer }, whep: true } });
      const sdp = await answer;
      // As a WebSocket lives no longer than its token, a player's session ends at the token's `exp`.
      if (this.grant?.exp !== undefined) {
        this.expiry = setTimeout(() => void this.end('revoked'), Math.max(0, this.grant.exp * 1000 - Date.now()));
        this.expiry.unref();
      }
      return sdp;
    } catch (err) {
      await this.end('closed');
      throw err;
    } finally {
      clearTimeout(timer);
      abort.removeEventListener('abort', onAbort);
      this.answered = this.failed = undefined;
    }
  }

  /** Passes a player's trickled candidates to the broadcaster. */
  trickle(candidates: TrickledCandidate[]): void {
    if (this.ended || !this.broadcaster) return;
    for (const candidate of candidates) {
      this.hub.signal(this.peerId, this.room, this.broadcaster, { kind: 'json', data: { candidate, whep: true } });
    }
  }

  /** Leaves the room (the broadcaster hears `peer-left` and closes the player's connection). */
  async end(reason: LeaveReason = 'left'): Promise<void> {
    if (this.ended) return;
    this.ended = true;
    clearTimeout(this.expiry);
    this.failed?.(new HeraldError('no-broadcaster', `room ${this.room} lost its broadcaster`));
    this.onEnd(this);
    await this.hub.leave(this.peerId, this.room, reason).catch(() => false);
    this.hub.disconnect(this.peerId, this, false, reason);
  }

  // ---- Session: what the core pushes ----

  deliver(event: PeerEvent): void {
    switch (event.type) {
      case 'signal': {
        if (event.from !== this.broadcaster) return;
        const data = event.payload.kind === 'json' ? (event.payload.data as { description?: { type?: unknown; sdp?: unknown }; whep?: unknown }) : undefined;
        if (data?.whep === WHEP_END) return void this.end('closed');
        const d = data?.description;
        if (d?.type === 'answer' && typeof d.sdp === 'string') this.answered?.(d.sdp);
        return;
      }
      case 'peer-left':
        if (event.member.role === 'broadcaster') void this.end('closed');
        return;
      case 'removed':
        // Kicked: a DELETE on another instance, or an operator.
        void this.end(event.reason);
        return;
      case 'direct':
        if (event.payload.kind === 'json' && isWhepTrickle(event.payload.data) && event.payload.data.room === this.room) {
          this.trickle(event.payload.data.candidates);
        }
        return;
    }
  }

  close(): void {
    void this.end('closed');
  }
}
