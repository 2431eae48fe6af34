import type { IncomingMessage, Server } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type WebSocket } from 'ws';
import type { Config } from '../config.js';
import type { Hub } from '../core/hub.js';
import type { Logger } from '../observability/logger.js';
import { Heartbeat } from './heartbeat.js';
import { SEED_CLOSE, SeedConnection, parseSeedPath } from './seed-protocol.js';

/**
 * The WebSocket edge: takes upgrades off the shared http.Server, routes them by path to a
 * protocol adapter, and owns what every socket shares (frame cap, heartbeat, shutdown).
 */
export class Gateway {
  private readonly wss: WebSocketServer;
  private readonly heartbeat: Heartbeat;
  private accepting = true;

  constructor(
    private readonly config: Config,
    private readonly hub: Hub,
    private readonly log: Logger,
  ) {
    // ws closes a socket with 1009 itself when a frame exceeds maxPayload.
    this.wss = new WebSocketServer({ noServer: true, maxPayload: config.maxFrameBytes, perMessageDeflate: false });
    this.heartbeat = new Heartbeat(config.heartbeatMs);
  }

  get connections(): number {
    return this.wss.clients.size;
  }

  attach(server: Server): void {
    server.on('upgrade', (req, socket, head) => this.upgrade(req, socket, head));
  }

  /** Stops taking new sockets (drain); existing ones stay until closed. */
  stopAccepting(): void {
    this.accepting = false;
  }

  /** Closes every socket with `code` and resolves once they are all gone. */
  async closeAll(code: number, reason: string, deadlineMs: number): Promise<void> {
    this.stopAccepting();
    const open = [...this.wss.clients];
    for (const ws of open) ws.close(code, reason);
    await Promise.race([
      Promise.all(open.map((ws) => (ws.readyState === ws.CLOSED ? undefined : new Promise((r) => ws.once('close', r))))),
      new Promise((r) => setTimeout(r, deadlineMs).unref()),
    ]);
    for (const ws of this.wss.clients) ws.terminate();
  }

  stop(): void {
    this.heartbeat.stop();
    this.wss.close();
  }

  private upgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    if (!this.accepting) return refuse(socket, 503, 'Service Unavailable');
    const url = new URL(req.url ?? '/', 'http://herald');
    this.wss.handleUpgrade(req, socket, head, (ws) => {
      this.heartbeat.watch(ws);
      ws.on('error', (err) => this.log.debug({ err }, 'socket error'));
      this.route(ws, url);
    });
  }

  private route(ws: WebSocket, url: URL): void {
    const seed = parseSeedPath(url.pathname);
    if (typeof seed === 'string') {
      this.log.debug({ path: url.pathname, reason: seed }, 'bad websocket path');
      ws.close(SEED_CLOSE.badPath, seed);
      return;
    }
    new SeedConnection(ws, this.hub, seed.role, seed.id, this.log);
  }
}

function refuse(socket: Duplex, status: number, text: string): void {
  socket.end(`HTTP/1.1 ${status} ${text}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
}
