/**
 * Keeps one connection's messages in arrival order when some of them need async work
 * (joining a room goes through the cluster). Synchronous handling, the common case, costs
 * no promise and no queueing.
 */
export class Inbox {
  /** Messages that arrived while busy; allocated only when that happens. */
  private backlog: string[] | undefined;
  private busy = false;

  constructor(private readonly handle: (message: string) => void | Promise<void>) {}

  push(message: string): void {
    if (this.busy) {
      (this.backlog ??= []).push(message);
      return;
    }
    const pending = this.handle(message);
    if (pending) void this.waitFor(pending);
  }

  /** Holds later messages until `work` settles (used while a connection is opening). */
  async waitFor(work: Promise<unknown>): Promise<void> {
    this.busy = true;
    try {
      await work.catch(() => undefined); // handlers report their own errors
      while (this.backlog?.length) {
        const next = this.handle(this.backlog.shift()!);
        if (next) await next.catch(() => undefined);
      }
      this.backlog = undefined;
    } finally {
      this.busy = false;
    }
  }
}
