import type { Redis } from 'ioredis';
import type { Context } from './context.js';

/** How often the link is looked at. */
const PROBE_EVERY_MS = 1000;
/** A probe not echoed within this long means the link is silent. */
const PROBE_TIMEOUT_MS = 3000;

/**
 * Notices a Redis link that went silent without closing (a partition, a hung failover):
 * TCP would take many minutes to give up on it, and ioredis stays `ready` all along.
 * As the centrifuge library's pub/sub self-probe does, traffic received on the subscriber
 * proves the link; after a quiet interval the instance publishes to its own probe channel
 * through the command connection and expects the message back on the subscriber, which
 * proves both connections and the subscription itself. Before the subscription exists
 * (registering), a PING on each connection stands in. No echo within PROBE_TIMEOUT_MS:
 * `silent()` runs (the instance goes not-ready and reconnects both connections).
 * One Redis only: on a Redis Cluster each master is watched by src/cluster/redis/masters.ts.
 */
export class LinkProbe {
  /** When the subscriber last received anything (any message proves the link). */
  private heard = Date.now();
  /** When the outstanding probe was sent, if one is. */
  private sentAt: number | undefined;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly ctx: Context,
    private readonly silent: (quietMs: number) => void,
  ) {}

  start(): void {
    const { conn } = this.ctx;
    if (conn.sharded) return;
    const sub = conn.sub as Redis;
    sub.on('message', this.hear);
    sub.on('ready', this.hear);
    this.timer = setInterval(() => this.tick(), PROBE_EVERY_MS);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
  }

  private readonly hear = (): void => {
    this.heard = Date.now();
  };

  private tick(): void {
    const { conn, bus, cmd, keys, me, stopping } = this.ctx;
    const now = Date.now();
    if (stopping || !conn.ready) {
      this.sentAt = undefined;
      this.heard = now;
      return;
    }
    if (this.sentAt !== undefined && this.heard >= this.sentAt) this.sentAt = undefined;
    if (now - this.heard < PROBE_EVERY_MS) return; // traffic flows
    if (this.sentAt === undefined) {
      this.sentAt = now;
      if (bus.subscribed) {
        cmd.publish(keys.probeChannel(me), '1').catch(() => {});
      } else {
        // Not subscribed yet: a PING on each connection is the echo.
        Promise.all([cmd.ping(), conn.sub.ping()]).then(this.hear, () => {});
      }
      return;
    }
    if (now - this.sentAt < PROBE_TIMEOUT_MS) return;
    const quiet = now - this.heard;
    this.sentAt = undefined;
    this.heard = now;
    this.silent(quiet);
  }
}
