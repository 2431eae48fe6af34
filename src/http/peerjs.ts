import { randomUUID } from 'node:crypto';
import Router from '@koa/router';
import type { Tokens } from '../auth/tokens.js';
import type { Config } from '../config.js';
import type { Hub } from '../core/hub.js';
import { hubPeerId, peerJsId, peerJsPaths } from '../gateway/peerjs-protocol.js';
import { openModeOnly, type OpenAdminPolicy } from './admin.js';
import { requireToken } from './auth.js';

/** What PeerServer answers at its mount (its app.json), so tools probing the mount see PeerServer. */
const ABOUT = {
  name: 'PeerJS Server',
  description: 'A server side element to broker connections between PeerJS clients.',
  website: 'https://peerjs.com/',
};

function* localPeerJsIds(hub: Hub): Generator<string> {
  for (const hubId of hub.peerIds()) {
    const id = peerJsId(hubId);
    if (id !== undefined) yield id;
  }
}

/**
 * PeerServer's HTTP API at HERALD_PEERJS_PATH (docs/peerjs.md): `GET <path><key>/id` gives a
 * fresh id as the plain body; `GET <path><key>/peers` lists peers only when discovery is on
 * (401 otherwise, as PeerServer); `GET <path>` describes the server when the mount is not `/`
 * (at `/` Herald's own index page stays). Like PeerServer, any `<key>` answers here; the
 * WebSocket refuses a wrong one. Operators list PeerJS peers at /api/peerjs/peers.
 */
export function peerJsRouter(config: Config, hub: Hub, tokens: Tokens | undefined, open: OpenAdminPolicy): Router {
  const { base } = peerJsPaths(config);
  const router = new Router();

  router.get(`${base}:key/id`, (ctx) => {
    let id = randomUUID();
    // Unique here; across instances a clash of random UUIDs would still get ID-TAKEN.
    while (hub.isHeld(hubPeerId(id))) id = randomUUID();
    ctx.type = 'text/plain';
    ctx.body = id;
  });

  router.get(`${base}:key/peers`, (ctx) => {
    if (!config.peerjsDiscovery) {
      ctx.status = 401;
      ctx.body = 'Unauthorized';
      return;
    }
    // The peers this instance holds: discovery stays off the cluster (docs/peerjs.md).
    ctx.body = [...localPeerJsIds(hub)];
  });

  if (base !== '/') {
    const about = (ctx: { body: unknown }) => void (ctx.body = ABOUT);
    router.get(base, about);
    router.get(base.slice(0, -1), about);
  }

  router.get('/api/peerjs/peers', tokens ? requireToken(tokens, 'admin') : openModeOnly(open), (ctx) => {
    ctx.body = { instance: hub.instanceId, peers: [...localPeerJsIds(hub)] };
  });
  return router;
}
