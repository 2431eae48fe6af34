import type { Redis } from 'ioredis';
import type { InstanceStatus } from './cluster.js';

/** How long a report outlives its last refresh: a crashed instance shows as down this long. */
export const REPORT_TTL_MS = 60_000;

export interface InstanceKeys {
  /** The set of registered instances. */
  instances: string;
  /** A sorted set: instance id → when it last reported (epoch ms). */
  reporters: string;
  alive(id: string): string;
  report(id: string): string;
}

/**
 * The instances' status reports in Redis, for the console: each instance stores its own
 * report under its own key (same hash tag as its liveness key, so Redis Cluster is fine)
 * and any instance reads them all. Per-key reads, no MGET: the keys live in different slots.
 */
export class RedisInstanceReports {
  constructor(private readonly cmd: Redis, private readonly keys: InstanceKeys) {}

  async publish(id: string, report: object): Promise<void> {
    await Promise.all([
      this.cmd.set(this.keys.report(id), JSON.stringify(report), 'PX', REPORT_TTL_MS),
      this.cmd.zadd(this.keys.reporters, Date.now(), id),
    ]);
  }

  async list(): Promise<InstanceStatus[]> {
    await this.cmd.zremrangebyscore(this.keys.reporters, '-inf', Date.now() - REPORT_TTL_MS);
    const [registered, reporting] = await Promise.all([this.cmd.smembers(this.keys.instances), this.cmd.zrange(this.keys.reporters, '0', '-1')]);
    const ids = [...new Set([...registered, ...reporting])].sort();
    return Promise.all(
      ids.map(async (id) => {
        const [alive, report] = await Promise.all([this.cmd.exists(this.keys.alive(id)), this.cmd.get(this.keys.report(id))]);
        return { id, up: alive === 1, report: report ? (JSON.parse(report) as unknown) : null };
      }),
    );
  }
}
