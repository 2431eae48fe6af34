import { randomUUID } from 'node:crypto';
import Router from '@koa/router';
import type { Tokens } from '../auth/tokens.js';
import type { Config } from '../config.js';
import type { PeerHolding } from '../core/cluster.js';
import type { Hub } from '../core/hub.js';
import { hubPeerId, peerJsId, peerJsPaths } from '../gateway/peerjs-protocol.js';
import { openModeOnly, type OpenAdminPolicy } from './admin.js';
import { apiErrors } from './api-errors.js';
import { requireToken } from './auth.js';

/** What PeerServer answers at its mount (its app.json), so tools probing the mount see PeerServer. */
const ABOUT = {
  name: 'PeerJS Server',
  description: 'A server side element to broker connections between PeerJS clients.',
  website: 'https://peerjs.com/',
};

function peerJsIds(hubIds: Iterable<string>): string[] {
  const ids: string[] = [];
  for (const hubId of hubIds) {
    const id = peerJsId(hubId);
    if (id !== undefined) ids.push(id);
  }
  return ids;
}

/**
 * The PeerJS peers of the whole cluster, by instance: this one's from the hub, the others'
 * from the peer directory (a 503 `unavailable` while it cannot be read).
 */
async function peerJsPeersByInstance(hub: Hub): Promise<PeerHolding[]> {
  const remote = await hub.cluster.remotePeers();
  return [{ instance: hub.instanceId, peers: peerJsIds(hub.peerIds()).sort() }, ...remote.map((r) => ({ ...r, peers: peerJsIds(r.peers) }))];
}

/**
 * PeerServer's HTTP API at HERALD_PEERJS_PATH (docs/peerjs.md): `GET <path><key>/id` gives a
 * fresh id as the plain body; `GET <path><key>/peers` lists peers only when discovery is on
 * (401 otherwise, as PeerServer); `GET <path>` describes the server when the mount is not `/`
 * (at `/` Herald's own index page stays). Like PeerServer, any `<key>` answers here; the
 * WebSocket refuses a wrong one. Operators list PeerJS peers at /api/peerjs/peers. Both
 * listings are cluster-wide.
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

  router.get(`${base}:key/peers`, apiErrors, async (ctx) => {
    if (!config.peerjsDiscovery) {
      ctx.status = 401;
      ctx.body = 'Unauthorized';
      return;
    }
    // Every instance's, as PeerServer lists every peer of its process (docs/peerjs.md).
    ctx.body = (await peerJsPeersByInstance(hub)).flatMap((i) => i.peers);
  });

  if (base !== '/') {
    const about = (ctx: { body: unknown }) => void (ctx.body = ABOUT);
    router.get(base, about);
    router.get(base.slice(0, -1), about);
  }

  router.get('/api/peerjs/peers', apiErrors, tokens ? requireToken(tokens, 'admin') : openModeOnly(open), async (ctx) => {
    const instances = await peerJsPeersByInstance(hub);
    ctx.body = { instance: hub.instanceId, peers: instances.flatMap((i) => i.peers), instances };
  });
  return router;
}
