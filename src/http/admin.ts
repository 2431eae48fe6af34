import Router from '@koa/router';
import type { Tokens } from '../auth/tokens.js';
import type { Context, Next } from 'koa';
import type { Grant } from '../core/grant.js';
import type { Hub } from '../core/hub.js';
import { apiErrors } from './api-errors.js';
import { requireToken } from './auth.js';
import { listRoomPage, parseListingQuery } from './room-listing.js';

/** An admin token's `room` claim scopes it: `*` sees every room, `R` only room R. */
export const inScope = (grant: Grant | undefined, room: string) => !grant || grant.room === '*' || grant.room === room;

async function roomScope(ctx: Context, next: Next): Promise<void> {
  if (!inScope(ctx.state.grant, ctx.params.room!)) {
    ctx.status = 403;
    ctx.body = { error: 'forbidden', message: `this admin token is for room ${ctx.state.grant.room} only` };
    return;
  }
  await next();
}

/** Operator API: list rooms, inspect one, remove a peer. Cluster-wide when Redis is on. */
export function adminRouter(hub: Hub, tokens: Tokens | undefined): Router {
  const router = new Router({ prefix: '/api/rooms' });
  router.use(apiErrors, requireToken(tokens, 'admin'));

  router.get('/', async (ctx) => {
    const query = parseListingQuery(ctx.query);
    ctx.body = await listRoomPage(hub.cluster, query, (room) => inScope(ctx.state.grant, room));
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
