import type { PeerEvent } from './types.js';

/**
 * Room-less addressing (PeerJS): any peer may message any other peer by id. There is no room
 * and no presence, so connecting costs one map entry and one directory claim, and a million
 * such peers are a million independent entries, never one room of a million members.
 *
 * A message for an id that is not connected anywhere waits for it for a while (the queue is
 * the cluster's: a peer may connect on another instance); when the wait runs out, its sender
 * is told once per (sender, target) pair.
 */

/** One message waiting for its recipient. */
export interface QueuedDirect {
  from: string;
  /** When it was queued (ms since the epoch). */
  at: number;
  event: PeerEvent;
}

/** What a cluster provides for room-less delivery. */
export interface DirectMail {
  /**
   * Hands `event` to the instance holding `to`, or queues it for `to` for `ttlMs` (at most
   * `max` waiting per recipient). Resolves 'sent', 'queued' or 'full' (queue at its cap).
   */
  post(to: string, queued: QueuedDirect, ttlMs: number, max: number): Promise<'sent' | 'queued' | 'full'>;
  /** Removes and returns, oldest first, what waits for `to` (called once it has connected). */
  collect(to: string): Promise<QueuedDirect[]>;
  /** Drops every message of `from` still waiting for `to`; resolves how many there were. */
  expire(to: string, from: string): Promise<number>;
}

/** Past this many remembered refusals, the stale ones are swept (bounds memory in an outage). */
const MAX_REFUSED_PAIRS = 10_000;

/** The key of a (sender, target) pair. */
const pairKey = (from: string, to: string): string => `${from}\n${to}`;

/**
 * One timer per (sender, target) pair with messages waiting: when the first has waited
 * `ttlMs`, all of the pair's waiting messages are dropped together and the sender is told
 * once, as PeerServer clears a target's whole queue (an OFFER and its CANDIDATEs expire
 * as one). A message of the pair queued after that starts a new wait.
 *
 * A message the cluster could not take at all (Redis away) is answered at once, also once
 * per pair: an OFFER and the CANDIDATEs after it get one EXPIRE, not one each.
 */
export class DirectExpiry {
  private readonly timers = new Map<string, NodeJS.Timeout>();
  /** Pairs whose sender was told the cluster refused a message, until when (performance.now()). */
  private readonly refused = new Map<string, number>();

  constructor(
    private readonly mail: () => DirectMail,
    private readonly ttlMs: number,
    private readonly expired: (from: string, to: string) => void,
  ) {}

  get pending(): number {
    return this.timers.size;
  }

  /** True while messages of the pair wait (their sender will be told when they expire). */
  waiting(from: string, to: string): boolean {
    return this.timers.has(pairKey(from, to));
  }

  /**
   * The cluster could not take a message from `from` to `to`: true when the sender is to be
   * told now, false when it was told within the last `ttlMs` (or its queued messages will be).
   */
  refusedNow(from: string, to: string): boolean {
    const key = pairKey(from, to);
    const now = performance.now();
    if (this.timers.has(key) || (this.refused.get(key) ?? 0) > now) return false;
    if (this.refused.size >= MAX_REFUSED_PAIRS) for (const [k, until] of this.refused) if (until <= now) this.refused.delete(k);
    this.refused.set(key, now + this.ttlMs);
    return true;
  }

  /** A message from `from` to `to` was queued at `at`. */
  queued(from: string, to: string, at: number): void {
    const key = pairKey(from, to);
    if (this.timers.has(key)) return;
    this.arm(key, from, to, at + this.ttlMs - Date.now());
  }

  stop(): void {
    for (const timer of this.timers.values()) clearTimeout(timer);
    this.timers.clear();
    this.refused.clear();
  }

  private arm(key: string, from: string, to: string, ms: number): void {
    const timer = setTimeout(() => void this.fire(key, from, to), Math.max(0, ms));
    timer.unref();
    this.timers.set(key, timer);
  }

  private async fire(key: string, from: string, to: string): Promise<void> {
    this.timers.delete(key);
    let dropped: number;
    try {
      dropped = await this.mail().expire(to, from);
    } catch {
      // The queue cannot be reached (Redis slow or away): the sender is told all the same, and
      // what is left in the queue goes with its key's TTL.
      dropped = 1;
    }
    if (dropped > 0) this.expired(from, to);
  }
}
