import type { Context, Next } from 'koa';
import { isHeraldError } from '../core/errors.js';

/** HTTP status for each error code an API route may answer with. */
const STATUS: Record<string, number> = { 'bad-request': 400, forbidden: 403, 'not-found': 404, unavailable: 503 };

/**
 * Koa middleware: a HeraldError thrown by a route (e.g. `unavailable` while Redis is away)
 * becomes its HTTP status with the same `{error, message}` body as every API answer.
 */
export async function apiErrors(ctx: Context, next: Next): Promise<void> {
  try {
    await next();
  } catch (err) {
    if (!isHeraldError(err) || !(err.code in STATUS)) throw err;
    ctx.status = STATUS[err.code]!;
    ctx.body = { error: err.code, message: err.message };
  }
}

/** Answers `status` with the API's error body. */
export function refuse(ctx: Context, status: number, error: string, message: string): void {
  ctx.status = status;
  ctx.body = { error, message };
}
