import type { WebSocket } from 'ws';

/**
 * WebSocket ping/pong on one timer for all sockets. Every tick pings each socket that
 * answered the previous ping and terminates each that did not, so a silent peer is gone
 * within two intervals; termination fires the socket's normal close path.
 */
export class Heartbeat {
  private readonly alive = new Map<WebSocket, boolean>();
  private readonly timer: NodeJS.Timeout;
  /** Listeners shared by every socket (`this` is the socket): no closures per connection. */
  private readonly onPong: (this: WebSocket) => void;
  private readonly onClose: (this: WebSocket) => void;

  constructor(readonly intervalMs: number) {
    this.timer = setInterval(() => this.tick(), intervalMs);
    this.timer.unref();
    const alive = this.alive;
    this.onPong = function () {
      if (alive.has(this)) alive.set(this, true);
    };
    this.onClose = function () {
      alive.delete(this);
    };
  }

  watch(ws: WebSocket): void {
    this.alive.set(ws, true);
    ws.on('pong', this.onPong);
    ws.once('close', this.onClose);
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
