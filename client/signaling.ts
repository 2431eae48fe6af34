import type {
  ErrorCode,
  JoinAck,
  PeerInfo,
  RoleName,
  ServerMessage,
  Welcome,
} from '../src/protocol/json-messages.js';
import { Emitter } from './emitter.js';

export type ConnectionState = 'idle' | 'connecting' | 'open' | 'reconnecting' | 'closed';

export interface SignalingOptions {
  /** Default: `/ws` on the page's own host. */
  url?: string;
  /**
   * A Herald JWT, sent as `?token=` (browsers cannot set headers on WebSockets). Pass a
   * function to mint a fresh one for every (re)connect: then a connection closed because its
   * token expired (4401 after the welcome) reconnects with a new token and resumes.
   */
  token?: string | (() => string | Promise<string>);
  /** Ask for a fixed peer id; otherwise the server assigns one and it is kept across reconnects. */
  peerId?: string;
  /** Reply timeout for each request. */
  requestTimeoutMs?: number;
  /**
   * Ping the server this often and reconnect when a ping goes unanswered for as long; default:
   * the server's `heartbeatMs`. Catches a network that died silently (no close, no reset).
   */
  pingIntervalMs?: number;
  /** Reconnect backoff: first delay, doubled each try up to `maxMs`, with jitter. */
  backoff?: { initialMs: number; maxMs: number };
}

export interface SignalEvent {
  room: string;
  from: string;
  /** Whatever the sender put in its `signal`: any JSON value. Check it before use (`isSignalData`). */
  data: unknown;
}

export interface SignalingEvents {
  state: ConnectionState;
  welcome: Welcome;
  signal: SignalEvent;
  'peer-joined': { room: string; peer: PeerInfo };
  'peer-left': { room: string; peer: PeerInfo; reason: string };
  expired: { room: string; to: string };
  removed: { room: string; reason: string };
  /** The room's member counts, at most about once a second while they change. */
  counts: { room: string; counts: { broadcaster: boolean; viewers: number; peers: number } };
  /** After a reconnect that could not resume: the room was joined again from scratch. */
  rejoined: JoinAck;
  /** An error pushed by the server (not the reply to a request), or a fatal close. */
  error: HeraldError;
}

export class HeraldError extends Error {
  constructor(
    readonly code: ErrorCode | 'timeout' | 'closed',
    message: string,
  ) {
    super(message);
    this.name = 'HeraldError';
  }
}

/** Close codes after which reconnecting would be wrong (see docs/protocol.md). */
const FATAL_CLOSE: Record<number, string> = {
  4000: 'replaced by another connection with the same peer id',
  4001: 'removed by an operator',
  4401: 'unauthorized',
  4403: 'forbidden',
};

interface Pending {
  resolve(msg: any): void;
  reject(err: HeraldError): void;
  timer: ReturnType<typeof setTimeout>;
}

/**
 * The signaling connection: requests with replies and timeouts, typed push events,
 * auto-reconnect with backoff, and resume (rooms and queued signals survive a dropped socket).
 */
export class Signaling extends Emitter<SignalingEvents> {
  state: ConnectionState = 'idle';
  peerId: string | undefined;
  iceServers: RTCIceServer[] = [];
  private ws: WebSocket | undefined;
  private resumeToken: string | undefined;
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();
  /** Rooms joined, to join again when a reconnect cannot resume. */
  private readonly rooms = new Map<string, RoleName>();
  private readonly outbox: Record<string, unknown>[] = [];
  private attempt = 0;
  /** The last push received in order (its `seq`); sent in hello so a resume replays the rest. */
  private lastSeq = 0;
  /** The last `seq` acknowledged to the server, and the timer batching acknowledgements. */
  private ackedSeq = 0;
  private ackTimer: ReturnType<typeof setTimeout> | undefined;
  private retryTimer: ReturnType<typeof setTimeout> | undefined;
  private pingTimer: ReturnType<typeof setInterval> | undefined;
  private readonly baseUrl: string;
  private readonly options: Required<Pick<SignalingOptions, 'requestTimeoutMs' | 'backoff'>> & SignalingOptions;

  constructor(options: SignalingOptions = {}) {
    super();
    this.options = { requestTimeoutMs: 10_000, backoff: { initialMs: 250, maxMs: 5_000 }, ...options };
    this.peerId = options.peerId;
    this.baseUrl = options.url ?? `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/ws`;
  }

