import type { Registry } from 'prom-client';
import type { Cluster } from '../core/cluster.js';
import type { Logger } from './logger.js';
import { RateHistory, type History } from './rate-history.js';

/** Chart resolution: one bucket per 2 s, 150 buckets = the last 5 minutes. */
export const REPORT_STEP_MS = 2000;
export const REPORT_BUCKETS = 150;

/** Counters whose growth per bucket the charts show, by series name. */
const COUNTERS = {
  messages: 'herald_messages_relayed_total',
  errors: 'herald_errors_total',
  joins: 'herald_joins_total',
  leaves: 'herald_leaves_total',
} as const;

/** The series of a report's history that count events; `connections` is a gauge reading. */
export const COUNTED_SERIES: readonly string[] = Object.keys(COUNTERS);
export const GAUGE_SERIES: readonly string[] = ['connections'];

/** What each instance publishes for the console (GET /api/instances, /api/rates). */
export interface InstanceReport {
  id: string;
  startedAt: string;
  reportedAt: string;
  /** Why it is not ready (draining, cluster unavailable), or null. */
  notReady: string | null;
  /** Open connections by protocol: whatever protocols the gateway reports. */
  connections: Record<string, number>;
  /** Rooms with members on this instance. */
  rooms: number;
  history: History;
}

export interface ReporterSources {
  registry: Registry;
  cluster: Cluster;
  log: Logger;
  notReadyReason(): string | undefined;
}

/**
 * Every REPORT_STEP_MS (at wall-clock multiples of it): reads the Prometheus counters and
 * gauges, records how much they moved in the bucket that just ended, and publishes this
 * instance's report through the cluster, so that any instance can answer for all of them.
 * Reading prom-client keeps the hot path untouched: no second set of counters.
 */
export class InstanceReporter {
  readonly history = new RateHistory(REPORT_STEP_MS, REPORT_BUCKETS);
  private readonly startedAt = new Date().toISOString();
  private last: Record<string, number> | undefined;
  private timer: NodeJS.Timeout | undefined;
  private running = false;

  constructor(private readonly sources: ReporterSources) {}

  start(): void {
    this.running = true;
    void this.tick();
  }

  stop(): void {
    this.running = false;
    clearTimeout(this.timer);
  }

  /** This instance's report as of now (the history up to the last completed bucket). */
  async current(): Promise<InstanceReport> {
    return this.build(await this.connections());
  }

  private schedule(): void {
    if (!this.running) return;
    // Just past the next boundary, so a tick always closes exactly one bucket.
    this.timer = setTimeout(() => void this.tick(), REPORT_STEP_MS - (Date.now() % REPORT_STEP_MS) + 20);
    this.timer.unref();
  }

  private async tick(): Promise<void> {
    try {
      const [totals, connections] = await Promise.all([this.counters(), this.connections()]);
      const bucket = Math.floor(Date.now() / REPORT_STEP_MS) * REPORT_STEP_MS - REPORT_STEP_MS;
      if (this.last) {
        const grew: Record<string, number> = {};
        for (const name of Object.keys(COUNTERS)) grew[name] = Math.max(0, totals[name]! - (this.last[name] ?? 0));
        grew.connections = Object.values(connections).reduce((sum, n) => sum + n, 0);
        this.history.record(bucket, grew);
      }
      this.last = totals;
      if (this.sources.cluster.healthy) await this.sources.cluster.reportInstance(await this.build(connections));
    } catch (err) {
      this.sources.log.debug({ err: String(err) }, 'instance report failed');
    } finally {
      this.schedule();
    }
  }

  /** Each chart counter's total so far (all label values added up). */
  private async counters(): Promise<Record<string, number>> {
    const out: Record<string, number> = {};
    for (const [name, metric] of Object.entries(COUNTERS)) {
      const found = this.sources.registry.getSingleMetric(metric);
      out[name] = found ? (await found.get()).values.reduce((sum, v) => sum + v.value, 0) : 0;
    }
    return out;
  }

  /** Open connections by protocol, as the `herald_connections` gauge reports them. */
  private async connections(): Promise<Record<string, number>> {
    const out: Record<string, number> = {};
    const gauge = this.sources.registry.getSingleMetric('herald_connections');
    if (gauge) for (const v of (await gauge.get()).values) out[String(v.labels.protocol)] = v.value;
    return out;
  }

  private async build(connections: Record<string, number>): Promise<InstanceReport> {
    const rooms = this.sources.registry.getSingleMetric('herald_rooms');
    return {
      id: this.sources.cluster.instanceId,
      startedAt: this.startedAt,
      reportedAt: new Date().toISOString(),
      notReady: this.sources.notReadyReason() ?? null,
      connections,
      rooms: rooms ? (await rooms.get()).values[0]?.value ?? 0 : 0,
      history: this.history.snapshot(),
    };
  }
}
