import type { IncomingMessage, Server } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type WebSocket } from 'ws';
import type { Config } from '../config.js';
import type { Hub } from '../core/hub.js';
import type { Logger } from '../observability/logger.js';
import { iceServersFor } from '../auth/turn.js';
import type { Session } from '../core/types.js';
import { JSON_CLOSE } from '../protocol/json-messages.js';
import { Heartbeat } from './heartbeat.js';
import { JsonConnection, type JsonContext } from './json-protocol.js';
import { SEED_CLOSE, SeedConnection, parseSeedPath } from './seed-protocol.js';

/**
 * The WebSocket edge: takes upgrades off the shared http.Server, routes them by path to a
 * protocol adapter, and owns what every socket shares (frame cap, heartbeat, shutdown).
 */
export class Gateway {
  private readonly wss: WebSocketServer;
  private readonly heartbeat: Heartbeat;
  private readonly json: JsonContext;
  /** Every open protocol connection, so shutdown can close each the way its protocol expects. */
  private readonly sessions = new Set<Session>();
  private accepting = true;

  constructor(
    private readonly config: Config,
    private readonly hub: Hub,
    private readonly log: Logger,
  ) {
    // ws closes a socket with 1009 itself when a frame exceeds maxPayload.
    this.wss = new WebSocketServer({ noServer: true, maxPayload: config.maxFrameBytes, perMessageDeflate: false });
    this.heartbeat = new Heartbeat(config.heartbeatMs);
    this.json = {
      hub,
      log,
      heartbeatMs: config.heartbeatMs,
      maxSignalBytes: config.maxSignalBytes,
      iceServers: (identity) => iceServersFor(config, identity),
    };
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

  /**
   * Closes every socket and resolves once they are all gone or `deadlineMs` passed. JSON
   * clients get `bye {reconnect:true}` and 1012; seed clients, which know no such thing, 1001.
   */
  async closeAll(reason: string, deadlineMs: number): Promise<void> {
    this.stopAccepting();
    const open = [...this.wss.clients];
    for (const session of this.sessions) {
      session.close(session.protocol === 'json' ? JSON_CLOSE.restart : SEED_CLOSE.shutdown, reason);
    }
    for (const ws of open) if (ws.readyState === ws.OPEN) ws.close(SEED_CLOSE.shutdown, reason);
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
    if (url.pathname === '/ws') return this.track(ws, new JsonConnection(ws, this.json));
    const seed = parseSeedPath(url.pathname);
    if (typeof seed === 'string') {
      this.log.debug({ path: url.pathname, reason: seed }, 'bad websocket path');
      ws.close(SEED_CLOSE.badPath, seed);
      return;
    }
    this.track(ws, new SeedConnection(ws, this.hub, seed.role, seed.id, this.log));
  }

  private track(ws: WebSocket, session: Session): void {
    this.sessions.add(session);
    ws.once('close', () => this.sessions.delete(session));
  }
}

function refuse(socket: Duplex, status: number, text: string): void {
  socket.end(`HTTP/1.1 ${status} ${text}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
}
