import type { IncomingMessage } from 'node:http';

/** The client's address: the socket peer, or the first X-Forwarded-For hop behind a trusted proxy. */
export function clientIp(req: IncomingMessage, trustProxy: boolean): string {
  if (trustProxy) {
    const forwarded = req.headers['x-forwarded-for'];
    const first = (Array.isArray(forwarded) ? forwarded[0] : forwarded)?.split(',')[0]?.trim();
    if (first) return first;
  }
  return req.socket.remoteAddress ?? 'unknown';
}

/**
 * The origin allow-list. Unset = any origin. Requests without an Origin header (non-browser
 * clients, which can forge it anyway) pass; the list guards against other sites' pages.
 */
export function originAllowed(origin: string | undefined, allowed: readonly string[] | undefined): boolean {
  if (!allowed || allowed.length === 0 || origin === undefined) return true;
  return allowed.includes(origin) || allowed.includes('*');
}
