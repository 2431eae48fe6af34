import Router from '@koa/router';

export interface Readiness {
  /** Why the server is not ready, or undefined when it is. */
  notReadyReason(): string | undefined;
}

/** Liveness and readiness probes for load balancers and orchestrators. */
export function healthRouter(readiness: Readiness): Router {
  const router = new Router();
  router.get('/healthz', (ctx) => {
    ctx.body = { status: 'ok' };
  });
  router.get('/readyz', (ctx) => {
    const reason = readiness.notReadyReason();
    ctx.status = reason ? 503 : 200;
    ctx.body = reason ? { status: 'not-ready', reason } : { status: 'ready' };
  });
  return router;
}
