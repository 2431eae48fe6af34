import type { IncomingMessage } from 'node:http';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.js';
import { clientIp, compileTrust } from '../../src/gateway/request.js';

/** A request as it reaches Herald: the TCP peer, and whatever X-Forwarded-For says. */
const req = (remoteAddress: string, xff?: string) =>
  ({ socket: { remoteAddress }, connection: { remoteAddress }, headers: xff === undefined ? {} : { 'x-forwarded-for': xff } }) as unknown as IncomingMessage;
const trust = (v: string) => compileTrust(loadConfig({ trustProxy: v }, {}).trustProxy);

describe('client address behind proxies (finding 4)', () => {
  it('without HERALD_TRUST_PROXY the header is ignored', () => {
    expect(clientIp(req('127.0.0.9', '198.51.100.1'), trust('false'))).toBe('127.0.0.9');
  });

  it('true = one hop: the right-most address (what nginx $proxy_add_x_forwarded_for appended), never the client-written first', () => {
    expect(clientIp(req('10.0.0.1', '6.6.6.6, 198.51.100.7'), trust('true'))).toBe('198.51.100.7');
    expect(clientIp(req('10.0.0.1', '198.51.100.7'), trust('1'))).toBe('198.51.100.7');
  });

  it('a hop count skips that many proxies from the right', () => {
    expect(clientIp(req('10.0.0.1', '6.6.6.6, 198.51.100.7, 10.0.0.2'), trust('2'))).toBe('198.51.100.7');
  });

  it('a list of trusted proxies: the right-most address not in it', () => {
    const t = trust('loopback, 10.0.0.0/8');
    expect(clientIp(req('127.0.0.1', '6.6.6.6, 198.51.100.7, 10.1.2.3'), t)).toBe('198.51.100.7');
    // A socket that is not a trusted proxy: its own address, whatever the header says.
    expect(clientIp(req('203.0.113.5', '198.51.100.7'), t)).toBe('203.0.113.5');
  });

  it('a hop that is not an IP address (8,000 characters, or junk) is never used: the socket address stands in', () => {
    expect(clientIp(req('10.0.0.1', 'x'.repeat(8000)), trust('true'))).toBe('10.0.0.1');
    expect(clientIp(req('10.0.0.1', '1.2.3.4, <script>'), trust('true'))).toBe('10.0.0.1');
  });

  it('::ffff:-mapped IPv4 is one client with its IPv4 form', () => {
    expect(clientIp(req('::ffff:127.0.0.1'), trust('false'))).toBe('127.0.0.1');
  });

  it('HERALD_TRUST_PROXY refuses what is neither boolean, count nor address list', () => {
    expect(() => loadConfig({ trustProxy: 'yes' }, {})).toThrow(/HERALD_TRUST_PROXY/);
    expect(loadConfig({ trustProxy: '0' }, {}).trustProxy).toBe(false);
    expect(loadConfig({ trustProxy: 'true' }, {}).trustProxy).toBe(1);
  });
});
