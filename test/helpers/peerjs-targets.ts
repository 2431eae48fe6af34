import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { PeerServer } from 'peer';
import { TestSocket } from './socket.js';
import { startHerald, type Running } from './herald.js';

/**
 * A PeerJS server under test: the real `peer` package (PeerServer, the reference) or Herald.
 * Protocol tests run against both, so each one is known to describe PeerJS, not Herald's
 * reading of it.
 */
export interface PeerJsTarget {
  name: 'peer' | 'herald';
  /** `http://127.0.0.1:<port>` */
  http: string;
  port: number;
  /** The mount (PeerServer's `path`), ending with '/'. */
  path: string;
  /** WebSocket URL a PeerJS client with `key` would open for `id` and `token`. */
  socketUrl(query: { id?: string; token?: string; key?: string }): string;
  stop(): Promise<void>;
  herald?: Running;
}

export interface TargetOptions {
  /** Queued messages expire after this (PeerServer's expire_timeout). */
  expireMs?: number;
  /** Silent clients are dropped after this (PeerServer's alive_timeout). */
  aliveMs?: number;
  path?: string;
  key?: string;
  discovery?: boolean;
  /** Extra Herald settings (ignored by the reference). */
  herald?: Record<string, unknown>;
}

function url(base: string, path: string, query: { id?: string; token?: string; key?: string }): string {
  const params = new URLSearchParams();
  for (const [k, v] of Object.entries(query)) if (v !== undefined) params.set(k, v);
  params.set('version', '1.5.5');
  return `ws://${base}${path}peerjs?${params}`;
}

export async function startReference(options: TargetOptions = {}): Promise<PeerJsTarget> {
  const path = options.path ?? '/';
  const server = await new Promise<Server>((resolve) => {
    const app = PeerServer(
      {
        port: 0,
        host: '127.0.0.1',
        path,
        key: options.key ?? 'peerjs',
        expire_timeout: options.expireMs ?? 5000,
        alive_timeout: options.aliveMs ?? 90_000,
        // How often PeerServer looks for expired messages (default 1000 ms).
        cleanup_out_msgs: Math.min(1000, Math.max(50, Math.floor((options.expireMs ?? 5000) / 5))),
        allow_discovery: options.discovery ?? false,
      },
      (s) => resolve(s as Server),
    );
    // PeerServer re-emits a message it cannot parse as 'error': unheard, that ends the process.
    app.on('error', () => undefined);
  });
  const port = (server.address() as AddressInfo).port;
  const mount = path.endsWith('/') ? path : `${path}/`;
  return {
    name: 'peer',
    http: `http://127.0.0.1:${port}`,
    port,
    path: mount,
    socketUrl: (q) => url(`127.0.0.1:${port}`, mount, q),
    stop: async () => {
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}

export async function startHeraldTarget(options: TargetOptions = {}): Promise<PeerJsTarget> {
  const path = options.path ?? '/';
  const herald = await startHerald({
    peerjsPath: path,
    peerjsKey: options.key,
    peerjsExpireMs: options.expireMs,
    peerjsAliveTimeoutMs: options.aliveMs,
    peerjsDiscovery: options.discovery === undefined ? undefined : String(options.discovery),
    ...options.herald,
  });
  const mount = path.endsWith('/') ? path : `${path}/`;
  return {
    name: 'herald',
    http: herald.http,
    port: herald.port,
    path: mount,
    socketUrl: (q) => url(`127.0.0.1:${herald.port}`, mount, q),
    stop: () => herald.stop(),
    herald,
  };
}

export const TARGETS = [
  { name: 'peer', start: startReference },
  { name: 'herald', start: startHeraldTarget },
] as const;

/** A PeerJS client socket: `open()` waits for the socket, `opened()` for the server's OPEN. */
export class PeerJsSocket extends TestSocket {
  constructor(
    target: PeerJsTarget,
    readonly id: string,
    readonly token = `tok-${id}`,
    key = 'peerjs',
  ) {
    super(target.socketUrl({ id, token, key }));
  }

  static async connect(target: PeerJsTarget, id: string, token?: string): Promise<PeerJsSocket> {
    const s = new PeerJsSocket(target, id, token);
    await s.opened;
    await s.nextJson('OPEN');
    return s;
  }

  json(message: unknown): void {
    this.send(JSON.stringify(message));
  }

  heartbeat(): void {
    this.json({ type: 'HEARTBEAT' });
  }

  /** The next message, parsed. */
  async nextMessage(timeoutMs?: number): Promise<any> {
    return JSON.parse(await this.next(undefined, timeoutMs));
  }

  /**
   * Proves nothing else arrived first: sends itself a marker through the server and
   * resolves with whatever message comes next (a test expects the marker).
   */
  async nextAfterMarker(marker: string): Promise<any> {
    this.json({ type: 'OFFER', dst: this.id, payload: { marker } });
    return this.nextMessage();
  }
}

/** A Herald process (test/helpers/instances.ts) as a PeerJS target mounted at `/`. */
export function instanceTarget(instance: { port: number; http: string }): PeerJsTarget {
  return {
    name: 'herald',
    http: instance.http,
    port: instance.port,
    path: '/',
    socketUrl: (q) => url(`127.0.0.1:${instance.port}`, '/', q),
    stop: async () => undefined,
  };
}
