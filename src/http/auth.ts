import type { Context, Next } from 'koa';
import { tokenFrom, type Tokens } from '../auth/tokens.js';
import { isHeraldError } from '../core/errors.js';
import type { Grant, GrantRole } from '../core/grant.js';

/**
 * Koa middleware: with a secret set, the request needs a valid token (Bearer or ?token=),
 * and `role` in it when given. Sets ctx.state.grant. Without a secret (dev mode) it passes.
 */
export function requireToken(tokens: Tokens | undefined, role?: GrantRole) {
  return async (ctx: Context, next: Next) => {
    if (tokens) {
      let grant: Grant;
      try {
        grant = await tokens.verify(tokenFrom(new URL(ctx.href), ctx.get('authorization') || undefined));
      } catch (err) {
        if (!isHeraldError(err)) throw err;
        ctx.status = 401;
        ctx.body = { error: 'unauthorized', message: err.message };
        return;
      }
      if (role && !grant.roles.has(role)) {
        ctx.status = 403;
        ctx.body = { error: 'forbidden', message: `the ${role} role is required` };
        return;
      }
      ctx.state.grant = grant;
    }
    await next();
  };
}
