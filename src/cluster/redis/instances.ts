import type { InstanceStatus } from '../../core/cluster.js';
import { HeraldError } from '../../core/errors.js';
import type { Context } from './context.js';

/** How long a report outlives its last refresh: a crashed instance shows as down this long. */
export const REPORT_TTL_MS = 60_000;

/**
 * The instances' status reports, for the operators' console: each instance stores its own
 * report under its own key (same hash tag as its liveness key) and any instance reads them
 * all. Per-key reads, no MGET: on a Redis Cluster the keys live in different slots.
 */
export class InstanceReports {
  constructor(private readonly ctx: Context) {}

  async publish(report: object): Promise<void> {
    const { cmd, keys, me } = this.requireHealthy();
    await Promise.all([cmd.set(keys.report(me), JSON.stringify(report), 'PX', REPORT_TTL_MS), cmd.zadd(keys.reporters, Date.now(), me)]);
  }

  async list(): Promise<InstanceStatus[]> {
    const { cmd, keys } = this.requireHealthy();
    await cmd.zremrangebyscore(keys.reporters, '-inf', Date.now() - REPORT_TTL_MS);
    const [registered, reporting] = await Promise.all([cmd.smembers(keys.instances), cmd.zrange(keys.reporters, '0', '-1')]);
    const ids = [...new Set([...registered, ...reporting])].sort();
    return Promise.all(
      ids.map(async (id) => {
        const [alive, report] = await Promise.all([cmd.exists(keys.instance(id, 'alive')), cmd.get(keys.report(id))]);
        return { id, up: alive === 1, report: report ? (JSON.parse(report) as unknown) : null };
      }),
    );
  }

  private requireHealthy(): Context {
    if (!this.ctx.healthy) throw new HeraldError('unavailable', 'the cluster directory (redis) is unreachable');
    return this.ctx;
  }
}
