import Router from '@koa/router';
import type { Metrics } from '../observability/metrics.js';

/** GET /metrics: Prometheus text exposition. */
export function metricsRouter(metrics: Metrics): Router {
  const router = new Router();
  router.get('/metrics', async (ctx) => {
    ctx.type = metrics.registry.contentType;
    ctx.body = await metrics.registry.metrics();
  });
  return router;
}
