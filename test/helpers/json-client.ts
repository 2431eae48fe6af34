import type { ClientOptions } from 'ws';
import type { Hub } from '../../src/core/hub.js';
import { TestSocket, type Closed } from './socket.js';

/** A typed error reply, thrown by `JsonClient.request`. */
export class JsonError extends Error {
  constructor(
    readonly code: string,
    message: string,
    readonly id: number | undefined,
  ) {
    super(`${code}: ${message}`);
    this.name = 'JsonError';
  }
}

/**
 * A JSON-protocol client over a `TestSocket`: requests get auto-incrementing ids, and each
 * resolves with its `ack` or rejects with a `JsonError` for its `error` (matched by id, so
 * pushes in between stay queued for `nextJson`).
 */
export class JsonClient {
  private nextId = 1;
  peerId = '';
  resumeToken = '';

  constructor(readonly socket: TestSocket) {}

  static async open(wsBase: string, options?: ClientOptions): Promise<JsonClient> {
    return new JsonClient(await TestSocket.open(`${wsBase}/ws`, options));
  }

  /** Opens a socket and says hello; `extra` may ask for a peerId or carry a resumeToken. */
  static async connect(wsBase: string, extra: Record<string, unknown> = {}): Promise<JsonClient> {
    const c = await JsonClient.open(wsBase);
    await c.hello(extra);
    return c;
  }

  /** Sends `msg` with a fresh id; resolves with the ack, rejects with a JsonError. */
  async request<T = any>(msg: Record<string, unknown>, timeoutMs?: number): Promise<T> {
    const id = this.nextId++;
    this.socket.send(JSON.stringify({ ...msg, id }));
    return this.reply<T>(id, timeoutMs);
  }

  /** Waits for the ack or error of request `id`. */
  async reply<T = any>(id: number, timeoutMs?: number): Promise<T> {
    const text = await this.socket.next((m) => {
      if (!m.includes(`"id":${id}`)) return false;
      const p = JSON.parse(m);
      return p.id === id && (p.type === 'ack' || p.type === 'error');
    }, timeoutMs);
    const reply = JSON.parse(text);
    if (reply.type === 'error') throw new JsonError(reply.code, reply.message, reply.id);
    return reply as T;
  }

  /** A request id nobody has used yet, for frames the test builds by hand. */
  takeId(): number {
    return this.nextId++;
  }

  async hello(extra: Record<string, unknown> = {}): Promise<any> {
    const ack = await this.request({ type: 'hello', ...extra });
    this.peerId = ack.peerId;
    this.resumeToken = ack.resumeToken;
    return ack;
  }

  join(room: string, role: 'broadcaster' | 'viewer' | 'peer'): Promise<any> {
    return this.request({ type: 'join', room, role });
  }

  leave(room: string): Promise<any> {
    return this.request({ type: 'leave', room });
  }

  /** A signal with an id: resolves with its ack. */
  signal(room: string, to: string, data: unknown): Promise<any> {
    return this.request({ type: 'signal', room, to, data });
  }

  /** A fire-and-forget signal (no id, so no ack on success). */
  signalNoAck(room: string, to: string, data: unknown): void {
    this.send({ type: 'signal', room, to, data });
  }

  send(msg: unknown): void {
    this.socket.send(typeof msg === 'string' ? msg : JSON.stringify(msg));
  }

  nextJson<T = any>(type: string, timeoutMs?: number): Promise<T> {
    return this.socket.nextJson<T>(type, timeoutMs);
  }

  /** The next message of `type` for which `match` holds (others stay queued). */
  async nextWhere<T = any>(type: string, match: (m: any) => boolean, timeoutMs?: number): Promise<T> {
    const text = await this.socket.next((m) => {
      if (!m.includes(`"type":"${type}"`)) return false;
      const p = JSON.parse(m);
      return p.type === type && match(p);
    }, timeoutMs);
    return JSON.parse(text);
  }

  /** The next `signal` push whose data has `tag` (see `tagged`). */
  nextSignal(tag: string, timeoutMs?: number): Promise<any> {
    return this.nextWhere('signal', (m) => m.data?.tag === tag, timeoutMs);
  }

  /**
   * Unconsumed messages, parsed, except `counts`: that push is coalesced on a timer, so it
   * may arrive at any moment and has no place in an "exactly these messages" check.
   */
  pendingJson(): any[] {
    return this.socket.pending.map((m) => JSON.parse(m)).filter((m) => !isTimed(m));
  }

  /** The next message of any type but `counts` (see `pendingJson`). */
  async nextMessage(timeoutMs?: number): Promise<any> {
    return JSON.parse(await this.socket.next((m) => !isTimed(JSON.parse(m)), timeoutMs));
  }

  /** Every message received so far, parsed, except `counts`. */
  receivedJson(): any[] {
    return this.socket.received.map((m) => JSON.parse(m)).filter((m) => !isTimed(m));
  }

  get closed(): Promise<Closed> {
    return this.socket.closed;
  }

  close(code?: number): Promise<Closed> {
    this.socket.ws.close(code);
    return this.socket.closed;
  }

  /** Drops the TCP connection without a close frame (a network cut). */
  terminate(): Promise<Closed> {
    this.socket.ws.terminate();
    return this.socket.closed;
  }
}

/** Pushes sent on a timer rather than in answer to something: `counts`. */
const isTimed = (m: { type?: unknown }) => m.type === 'counts';

/** Rejects unless `p` rejects with a JsonError of `code`; resolves with that error. */
export async function expectError(p: Promise<unknown>, code: string): Promise<JsonError> {
  let reply: unknown;
  try {
    reply = await p;
  } catch (err) {
    if (err instanceof JsonError && err.code === code) return err;
    throw new Error(`expected error ${code}, got ${err instanceof Error ? err.message : String(err)}`);
  }
  throw new Error(`expected error ${code}, got ${JSON.stringify(reply)}`);
}

/**
 * Resolves when the hub has handled the close of a socket held by `peerId`: wraps
 * `hub.disconnect` once per hub so tests wait for the server's side of a drop, not a timer.
 */
export function disconnectWatcher(hub: Hub): (peerId: string) => Promise<void> {
  const waiters = new Map<string, (() => void)[]>();
  const disconnect = hub.disconnect.bind(hub);
  hub.disconnect = (peerId, ...rest) => {
    disconnect(peerId, ...rest);
    const list = waiters.get(peerId);
    waiters.delete(peerId);
    for (const resolve of list ?? []) resolve();
  };
  return (peerId) =>
    new Promise<void>((resolve) => {
      const list = waiters.get(peerId) ?? [];
      list.push(resolve);
      waiters.set(peerId, list);
    });
}

let seq = 0;
/** A fresh id per use, so tests on one server never share rooms or peer ids. */
export const uid = (prefix: string) => `${prefix}${++seq}`;
