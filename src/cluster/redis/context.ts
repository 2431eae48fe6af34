import type { Logger } from '../../observability/logger.js';
import type { LocalDelivery } from '../local.js';
import type { Admin } from './admin.js';
import type { Bus } from './bus.js';
import type { RedisConnection } from './connection.js';
import type { Keys } from './keys.js';
import type { Masters } from './masters.js';
import type { Membership } from './membership.js';
import type { PeerClaims } from './peers.js';
import type { Registration } from './registration.js';
import type { Replicas } from './replicas.js';

/**
 * What the concerns of the Redis cluster share: who this instance is, its connections, and
 * each other (wired once by RedisCluster). Each concern keeps its own state; none reaches
 * into another's fields.
 */
export class Context {
  stopping = false;
  private readonly inflight = new Set<Promise<unknown>>();
  private readonly timers = new Set<NodeJS.Timeout>();

  replicas!: Replicas;
  bus!: Bus;
  membership!: Membership;
  peers!: PeerClaims;
  registration!: Registration;
  masters!: Masters;
  admin!: Admin;

  constructor(
    readonly me: string,
    readonly conn: RedisConnection,
    readonly keys: Keys,
    readonly log: Logger,
    readonly local: LocalDelivery,
  ) {}

  get cmd(): RedisConnection['cmd'] {
    return this.conn.cmd;
  }

  /** Registered and connected: cluster-wide operations can run (drives /readyz). */
  get healthy(): boolean {
    return this.registration.registered && this.conn.ready;
  }

  /** Whether one room's slot can be reached now (on one Redis: whether Redis can). */
  roomAvailable(roomId: string): boolean {
    return this.healthy && this.masters.roomUp(roomId);
  }

  /** Keeps `work` in the set `stop()` waits for. */
  track<T>(work: Promise<T>): Promise<T> {
    this.inflight.add(work);
    const done = () => this.inflight.delete(work);
    work.then(done, done);
    return work;
  }

  async settle(): Promise<void> {
    await Promise.allSettled([...this.inflight]);
  }

  /** Runs `work` after `ms` unless stopped first; failures are logged, never thrown. */
  later(ms: number, work: () => Promise<void>): void {
    const timer = setTimeout(() => {
      this.timers.delete(timer);
      void work().catch((err: unknown) => this.log.debug({ err: String(err) }, 'deferred cluster work failed'));
    }, ms);
    timer.unref();
    this.timers.add(timer);
  }

  cancelTimers(): void {
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
  }
}
