import type { IncomingMessage, Server } from 'node:http';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { HeraldError } from '../core/errors.js';
import { clientIp, socketAddress, type Trust } from './request.js';

export interface AdmissionLimits {
  /** Open TCP connections on this instance, all kinds (0 = no cap). */
  maxConnections: number;
  /** Open connections per client address (0 = no cap). */
  maxConnectionsPerIp: number;
}

/** Set at its upgrade on a proxied socket whose client address was already at its cap. */
const OVER_CAP = Symbol('herald.overCap');
/** Set on a socket counted at its upgrade (it came through a trusted proxy). */
const COUNTED = Symbol('herald.counted');
type Marked = Duplex & { [OVER_CAP]?: true; [COUNTED]?: true };

/**
 * Connection caps, counted where a connection starts costing: at TCP accept. A client that
 * opens sockets and never finishes an upgrade (partial headers, a "slowloris") holds a slot
 * from its first byte, so it cannot go around the per-address cap, and the instance-wide cap
 * (Node's `server.maxConnections`, which drops sockets at accept) keeps file descriptors for
 * everyone else. A socket over its address's cap is refused at accept: it is sent a 429 and
 * closed at once, whatever it says or does not say, so that a flood of stalled sockets from
 * one address holds at most the cap's file descriptors, never the header timeout's worth.
 *
 * Behind a trusted proxy the socket address is the proxy's, so those sockets are counted at
 * their upgrade instead, under the client address the proxy forwarded.
 */
export class Admission {
  /** Open connections per client address (only while a per-address cap is set). */
  readonly perIp = new Map<string, number>();

  constructor(
    private readonly limits: AdmissionLimits,
    private readonly trust: Trust,
  ) {}

  attach(server: Server): void {
    if (this.limits.maxConnections > 0) server.maxConnections = this.limits.maxConnections;
    if (this.limits.maxConnectionsPerIp === 0) return;
    server.on('connection', (socket: Socket) => {
      const address = socketAddress({ socket } as IncomingMessage);
      if (this.trust(address, 0)) return; // a proxy of ours: counted per client at upgrade
      if (!this.count(address, socket)) refuseAtAccept(socket, this.limits.maxConnectionsPerIp);
    });
  }

  /**
   * The client address of an upgrade; throws `rate-limited` when its address is over the
   * cap. Sockets through a trusted proxy are counted here, once each (plain HTTP through a
   * proxy is never refused: a proxy reuses one upstream socket for many clients' requests).
   */
  admit(req: IncomingMessage): string {
    const ip = clientIp(req, this.trust);
    const socket = req.socket as Marked;
    const cap = this.limits.maxConnectionsPerIp;
    if (cap > 0 && !socket[OVER_CAP] && !socket[COUNTED] && this.trust(socketAddress(req), 0)) {
      socket[COUNTED] = true;
      if (!this.count(ip, socket)) socket[OVER_CAP] = true;
    }
    if (socket[OVER_CAP]) throw new HeraldError('rate-limited', `at most ${cap} connections per client address`);
    return ip;
  }

  /** Counts `socket` under `ip` until it closes; false when that put `ip` over the cap. */
  private count(ip: string, socket: Duplex): boolean {
    if (socket.destroyed) return true; // its 'close' has been emitted already
    const n = (this.perIp.get(ip) ?? 0) + 1;
    this.perIp.set(ip, n);
    // `on`, not `once`: 'close' comes once, and a once-wrapper costs ~170 bytes per socket.
    socket.on('close', () => {
      const left = (this.perIp.get(ip) ?? 1) - 1;
      if (left > 0) this.perIp.set(ip, left);
      else this.perIp.delete(ip);
    });
    return n <= this.limits.maxConnectionsPerIp;
  }
}

/**
 * The answer to a socket over its address's cap, before it has sent anything: a complete
 * HTTP response (an early response is allowed; clients read it as the upgrade's or
 * request's status) and a close, so the file descriptor is free now.
 */
function refuseAtAccept(socket: Socket, cap: number): void {
  const body = JSON.stringify({ error: 'rate-limited', message: `at most ${cap} connections per client address` });
  socket.on('error', () => {}); // a reset by a client that was not reading
  socket.end(`HTTP/1.1 429 Too Many Requests\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n${body}`);
  socket.destroySoon();
}
