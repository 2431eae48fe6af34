/**
 * Coalesces membership changes into at most one "counts" update per room per interval, so a
 * join storm of N viewers costs each member one update per interval, not N.
 */
export class Presence {
  private readonly dirty = new Set<string>();
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly intervalMs: number,
    private readonly flush: (roomId: string) => void,
  ) {}

  touch(roomId: string): void {
    this.dirty.add(roomId);
    if (this.timer) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      const rooms = [...this.dirty];
      this.dirty.clear();
      for (const id of rooms) this.flush(id);
    }, this.intervalMs);
    this.timer.unref();
  }

  stop(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    this.dirty.clear();
  }
}
