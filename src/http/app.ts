import cors from '@koa/cors';
import Koa from 'koa';
import bodyParser from 'koa-bodyparser';
import type { Logger } from '../observability/logger.js';
import { healthRouter, type Readiness } from './health.js';
import { staticFiles } from './static.js';

export interface AppDeps {
  log: Logger;
  readiness: Readiness;
}

/** The Koa app: every HTTP route of DESIGN.md §2, each router in its own file. */
export function createApp({ log, readiness }: AppDeps): Koa {
  const app = new Koa();
  app.silent = true;
  app.on('error', (err) => log.warn({ err }, 'http error'));
  app.use(async (ctx, next) => {
    try {
      await next();
    } catch (err: any) {
      ctx.status = err.status ?? 500;
      ctx.body = { error: ctx.status >= 500 ? 'internal' : (err.expose ? err.message : 'bad-request') };
      if (ctx.status >= 500) log.error({ err, path: ctx.path }, 'http handler failed');
    }
    if (ctx.status === 404 && ctx.body === undefined) {
      ctx.status = 404;
      ctx.body = { error: 'not-found', path: ctx.path };
    }
  });
  app.use(cors());
  app.use(bodyParser({ jsonLimit: '64kb' }));
  app.use(healthRouter(readiness).routes());
  staticFiles(app);
  return app;
}
