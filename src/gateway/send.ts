import type { WebSocket } from 'ws';
import { CLOSE } from '../protocol/close-codes.js';

interface Corkable {
  cork(): void;
  uncork(): void;
}

/** Sockets corked for the current tick. */
const corked = new WeakSet<Corkable>();

function uncork(socket: Corkable): void {
  corked.delete(socket);
  socket.uncork();
}

/**
 * Sends a text frame; everything one tick sends to a socket leaves in one write. The first
 * send of a tick corks the TCP socket and a nextTick uncorks it, so order is kept (close frames
 * queue behind). Without it `ws` makes one writev syscall per frame, the largest cost under
 * relay load (docs/performance.md). `ws` exposes no cork API, hence its `_socket`.
 */
/** Cuts a close reason to the 123 bytes a close frame allows (ws throws on more). */
function closeReason(reason: string): string {
  if (Buffer.byteLength(reason) <= 123) return reason;
  let cut = reason.slice(0, 120);
  while (Buffer.byteLength(cut) > 120) cut = cut.slice(0, -1);
  // Don't leave half a surrogate pair behind.
  if (/[\uD800-\uDBFF]$/.test(cut)) cut = cut.slice(0, -1);
  return cut + '...';
}

/** Closes with `code` and a reason cut to fit, whatever protocol the socket speaks. */
export function closeSocket(ws: WebSocket, code: number, reason: string): void {
  ws.close(code, closeReason(reason));
}

/** The send-buffer cap of a socket, set once at accept (see `capSendBuffer`). */
const SEND_CAP = Symbol('herald.sendCap');
type Capped = WebSocket & { [SEND_CAP]?: number };

/** How long a peer closed for not reading gets to take the close frame before it is cut off. */
const OVERFLOW_GRACE_MS = 1000;

/**
 * Caps what may wait, unsent, for this socket (ws `bufferedAmount`: bytes queued in the TCP
 * socket that the kernel would not take). A peer that stops reading would otherwise make
 * every message addressed to it a permanent allocation here; past the cap it is treated as
 * dead: closed with 4503 and cut off shortly after, whatever pongs it keeps sending.
 */
export function capSendBuffer(ws: WebSocket, maxBytes: number): void {
  if (maxBytes > 0) (ws as Capped)[SEND_CAP] = maxBytes;
}

function overflowed(ws: WebSocket, cap: number): void {
  closeSocket(ws, CLOSE.slowConsumer, `send buffer over ${cap} bytes: the peer is not reading`);
  setTimeout(() => ws.terminate(), OVERFLOW_GRACE_MS).unref();
}

export function sendText(ws: WebSocket, text: string): void {
  if (ws.readyState !== ws.OPEN) return;
  const cap = (ws as Capped)[SEND_CAP];
  if (cap !== undefined && ws.bufferedAmount > cap) return overflowed(ws, cap);
  const socket = (ws as unknown as { _socket?: Corkable })._socket;
  if (socket && !corked.has(socket)) {
    corked.add(socket);
    socket.cork();
    process.nextTick(uncork, socket);
  }
  ws.send(text);
}
