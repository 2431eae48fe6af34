/** Per-connection limits, the same for both protocols. */
export interface GuardLimits {
  /** Messages allowed at once before the sustained rate applies. */
  rateBurst: number;
  /** Sustained messages per second. */
  ratePerSecond: number;
  /** Close a connection that has joined no room after this long (0 = never). */
  joinTimeoutMs: number;
}

export type Violation = 'rate-abuse' | 'join-timeout';

/**
 * A token bucket for the message rate, plus the join timeout. A message over the rate is
 * refused (the adapter answers `rate-limited`); a connection that keeps sending while
 * refused, `rateBurst` more times, is reported as abuse so the adapter can close it.
 */
export class Guard {
  private tokens: number;
  private refilledAt = performance.now();
  private strikes = 0;
  private joinTimer: NodeJS.Timeout | undefined;
  private disposed = false;

  constructor(
    private readonly limits: GuardLimits,
    private readonly onViolation: (violation: Violation) => void,
  ) {
    this.tokens = limits.rateBurst;
    this.left();
  }

  /** The connection is in no room (again): the join timeout runs from now. */
  left(): void {
    if (this.limits.joinTimeoutMs === 0 || this.joinTimer || this.disposed) return;
    this.joinTimer = setTimeout(() => this.onViolation('join-timeout'), this.limits.joinTimeoutMs);
    this.joinTimer.unref();
  }

  /** Takes one token; false when the message must be refused. */
  allow(): boolean {
    const now = performance.now();
    const { rateBurst, ratePerSecond } = this.limits;
    this.tokens = Math.min(rateBurst, this.tokens + ((now - this.refilledAt) * ratePerSecond) / 1000);
    this.refilledAt = now;
    if (this.tokens >= 1) {
      this.tokens -= 1;
      this.strikes = 0;
      return true;
    }
    if (++this.strikes > rateBurst) this.onViolation('rate-abuse');
    return false;
  }

  /** The connection is in a room: the join timeout no longer applies. */
  joined(): void {
    clearTimeout(this.joinTimer);
    this.joinTimer = undefined;
  }

  dispose(): void {
    clearTimeout(this.joinTimer);
    this.joinTimer = undefined;
    this.disposed = true;
  }
}
