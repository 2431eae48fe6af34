import type { WebSocket } from 'ws';

/**
 * WebSocket ping/pong on one timer for all sockets. Every tick pings each socket that
 * answered the previous ping and terminates each that did not, so a silent peer is gone
 * within two intervals; termination fires the socket's normal close path.
 */
export class Heartbeat {
  private readonly alive = new Map<WebSocket, boolean>();
  private readonly timer: NodeJS.Timeout;

  constructor(readonly intervalMs: number) {
    this.timer = setInterval(() => this.tick(), intervalMs);
    this.timer.unref();
  }

  watch(ws: WebSocket): void {
    this.alive.set(ws, true);
    ws.on('pong', () => this.alive.set(ws, true));
    ws.once('close', () => this.alive.delete(ws));
  }

  stop(): void {
    clearInterval(this.timer);
    this.alive.clear();
  }

  private tick(): void {
    for (const [ws, answered] of this.alive) {
      if (!answered) {
        this.alive.delete(ws);
        ws.terminate();
        continue;
      }
      this.alive.set(ws, false);
      ws.ping();
    }
  }
}
