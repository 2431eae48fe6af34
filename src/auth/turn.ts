import { createHmac } from 'node:crypto';
import type { Config } from '../config.js';
import type { IceServer } from '../protocol/json-messages.js';

/**
 * The ICE servers handed to clients: the static list from HERALD_ICE_SERVERS, plus, with
 * TURN_SECRET, short-lived TURN REST credentials (coturn `use-auth-secret`):
 * username `<expiry-unix-time>:<sub>`, credential base64(HMAC-SHA1(secret, username)).
 */
export function iceServersFor(config: Config, identity: string | undefined, now = Date.now()): IceServer[] {
  const servers: IceServer[] = [...(config.iceServers ?? [])];
  if (config.turnSecret && config.turnUrls?.length) {
    const expiry = Math.floor(now / 1000) + config.turnTtlSeconds;
    const username = `${expiry}:${identity ?? 'anonymous'}`;
    const credential = createHmac('sha1', config.turnSecret).update(username).digest('base64');
    servers.push({ urls: config.turnUrls, username, credential });
  }
  return servers;
}
