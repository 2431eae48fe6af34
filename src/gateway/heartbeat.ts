import type { WebSocket } from 'ws';

/** Set on a socket when it answers a ping; cleared when the next ping goes out. */
const ANSWERED = Symbol('herald.answered');
type Watched = WebSocket & { [ANSWERED]?: boolean };

function onPong(this: Watched): void {
  this[ANSWERED] = true;
}

/**
 * WebSocket ping/pong on one timer for all sockets. Every tick pings each socket that
 * answered the previous ping and terminates each that did not, so a silent peer is gone
 * within two intervals; termination fires the socket's normal close path. It walks the
 * server's own client set and keeps one flag on each socket: no per-socket map entry or
 * closure.
 */
export class Heartbeat {
  private readonly timer: NodeJS.Timeout;

  constructor(
    readonly intervalMs: number,
    private readonly sockets: Iterable<WebSocket>,
  ) {
    this.timer = setInterval(() => this.tick(), intervalMs);
    this.timer.unref();
  }

  watch(ws: WebSocket): void {
    (ws as Watched)[ANSWERED] = true;
    ws.on('pong', onPong);
  }

  stop(): void {
    clearInterval(this.timer);
  }

  private tick(): void {
    for (const ws of this.sockets as Iterable<Watched>) {
      const answered = ws[ANSWERED];
      if (answered === undefined) continue; // not watched (yet)
      if (!answered) {
        ws.terminate();
        continue;
      }
      ws[ANSWERED] = false;
      ws.ping();
    }
  }
}
