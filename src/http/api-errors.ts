import type { Context, Next } from 'koa';
import { isHeraldError } from '../core/errors.js';
import { httpStatusOf } from '../protocol/error-table.js';

/**
 * Koa middleware: a HeraldError thrown by a route (e.g. `unavailable` while Redis is away)
 * becomes its HTTP status from the error table, with the same `{error, message}` body as
 * every API answer. Anything else is left to Koa (a logged 500).
 */
export async function apiErrors(ctx: Context, next: Next): Promise<void> {
  try {
    await next();
  } catch (err) {
    if (!isHeraldError(err)) throw err;
    ctx.status = httpStatusOf(err.code)[0];
    ctx.body = { error: err.code, message: err.message };
  }
}

/** Answers `status` with the API's error body. */
export function refuse(ctx: Context, status: number, error: string, message: string): void {
  ctx.status = status;
  ctx.body = { error, message };
}
