import type { IncomingMessage, Server } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type WebSocket } from 'ws';
import { iceServersFor } from '../auth/turn.js';
import { tokenFrom, type Tokens } from '../auth/tokens.js';
import type { Config } from '../config.js';
import { HeraldError, isHeraldError } from '../core/errors.js';
import { checkGrant, type Grant } from '../core/grant.js';
import type { Hub } from '../core/hub.js';
import { ownsPeerId } from '../core/peer-ids.js';
import type { Protocol, Session } from '../core/types.js';
import type { Logger } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';
import { closeCodeOf, httpStatusOf } from '../protocol/error-table.js';
import { CLOSE, type ConnectionContext } from './context.js';
import { Heartbeat } from './heartbeat.js';
import { JsonConnection } from './json-protocol.js';
import { Admission } from './admission.js';
import { PeerJsConnection, PeerJsLiveness, checkPeerJsGrant, parsePeerJsQuery, peerJsPaths, refusePeerJs } from './peerjs-protocol.js';
import { compileTrust, originAllowed } from './request.js';
import { SeedConnection, parseSeedPath } from './seed-protocol.js';
import { YWebrtcConnection } from './ywebrtc-protocol.js';
import { capSendBuffer, closeSocket } from './send.js';

/**
 * The WebSocket edge: takes upgrades off the shared http.Server, checks origin, per-IP cap
 * and token, routes by path to a protocol adapter, and owns what every socket shares
 * (frame cap, heartbeat, shutdown).
 *
 * A refused seed upgrade gets a plain HTTP status (the article's clients can read nothing
 * else); a refused /ws upgrade is accepted just long enough to send a typed error, because
 * browsers hide the HTTP status of a failed WebSocket handshake.
 */
export class Gateway {
  private readonly wss: WebSocketServer;
  private readonly heartbeat: Heartbeat;
  private readonly ctx: ConnectionContext;
  /**
   * Every open protocol connection, so shutdown can close each the way its protocol expects,
   * with what its log lines say about it.
   */
  private readonly sessions = new Map<Session, Record<string, string>>();
  readonly admission: Admission;
  private accepting = true;
  /** The PeerJS endpoint (`<HERALD_PEERJS_PATH>peerjs`) and its heartbeat check. */
  private readonly peerjsSocketPath: string;
  private readonly peerjsLiveness: PeerJsLiveness;

  constructor(
    private readonly config: Config,
    hub: Hub,
    private readonly log: Logger,
    metrics: Metrics,
    private readonly tokens: Tokens | undefined,
  ) {
    // ws closes a socket with 1009 itself when a message exceeds maxPayload, and with 1008
    // when it comes in more than maxFragments pieces: each piece is a Buffer held until the
    // message ends, so ws's default (16,384) let one client turn 33 MB sent into 0.5 GB of heap.
    this.wss = new WebSocketServer({
      noServer: true,
      maxPayload: config.maxFrameBytes,
      maxFragments: config.maxFragments,
      perMessageDeflate: false,
    });
    this.admission = new Admission(config, compileTrust(config.trustProxy));
    this.heartbeat = new Heartbeat(config.heartbeatMs);
    this.peerjsSocketPath = peerJsPaths(config).socket;
    this.peerjsLiveness = new PeerJsLiveness(config.peerjsAliveTimeoutMs);
    this.ctx = {
      hub,
      log,
      metrics,
      limits: config,
      heartbeatMs: config.heartbeatMs,
      maxSignalBytes: config.maxSignalBytes,
      iceServers: (identity) => iceServersFor(config, identity),
      ended: (session, code) => this.ended(session, code),
    };
  }

  /** The open JSON-protocol connection of `peerId` on this instance, if any (operations, tests). */
  jsonConnection(peerId: string): JsonConnection | undefined {
    for (const s of this.sessions.keys()) if (s instanceof JsonConnection && s.peerId === peerId) return s;
    return undefined;
  }

  /** Open sockets by protocol (for metrics). */
  connectionCounts(): Record<Protocol, number> {
    const counts = { seed: 0, json: 0, peerjs: 0, whep: 0, ywebrtc: 0 };
    for (const s of this.sessions.keys()) counts[s.protocol]++;
    return counts;
  }

