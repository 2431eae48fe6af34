import Router from '@koa/router';
import type { Tokens } from '../auth/tokens.js';
import type { Hub } from '../core/hub.js';
import { requireToken } from './auth.js';

/** Operator API: list rooms, inspect one, remove a peer. Cluster-wide when Redis is on. */
export function adminRouter(hub: Hub, tokens: Tokens | undefined): Router {
  const router = new Router({ prefix: '/api/rooms' });
  router.use(requireToken(tokens, 'admin'));

  router.get('/', async (ctx) => {
    ctx.body = { rooms: await hub.cluster.listRooms() };
  });

  router.get('/:room', async (ctx) => {
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

  router.delete('/:room/peers/:peer', async (ctx) => {
    if (!(await hub.kick(ctx.params.room!, ctx.params.peer!))) {
      ctx.status = 404;
      ctx.body = { error: 'not-found', message: `peer ${ctx.params.peer} is not in room ${ctx.params.room}` };
      return;
    }
    ctx.status = 204;
  });
  return router;
}
