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
