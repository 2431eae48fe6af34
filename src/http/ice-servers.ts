import Router from '@koa/router';
import type { Tokens } from '../auth/tokens.js';
import { iceServersFor } from '../auth/turn.js';
import type { Config } from '../config.js';
import { requireToken } from './auth.js';

/** GET /api/ice-servers: the STUN/TURN list, with fresh TURN credentials for the caller. */
export function iceServersRouter(config: Config, tokens: Tokens | undefined): Router {
  const router = new Router();
  router.get('/api/ice-servers', requireToken(tokens), (ctx) => {
    ctx.set('Cache-Control', 'no-store');
    ctx.body = { iceServers: iceServersFor(config, ctx.state.grant?.sub) };
  });
  return router;
}
