/**
 * A repeating timer whose callback runs after the event loop's I/O phase (on setImmediate).
 * After a stall (GC, a busy handler) Node runs due timers before it reads the sockets, so a
 * liveness check run straight from its timer would judge peers before reading the heartbeats
 * and pongs already waiting for it. Unref'd: it never keeps the process alive.
 */
export class AfterIoInterval {
  private readonly timer: NodeJS.Timeout;
  private stopped = false;

  constructor(run: () => void, everyMs: number) {
    this.timer = setInterval(() => setImmediate(() => this.stopped || run()), everyMs);
    this.timer.unref();
  }

  stop(): void {
    this.stopped = true;
    clearInterval(this.timer);
  }
}
