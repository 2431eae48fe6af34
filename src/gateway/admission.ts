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

/** Set at accept on a socket whose address was already at its cap. */
const OVER_CAP = Symbol('herald.overCap');
/** Set on a socket counted at its upgrade (it came through a trusted proxy). */
const COUNTED = Symbol('herald.counted');
type Marked = Duplex & { [OVER_CAP]?: true; [COUNTED]?: true };

/**
 * Connection caps, counted where a connection starts costing: at TCP accept. A client that
 * opens sockets and never finishes an upgrade (partial headers, a "slowloris") holds a slot
 * from its first byte, so it cannot go around the per-address cap, and the instance-wide cap
 * (Node's `server.maxConnections`, which drops sockets at accept) keeps file descriptors for
 * everyone else. A socket over its address's cap is refused as soon as it says anything (429,
 * or a typed error on /ws) and the short header timeout ends one that says nothing.
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
      if (!this.count(address, socket)) (socket as Marked)[OVER_CAP] = true;
    });
  }

  /**
   * The client address of an upgrade or request; throws `rate-limited` when its address is
   * over the cap. Sockets through a trusted proxy are counted here, once each.
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

  /**
   * For a plain HTTP request: true when its socket was over its address's cap at accept.
   * Sockets from a trusted proxy are never refused here: a proxy reuses one upstream socket
   * for the requests of many clients.
   */
  refusesRequest(req: IncomingMessage): boolean {
    return (req.socket as Marked)[OVER_CAP] === true && !(req.socket as Marked)[COUNTED];
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