  /** The URL for the next socket, with a token fetched now when `token` is a function. */
  private async socketUrl(): Promise<string> {
    const { token } = this.options;
    const value = typeof token === 'function' ? await token() : token;
    const base = this.baseUrl;
    return value ? `${base}${base.includes('?') ? '&' : '?'}token=${encodeURIComponent(value)}` : base;
  }

  /** Opens the connection and says hello; resolves with the welcome. */
  connect(): Promise<Welcome> {
    this.setState('connecting');
    return this.open();
  }

  async join(room: string, role: RoleName): Promise<JoinAck> {
    const ack = await this.request<JoinAck>({ type: 'join', room, role });
    this.rooms.set(room, role);
    return ack;
  }

  async leave(room: string): Promise<void> {
    this.rooms.delete(room);
    if (this.state === 'open') await this.request({ type: 'leave', room });
  }

  /**
   * Fire-and-forget relay to one member; errors come back as `error` events. While the
   * socket is down, signals wait (bounded) and go out once the connection is back.
   */
  signal(room: string, to: string, data: unknown): void {
    const msg = { type: 'signal', room, to, data };
    if (this.state === 'open' && this.sendRaw(msg)) return;
    if (this.outbox.length < 500) this.outbox.push(msg);
  }

  close(): void {
    this.setState('closed');
    clearTimeout(this.retryTimer);
    clearTimeout(this.ackTimer);
    clearInterval(this.pingTimer);
    this.rejectAll(new HeraldError('closed', 'signaling closed'));
    this.ws?.close(1000, 'bye');
    this.ws = undefined;
  }

