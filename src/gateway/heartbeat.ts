import { randomBytes } from 'node:crypto';
import type { WebSocket } from 'ws';
import { AfterIoInterval } from './after-io-interval.js';

/**
 * The token of the ping a socket has not answered yet; null once answered. Only a pong that
 * carries that token answers it: unsolicited pongs (RFC 6455 allows them) and pongs replaying
 * an older token do not keep a peer alive, so a client that stopped reading cannot fake
 * liveness by sending pongs on a timer.
 */
const AWAITING = Symbol('herald.awaiting');
/** The slot (a set of sockets pinged on the same tick) a socket belongs to. */
const SLOT = Symbol('herald.slot');
/** A message arrived from the socket since its last visit. */
const HEARD = Symbol('herald.heard');
type Watched = WebSocket & { [AWAITING]?: Buffer | null; [SLOT]?: Set<Watched>; [HEARD]?: boolean };

/**
 * A message arrived on `ws` (called by the connection base for every frame): the peer is
 * alive this interval, so its next visit needs no ping. A socket that talks, such as an SDK
 * client with its own keepalive pings, costs the server no ping writes at all.
 */
export function heard(ws: WebSocket): void {
  const w = ws as Watched;
  if (w[SLOT]) w[HEARD] = true;
}

/** Shared listeners (no closure per socket). */
function onPong(this: Watched, data: Buffer): void {
  const token = this[AWAITING];
  if (token && data.length === token.length && data.equals(token)) this[AWAITING] = null;
}
function onClose(this: Watched): void {
  this[SLOT]?.delete(this);
  this[SLOT] = undefined;
}

/** At most this many ticks per interval, and ticks at least this far apart. */
const MAX_SLOTS = 50;
const MIN_TICK_MS = 100;
const TOKEN_BYTES = 8;

/**
 * WebSocket ping/pong, spread over the interval. Sockets are dealt round-robin into slots;
 * each tick visits one slot, so every socket is visited once per interval and the pings (one
 * write each) are spread out instead of one sweep over every socket that stalls the event loop
 * (with 100k sockets a sweep is thousands of writes in one go). On its visit a socket that has
 * not answered the previous ping with its token is terminated (its normal close path runs);
 * the others get a ping carrying this tick's random token, except those that sent a message
 * since the last visit: their liveness is shown, they need no ping (a peer that stops reading
 * but keeps sending is the send-buffer cap's to close, 4503). A peer that goes silent is
 * therefore gone within two intervals. Per socket: one set entry, three properties, two shared
 * listeners.
 */
export class Heartbeat {
  private readonly timer: AfterIoInterval;
  private readonly slots: Set<Watched>[];
  /** The slot the next watched socket joins, and the slot the next tick visits. */
  private nextSlot = 0;
  private turn = 0;

  constructor(readonly intervalMs: number) {
    const count = Math.max(1, Math.min(MAX_SLOTS, Math.floor(intervalMs / MIN_TICK_MS)));
    this.slots = Array.from({ length: count }, () => new Set<Watched>());
    // After the sockets are read, so pongs that arrived during a stall count.
    this.timer = new AfterIoInterval(() => this.tick(), intervalMs / count);
  }

  watch(ws: WebSocket): void {
    const w = ws as Watched;
    const slot = this.slots[this.nextSlot]!;
    this.nextSlot = (this.nextSlot + 1) % this.slots.length;
    w[AWAITING] = null;
    w[HEARD] = false;
    w[SLOT] = slot;
    slot.add(w);
    ws.on('pong', onPong);
    ws.on('close', onClose);
  }

  stop(): void {
    this.timer.stop();
  }

  private tick(): void {
    const slot = this.slots[this.turn]!;
    this.turn = (this.turn + 1) % this.slots.length;
    if (slot.size === 0) return;
    const token = randomBytes(TOKEN_BYTES);
    for (const ws of slot) {
      if (ws.readyState !== ws.OPEN) continue; // closing: ws finishes (or times out) the handshake
      if (ws[HEARD]) {
        // It spoke since the last visit: alive, whatever it did with an earlier ping.
        ws[HEARD] = false;
        ws[AWAITING] = null;
        continue;
      }
      if (ws[AWAITING] !== null) {
        slot.delete(ws);
        ws.terminate();
        continue;
      }
      ws[AWAITING] = token;
      ws.ping(token);
    }
  }
}
