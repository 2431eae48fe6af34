import type { IncomingMessage } from 'node:http';
import { isIP } from 'node:net';
import proxyaddr from 'proxy-addr';
import type { TrustProxy } from '../config.js';

/** Decides, per hop, whether an address is a proxy of ours (proxy-addr's trust function). */
export type Trust = (address: string, hop: number) => boolean;

/** The trust function for HERALD_TRUST_PROXY: none, N hops, or a list of addresses/CIDRs. */
export function compileTrust(setting: TrustProxy): Trust {
  if (setting === false) return () => false;
  if (typeof setting === 'number') return (_address, hop) => hop < setting;
  return proxyaddr.compile(setting);
}

/** `::ffff:127.0.0.1` and `127.0.0.1` are one client. */
function normalise(address: string): string {
  return address.startsWith('::ffff:') && isIP(address.slice(7)) === 4 ? address.slice(7) : address;
}

/** The TCP peer's address (never user-written). */
export function socketAddress(req: IncomingMessage): string {
  return normalise(req.socket.remoteAddress ?? 'unknown');
}

/**
 * The client's address: the right-most X-Forwarded-For hop that is not a trusted proxy
 * (proxy-addr). Whatever a client writes left of that is ignored. A hop that is not an IP
 * address (a forged header passed through a misconfigured trust setting) is never used or
 * logged: the socket address stands in for it.
 */
export function clientIp(req: IncomingMessage, trust: Trust): string {
  const found = proxyaddr(req, trust);
  if (found.length > 45 || isIP(found) === 0) return socketAddress(req);
  return normalise(found);
}

/**
 * The origin allow-list. Unset = any origin. Requests without an Origin header (non-browser
 * clients, which can forge it anyway) pass; the list guards against other sites' pages.
 */
export function originAllowed(origin: string | undefined, allowed: readonly string[] | undefined): boolean {
  if (!allowed || allowed.length === 0 || origin === undefined) return true;
  return allowed.includes(origin) || allowed.includes('*');
}
