import type { WebSocket } from 'ws';

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

export function sendText(ws: WebSocket, text: string): void {
  if (ws.readyState !== ws.OPEN) return;
  const socket = (ws as unknown as { _socket?: Corkable })._socket;
  if (socket && !corked.has(socket)) {
    corked.add(socket);
    socket.cork();
    process.nextTick(uncork, socket);
  }
  ws.send(text);
}
