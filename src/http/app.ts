import cors from '@koa/cors';
import Koa from 'koa';
import type { Tokens } from '../auth/tokens.js';
import type { Config } from '../config.js';
import type { Hub } from '../core/hub.js';
import { compileTrust, originAllowed } from '../gateway/request.js';
import type { Logger } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';
import type { InstanceReporter } from '../observability/instance-reporter.js';
import { adminRouter } from './admin.js';
import { consoleRouter } from './console-api.js';
import { healthRouter, type Readiness } from './health.js';
import { iceServersRouter } from './ice-servers.js';
import { metricsRouter } from './metrics.js';
import { peerJsRouter } from './peerjs.js';
import { staticFiles } from './static.js';
import type { WhepEndpoint } from './whep.js';

export interface AppDeps {
  config: Config;
  log: Logger;
  hub: Hub;
  metrics: Metrics;
  tokens: Tokens | undefined;
  readiness: Readiness;
  reporter: InstanceReporter;
  whep: WhepEndpoint;
}

/** The Koa app: every HTTP route of docs/operations.md "HTTP endpoints", each router in its own file. */
export function createApp({ config, log, hub, metrics, tokens, readiness, reporter, whep }: AppDeps): Koa {
  const app = new Koa();
  app.silent = true;
  app.proxy = config.trustProxy !== false; // X-Forwarded-Proto/Host; the client address is request.ts clientIp
  app.use(async (ctx, next) => {
    // Koa parses Host only when a handler asks (ctx.href, ctx.origin); a malformed one such
    // as `[` would then throw deep inside it and come out as a 500 with a stack in the log.
    if (!wellFormedHost(ctx.get('host'))) {
      ctx.status = 400;
      ctx.body = { error: 'bad-request', message: 'malformed Host header' };
      return;
    }
    try {
      await next();
    } catch (err: any) {
      ctx.status = err.status ?? 500;
      ctx.body = { error: ctx.status >= 500 ? 'internal' : 'bad-request', message: err.expose ? err.message : undefined };
      if (ctx.status >= 500) log.error({ err, path: ctx.path }, 'http handler failed');
    }
    if (ctx.status === 404 && ctx.body === undefined) {
      ctx.status = 404;
      ctx.body = { error: 'not-found', path: ctx.path };
    }
  });
  app.use(whep.headers);
  // The same allow-list as WebSocket upgrades; a disallowed origin gets no CORS headers.
  app.use(cors({ origin: (ctx) => (originAllowed(ctx.get('origin') || undefined, config.allowedOrigins) ? ctx.get('origin') || '*' : '') }));
  const openAdmin = { trust: compileTrust(config.trustProxy), origins: config.adminOrigins };
  for (const router of [
    healthRouter(readiness),
    metricsRouter(metrics),
    iceServersRouter(config, tokens),
    adminRouter(hub, tokens, openAdmin),
    peerJsRouter(config, hub, tokens, openAdmin),
    consoleRouter(hub.cluster, reporter, tokens, openAdmin),
    whep.router(),
  ]) {
    app.use(router.routes()).use(router.allowedMethods());
  }
  staticFiles(app);
  return app;
}

function wellFormedHost(host: string): boolean {
  if (host === '') return true; // HTTP/1.0: no Host at all
  try {
    new URL(`http://${host}/`);
    return true;
  } catch {
    return false;
  }
}