  /**
   * Takes the upgrades of `server` that `wants` accepts (all by default); the others are left
   * to the server's other listeners. `admission` (default true, for Herald's own server) also
   * counts connections at TCP accept (src/gateway/admission.ts). Returns the undo.
   */
  attach(server: Server, { wants = () => true, admission = true }: { wants?: (req: IncomingMessage) => boolean; admission?: boolean } = {}): () => void {
    if (admission) this.admission.attach(server);
    const onUpgrade = (req: IncomingMessage, socket: Duplex, head: Buffer) => {
      if (!wants(req)) return;
      this.upgrade(req, socket, head).catch((err) => {
        this.log.error({ err }, 'upgrade failed');
        socket.destroy();
      });
    };
    server.on('upgrade', onUpgrade);
    return () => void server.off('upgrade', onUpgrade);
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
    for (const session of this.sessions.keys()) {
      session.close(session.protocol === 'json' ? CLOSE.restart : CLOSE.goingAway, reason);
    }
    for (const ws of open) if (ws.readyState === ws.OPEN) closeSocket(ws, CLOSE.goingAway, reason);
    await Promise.race([
      Promise.all(open.map((ws) => (ws.readyState === ws.CLOSED ? undefined : new Promise((r) => ws.once('close', r))))),
      new Promise((r) => setTimeout(r, deadlineMs).unref()),
    ]);
    for (const ws of this.wss.clients) ws.terminate();
  }

  stop(): void {
    this.heartbeat.stop();
    this.peerjsLiveness.stop();
    this.wss.close();
  }

  private async upgrade(req: IncomingMessage, socket: Duplex, head: Buffer): Promise<void> {
    let url: URL;
    try {
      url = new URL(req.url ?? '/', 'http://herald');
    } catch {
      return refuse(socket, [400, 'Bad Request']); // e.g. a request target of `//[`
    }
    const json = url.pathname === '/ws';
    const peerjs = url.pathname === this.peerjsSocketPath;
    // y-webrtc reconnects at once after a close: it is refused at the upgrade with an HTTP status, never accepted then closed.
    const ywebrtc = url.pathname === this.config.ywebrtcPath;
    let ip = 'unknown';
    let grant: Grant | undefined;
    try {
      ip = this.admission.admit(req);
      if (!this.accepting) throw new HeraldError('unavailable', 'server is draining; reconnect elsewhere');
      if (!originAllowed(req.headers.origin, this.config.allowedOrigins)) {
        throw new HeraldError('forbidden', `origin ${originForLog(req.headers.origin)} is not allowed`);
      }
      if (this.tokens) {
        grant = await this.tokens.verify(tokenFrom(url, req.headers.authorization));
        // A seed path names its role (and a sender its room) up front: check them here, so a
        // wrong token is refused at the upgrade. A reader's room is checked at `join|<room>`.
        if (peerjs) checkPeerJsGrant(grant, url.searchParams.get('id'));
        if (ywebrtc && !grant.roles.has('peer')) throw new HeraldError('forbidden', 'token does not grant the peer role');
        const seed = json || peerjs || ywebrtc ? undefined : parseSeedPath(url.pathname);
        if (seed && typeof seed !== 'string') {
          if (seed.role === 'sender') checkGrant(grant, seed.id, 'broadcaster');
          else if (!grant.roles.has('viewer')) throw new HeraldError('forbidden', 'token does not grant the viewer role');
          else if (!ownsPeerId(grant.sub, seed.id)) throw new HeraldError('forbidden', 'reader id belongs to another identity');
        }
      }
    } catch (err) {
      if (!isHeraldError(err)) throw err;
      this.log.info({ ip, path: url.pathname.slice(0, 200), code: err.code, reason: err.message }, 'upgrade refused');
      this.ctx.metrics.error(err.code, json ? 'json' : peerjs ? 'peerjs' : ywebrtc ? 'ywebrtc' : 'seed');
      if (!json && !peerjs) return refuse(socket, httpStatusOf(err.code));
      return this.accept(req, socket, head, (ws) => {
        // PeerJS clients show ERROR's msg; browsers hide a refused handshake's status.
        if (peerjs) return refusePeerJs(ws, err.code, err.message);
        ws.send(JSON.stringify({ type: 'error', code: err.code, message: err.message }));
        closeSocket(ws, closeCodeOf(err.code), err.message);
      });
    }
    this.accept(req, socket, head, (ws) => this.route(ws, url, ip, grant));
  }

