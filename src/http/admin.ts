import Router from '@koa/router';
import type { Tokens } from '../auth/tokens.js';
import type { Context, Next } from 'koa';
import type { Grant } from '../core/grant.js';
import type { Hub } from '../core/hub.js';
import { requireToken } from './auth.js';
import { clientIp, type Trust } from '../gateway/request.js';

/** Who may use the admin API when there is no secret (open dev mode). */
export interface OpenAdminPolicy {
  trust: Trust;
  /** Origins besides the server's own whose pages may use it (HERALD_ADMIN_ORIGINS). */
  origins: readonly string[] | undefined;
}

/**
 * Same origin, judged on the Host header the browser sent (never X-Forwarded-Host, which a
 * page may add to a CORS request); the scheme is left out, as TLS may end at a proxy.
 */
function sameHost(origin: string, host: string): boolean {
  try {
    return new URL(origin).host === host;
  } catch {
    return false;
  }
}

const isLoopback = (ip: string) => ip.startsWith('127.') || ip === '::1';

/**
 * Open dev mode has no admin token to ask for, so without this any web page a developer
 * visits could list rooms and kick peers (CORS reflects every origin when none is
 * configured). A browser request is answered only for the server's own origin or a listed
 * one; a request without an Origin (curl, scripts) only from a loopback address.
 */
function openModeOnly(policy: OpenAdminPolicy) {
  return async (ctx: Context, next: Next) => {
    const origin = ctx.get('origin');
    const allowed = origin ? sameHost(origin, ctx.get('host')) || (policy.origins?.includes(origin) ?? false) : isLoopback(clientIp(ctx.req, policy.trust));
    if (!allowed) {
      ctx.status = 403;
      ctx.body = {
        error: 'forbidden',
        message: 'without HERALD_SECRET the admin API answers only loopback and same-origin requests (HERALD_ADMIN_ORIGINS adds origins)',
      };
      return;
    }
    await next();
  };
}

/** An admin token's `room` claim scopes it: `*` sees every room, `R` only room R. */
const inScope = (grant: Grant | undefined, room: string) => !grant || grant.room === '*' || grant.room === room;

async function roomScope(ctx: Context, next: Next): Promise<void> {
  if (!inScope(ctx.state.grant, ctx.params.room!)) {
    ctx.status = 403;
    ctx.body = { error: 'forbidden', message: `this admin token is for room ${ctx.state.grant.room} only` };
    return;
  }
  await next();
}

/** Operator API: list rooms, inspect one, remove a peer. Cluster-wide when Redis is on. */
export function adminRouter(hub: Hub, tokens: Tokens | undefined, open: OpenAdminPolicy): Router {
  const router = new Router({ prefix: '/api/rooms' });
  router.use(tokens ? requireToken(tokens, 'admin') : openModeOnly(open));

  router.get('/', async (ctx) => {
    const rooms = await hub.cluster.listRooms();
    ctx.body = { rooms: rooms.filter((r) => inScope(ctx.state.grant, r.id)) };
  });

  router.get('/:room', roomScope, async (ctx) => {
    const members = await hub.cluster.roomMembers(ctx.params.room!);
    if (!members) {
      ctx.status = 404;
      ctx.body = { error: 'not-found', message: `no room ${ctx.params.room}` };
      return;
    }
    ctx.body = {
      room: ctx.params.room,
      members: members.map((m) => ({
        id: m.peerId,
        role: m.role,
        protocol: m.protocol,
        instance: m.instanceId,
        identity: m.identity ?? null,
        connectedSince: new Date(m.joinedAt).toISOString(),
      })),
    };
  });

  router.delete('/:room/peers/:peer', roomScope, async (ctx) => {
    if (!(await hub.kick(ctx.params.room!, ctx.params.peer!))) {
      ctx.status = 404;
      ctx.body = { error: 'not-found', message: `peer ${ctx.params.peer} is not in room ${ctx.params.room}` };
      return;
    }
    ctx.status = 204;
  });
  return router;
}
