import Router from '@koa/router';
import type { Context, Next } from 'koa';
import { z } from 'zod';
import { tokenFrom, type Tokens } from '../auth/tokens.js';
import type { Cluster } from '../core/cluster.js';
import type { Grant } from '../core/grant.js';
import { HeraldError } from '../core/errors.js';
import {
  COUNTED_SERIES,
  GAUGE_SERIES,
  REPORT_BUCKETS,
  REPORT_STEP_MS,
  type InstanceReport,
  type InstanceReporter,
} from '../observability/instance-reporter.js';
import { sumHistories, type History } from '../observability/rate-history.js';
import { apiErrors, refuse } from './api-errors.js';
import { adminAccess, type OpenAdminPolicy } from './admin.js';

/** Counted series are answered per second; gauges are summed as they are. */
const COUNTED = new Set(COUNTED_SERIES);
const SERIES = [...COUNTED_SERIES, ...GAUGE_SERIES];

/** Service-wide figures are for `*` admin tokens: a room-scoped operator sees only its room. */
async function serviceWide(ctx: Context, next: Next): Promise<void> {
  const grant = ctx.state.grant as Grant | undefined;
  if (grant && grant.room !== '*') {
    refuse(ctx, 403, 'forbidden', `this admin token is for room ${grant.room} only; instances and rates need room '*'`);
    return;
  }
  await next();
}

/** As far back as the histories reach: 5 minutes. */
const MAX_MINUTES = (REPORT_BUCKETS * REPORT_STEP_MS) / 60_000;
const ratesQuery = z.object({ minutes: z.coerce.number().int().min(1).max(MAX_MINUTES).default(MAX_MINUTES) });

/** The reports of every instance, this one's replaced by its freshest (not the one in Redis). */
async function reportsOf(cluster: Cluster, reporter: InstanceReporter) {
  const self = await reporter.current();
  return (await cluster.instances()).map((i) => ({
    id: i.id,
    up: i.up,
    report: (i.id === self.id ? self : i.report) as InstanceReport | null,
  }));
}

/**
 * What the operators' console reads besides the room API (docs/operations.md "Admin API"):
 * who the caller is, the instances, and the rates for the charts, all cluster-wide.
 */
export function consoleRouter(cluster: Cluster, reporter: InstanceReporter, tokens: Tokens | undefined, open: OpenAdminPolicy): Router {
  const router = new Router({ prefix: '/api' });
  const admin = adminAccess(tokens, open);

  /** Presenting no token at all is "nobody" (200), so the console can tell dev mode from sign-in needed. */
  const anonymous = async (ctx: Context, next: Next) => {
    if (tokens && !tokenFrom(new URL(ctx.href), ctx.get('authorization') || undefined)) {
      ctx.set('Cache-Control', 'no-store');
      ctx.body = { signedIn: false, open: false, identity: null, room: null, expiresAt: null, instance: cluster.instanceId };
      return;
    }
    await next();
  };

  router.get('/me', apiErrors, anonymous, admin, (ctx) => {
    const grant = ctx.state.grant as Grant | undefined;
    ctx.set('Cache-Control', 'no-store');
    ctx.body = {
      signedIn: true,
      open: !tokens,
      identity: grant?.sub ?? null,
      room: grant?.room ?? '*',
      expiresAt: grant?.exp ? new Date(grant.exp * 1000).toISOString() : null,
      instance: cluster.instanceId,
    };
  });

  router.get('/instances', apiErrors, admin, serviceWide, async (ctx) => {
    const instances = (await reportsOf(cluster, reporter)).map(({ id, up, report }) => ({
      id,
      up,
      self: id === cluster.instanceId,
      startedAt: report?.startedAt ?? null,
      reportedAt: report?.reportedAt ?? null,
      notReady: report?.notReady ?? null,
      connections: report?.connections ?? {},
      rooms: report?.rooms ?? 0,
    }));
    const connections: Record<string, number> = {};
    for (const i of instances) {
      if (!i.up) continue;
      for (const [protocol, n] of Object.entries(i.connections)) connections[protocol] = (connections[protocol] ?? 0) + n;
    }
    ctx.set('Cache-Control', 'no-store');
    ctx.body = { instances, connections };
  });

  router.get('/rates', apiErrors, admin, serviceWide, async (ctx) => {
    const parsed = ratesQuery.safeParse(ctx.query);
    if (!parsed.success) throw new HeraldError('bad-request', `minutes: ${parsed.error.issues[0]!.message}`);
    const count = (parsed.data.minutes * 60_000) / REPORT_STEP_MS;
    // The newest bucket every instance has had a second to publish.
    const lastStart = Math.floor((Date.now() - 1000) / REPORT_STEP_MS) * REPORT_STEP_MS - REPORT_STEP_MS;
    const histories = (await reportsOf(cluster, reporter)).flatMap((i) => (i.report?.history ? [i.report.history as History] : []));
    const sum = sumHistories(histories, REPORT_STEP_MS, lastStart, count);
    const perSecond = 1000 / REPORT_STEP_MS;
    const series: Record<string, number[]> = {};
    for (const name of SERIES) sum.series[name] ??= new Array<number>(count).fill(0);
    for (const [name, values] of Object.entries(sum.series)) {
      series[name] = COUNTED.has(name) ? values.map((v) => Math.round(v * perSecond * 100) / 100) : values;
    }
    ctx.set('Cache-Control', 'no-store');
    ctx.body = { start: new Date(sum.start).toISOString(), stepMs: REPORT_STEP_MS, instances: histories.length, series };
  });
  return router;
}