  private accept(req: IncomingMessage, socket: Duplex, head: Buffer, then: (ws: WebSocket) => void): void {
    this.wss.handleUpgrade(req, socket, head, (ws) => {
      // A shared listener: a closure here would keep this upgrade's request alive per socket.
      ws.on('error', this.onSocketError);
      capSendBuffer(ws, this.config.maxSendBufferBytes);
      then(ws);
    });
  }

  private readonly onSocketError = (err: Error): void => this.log.debug({ err }, 'socket error');

  private route(ws: WebSocket, url: URL, ip: string, grant: Grant | undefined): void {
    if (url.pathname === this.peerjsSocketPath) return this.routePeerJs(ws, url, ip, grant);
    this.heartbeat.watch(ws);
    if (url.pathname === this.config.ywebrtcPath) {
      const connection = new YWebrtcConnection(ws, this.ctx, grant);
      this.expireWith(ws, connection, grant);
      return this.track(connection, { ip, protocol: 'ywebrtc' });
    }
    if (url.pathname === '/ws') {
      const connection = new JsonConnection(ws, this.ctx, grant);
      this.expireWith(ws, connection, grant);
      return this.track(connection, { ip, protocol: 'json' });
    }
    const seed = parseSeedPath(url.pathname);
    if (typeof seed === 'string') {
      this.log.debug({ path: url.pathname.slice(0, 200), reason: seed }, 'bad websocket path');
      closeSocket(ws, CLOSE.badPath, seed);
      return;
    }
    const connection = new SeedConnection(ws, this.ctx, seed.role, seed.id, grant);
    this.expireWith(ws, connection, grant);
    this.track(connection, { ip, protocol: 'seed', role: seed.role, peer: connection.peerId });
  }

  /**
   * PeerJS clients send HEARTBEAT every 5 s and their liveness check drops silent ones, as
   * PeerServer does; a WebSocket ping on top would only cost a write and a read per socket.
   */
  private routePeerJs(ws: WebSocket, url: URL, ip: string, grant: Grant | undefined): void {
    const query = parsePeerJsQuery(url, this.config.peerjsKey);
    if (typeof query === 'string') return refusePeerJs(ws, 'bad-request', query);
    const connection = new PeerJsConnection(ws, this.ctx, this.peerjsLiveness, query.id, query.token, grant);
    this.expireWith(ws, connection, grant);
    this.track(connection, { ip, protocol: 'peerjs', peer: query.id });
  }

  /**
   * A connection lives no longer than its token: at `exp` it is closed with 4401 `token
   * expired` (the SDK, given a token provider, reconnects with a fresh one and resumes).
   */
  private expireWith(ws: WebSocket, session: Session, grant: Grant | undefined): void {
    if (grant?.exp === undefined) return;
    const ms = grant.exp * 1000 - Date.now();
    if (ms > 2 ** 31 - 1) return; // beyond what a timer can hold (~24 days): never in practice
    const timer = setTimeout(() => session.close(CLOSE.unauthorized, 'token expired'), Math.max(0, ms));
    timer.unref();
    ws.once('close', () => clearTimeout(timer));
  }

  private track(session: Session, fields: Record<string, string>): void {
    // Fields are logged inline rather than through a child logger per connection (memory).
    this.sessions.set(session, fields);
    this.log.info(fields, 'connected');
  }

  /** The connection's own close listener calls this (ConnectionContext.ended). */
  private ended(session: Session, code: number): void {
    const fields = this.sessions.get(session);
    if (!this.sessions.delete(session)) return;
    this.log.info({ ...fields, code }, 'disconnected');
  }
}

/** An Origin header as logged and echoed: bounded, whatever the client wrote. */
function originForLog(origin: string | undefined): string {
  if (origin === undefined) return '(none)';
  return origin.length > 100 ? `${origin.slice(0, 100)}...` : origin;
}

function refuse(socket: Duplex, [status, text]: [number, string]): void {
  socket.end(`HTTP/1.1 ${status} ${text}\r\nConnection: close\r\nContent-Type: text/plain\r\nContent-Length: ${text.length}\r\n\r\n${text}`);
}