  request<T = any>(body: Record<string, unknown>, timeoutMs = this.options.requestTimeoutMs): Promise<T> {
    const id = this.nextId++;
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new HeraldError('timeout', `no reply to ${String(body.type)} within ${timeoutMs} ms`));
      }, timeoutMs);
      this.pending.set(id, { resolve, reject, timer });
      if (!this.sendRaw({ ...body, id })) {
        clearTimeout(timer);
        this.pending.delete(id);
        reject(new HeraldError('unavailable', 'not connected'));
      }
    });
  }

  // ---- connection lifecycle ----

  private async open(): Promise<Welcome> {
    let url: string;
    try {
      url = await this.socketUrl();
    } catch (err) {
      // The app could not mint a token right now: try again later, as for a failed socket.
      this.emit('error', new HeraldError('unauthorized', `token provider failed: ${(err as Error)?.message ?? err}`));
      this.scheduleReconnect();
      throw err;
    }
    return new Promise<Welcome>((resolve, reject) => {
      const ws = new WebSocket(url);
      this.ws = ws;
      let welcomed = false;
      ws.onmessage = (e) => this.receive(JSON.parse(e.data as string) as ServerMessage);
      ws.onopen = async () => {
        try {
          const welcome = await this.hello();
          welcomed = true;
          this.attempt = 0;
          this.setState('open');
          this.emit('welcome', welcome);
          this.watchLiveness(ws, this.options.pingIntervalMs ?? welcome.heartbeatMs, lost);
          if (!welcome.resumed) await this.rejoin();
          for (const msg of this.outbox.splice(0)) this.sendRaw(msg);
          resolve(welcome);
        } catch (err) {
          reject(err);
          ws.close();
        }
      };
      const lost = (code: number, reason: string) => {
        if (this.ws !== ws) return;
        this.ws = undefined;
        clearInterval(this.pingTimer);
        this.rejectAll(new HeraldError('unavailable', 'connection lost'));
        if (this.state === 'closed') return;
        if (code === 4401 && welcomed && typeof this.options.token === 'function') {
          // The token expired during the connection: reconnect at once with a fresh one.
          this.attempt = 0;
          this.scheduleReconnect();
          return;
        }
        const fatal = FATAL_CLOSE[code];
        if (fatal) {
          this.setState('closed');
          const err = new HeraldError(code === 4401 ? 'unauthorized' : code === 4403 ? 'forbidden' : 'conflict', reason || fatal);
          this.emit('error', err);
          if (!welcomed) reject(err);
          return;
        }
        this.scheduleReconnect();
        if (!welcomed && this.attempt === 1 && this.state === 'reconnecting') {
          // The first connect failed: keep trying in the background, but let the caller know.
          reject(new HeraldError('unavailable', `could not connect to ${this.baseUrl.split('?')[0]}`));
        }
      };
      ws.onclose = (e) => lost(e.code, e.reason);
    });
  }

  /**
   * Pings every `intervalMs`; a ping unanswered for as long means the network is gone even if
   * the browser has not noticed (it only does when TCP gives up, minutes later): drop the
   * socket and reconnect, in time to resume.
   */
  private watchLiveness(ws: WebSocket, intervalMs: number, lost: (code: number, reason: string) => void): void {
    clearInterval(this.pingTimer);
    if (!(intervalMs > 0)) return;
    this.pingTimer = setInterval(() => {
      if (this.ws !== ws) return;
      this.request({ type: 'ping' }, intervalMs).catch(() => {
        if (this.ws !== ws) return;
        ws.onclose = null;
        ws.close();
        lost(1006, 'no answer to ping');
      });
    }, intervalMs);
  }

  private async hello(): Promise<Welcome> {
    const body: Record<string, unknown> = { type: 'hello' };
    if (this.peerId) body.peerId = this.peerId;
    if (this.resumeToken) body.resumeToken = this.resumeToken;
    // Asks for numbered pushes; on a resume the server replays everything after lastSeq.
    body.lastSeq = this.lastSeq;
    const welcome = await this.request<Welcome>(body);
    // A new session numbers its pushes from 1 again.
    if (!welcome.resumed) this.lastSeq = this.ackedSeq = 0;
    this.peerId = welcome.peerId;
    this.resumeToken = welcome.resumeToken;
    this.iceServers = welcome.iceServers as RTCIceServer[];
    return welcome;
  }

  /** A reconnect that could not resume starts clean: join every room again. */
  private async rejoin(): Promise<void> {
    for (const [room, role] of this.rooms) {
      try {
        this.emit('rejoined', await this.request<JoinAck>({ type: 'join', room, role }));
      } catch (err) {
        this.emit('error', err as HeraldError);
      }
    }
  }

  private scheduleReconnect(): void {
    this.setState('reconnecting');
    const { initialMs, maxMs } = this.options.backoff;
    const delay = Math.min(maxMs, initialMs * 2 ** this.attempt) * (0.5 + Math.random() / 2);
    this.attempt++;
    clearTimeout(this.retryTimer);
    this.retryTimer = setTimeout(() => {
      if (this.state !== 'reconnecting') return;
      this.open().catch(() => {
        /* onclose schedules the next try */
      });
    }, delay);
  }

  /**
   * A numbered push is taken once, in order: one at or below `lastSeq` is a replay of what
   * already arrived. Acknowledgements go out in batches (every 32 pushes or 100 ms).
   */
  private fresh(seq: number | undefined): boolean {
    if (seq === undefined) return true;
    if (seq <= this.lastSeq) return false;
    this.lastSeq = seq;
    if (seq - this.ackedSeq >= 32) this.sendAck();
    else this.ackTimer ??= setTimeout(() => this.sendAck(), 100);
    return true;
  }

  private sendAck(): void {
    clearTimeout(this.ackTimer);
    this.ackTimer = undefined;
    if (this.lastSeq > this.ackedSeq && this.sendRaw({ type: 'ack', seq: this.lastSeq })) this.ackedSeq = this.lastSeq;
  }

  private receive(msg: ServerMessage): void {
    if ('seq' in msg && !this.fresh(msg.seq)) return;
    switch (msg.type) {
      case 'ack':
      case 'error': {
        const waiting = msg.id === undefined ? undefined : this.pending.get(msg.id);
        if (!waiting) {
          if (msg.type === 'error') this.emit('error', new HeraldError(msg.code, msg.message));
          return;
        }
        this.pending.delete(msg.id!);
        clearTimeout(waiting.timer);
        if (msg.type === 'ack') waiting.resolve(msg);
        else waiting.reject(new HeraldError(msg.code, msg.message));
        return;
      }
      case 'signal':
        return this.emit('signal', msg);
      case 'peer-joined':
        return this.emit('peer-joined', msg);
      case 'peer-left':
        return this.emit('peer-left', msg);
      case 'expired':
        return this.emit('expired', msg);
      case 'removed':
        this.rooms.delete(msg.room);
        return this.emit('removed', msg);
      case 'counts':
        return this.emit('counts', msg);
      case 'bye':
        // The server is draining: the close that follows triggers a resume elsewhere.
        this.attempt = 0;
        return;
    }
  }

  private sendRaw(msg: Record<string, unknown>): boolean {
    if (this.ws?.readyState !== WebSocket.OPEN) return false;
    this.ws.send(JSON.stringify(msg));
    return true;
  }

  private rejectAll(err: HeraldError): void {
    for (const [id, p] of this.pending) {
      clearTimeout(p.timer);
      p.reject(err);
      this.pending.delete(id);
    }
  }

  private setState(state: ConnectionState): void {
    if (this.state === state) return;
    this.state = state;
    this.emit('state', state);
  }
}
