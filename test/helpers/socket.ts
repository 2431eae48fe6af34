import WebSocket, { type ClientOptions } from 'ws';

export interface Closed {
  code: number;
  reason: string;
}

/**
 * A real `ws` client whose incoming messages are queued, so a test waits for the message
 * it expects (`next`) instead of sleeping. Every wait has a timeout that fails the test.
 */
export class TestSocket {
  readonly ws: WebSocket;
  readonly received: string[] = [];
  readonly opened: Promise<void>;
  readonly closed: Promise<Closed>;
  /** Messages no `next` has consumed yet, oldest first. */
  readonly pending: string[] = [];
  private waiters: { match: (m: string) => boolean; resolve: (m: string) => void }[] = [];

  constructor(url: string, options: ClientOptions = {}) {
    this.ws = new WebSocket(url, options);
    this.opened = new Promise((resolve, reject) => {
      this.ws.once('open', () => resolve());
      this.ws.once('error', reject);
      this.ws.once('unexpected-response', (_req, res) => reject(new Error(`upgrade refused: ${res.statusCode}`)));
    });
    this.closed = new Promise((resolve) => this.ws.once('close', (code, reason) => resolve({ code, reason: reason.toString() })));
    this.ws.on('message', (data) => {
      const text = data.toString();
      this.received.push(text);
      this.take(text);
    });
  }

  static async open(url: string, options?: ClientOptions): Promise<TestSocket> {
    const s = new TestSocket(url, options);
    await s.opened;
    return s;
  }

  send(data: string | Buffer): void {
    this.ws.send(data);
  }

  /** Resolves with the oldest not-yet-consumed message that matches (default: any). */
  next(match: (m: string) => boolean = () => true, timeoutMs = 5000): Promise<string> {
    const index = this.pending.findIndex(match);
    if (index >= 0) return Promise.resolve(this.pending.splice(index, 1)[0]!);
    return new Promise((resolve, reject) => {
      const waiter = {
        match,
        resolve: (m: string) => {
          clearTimeout(timer);
          resolve(m);
        },
      };
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w !== waiter);
        reject(new Error(`timed out waiting for a message; unconsumed: ${JSON.stringify(this.pending.slice(-5))}`));
      }, timeoutMs);
      this.waiters.push(waiter);
    });
  }

  /** Shorthand: the next message that starts with `prefix`. */
  nextStarting(prefix: string, timeoutMs?: number): Promise<string> {
    return this.next((m) => m.startsWith(prefix), timeoutMs);
  }

  /** Parsed JSON shorthand: the next message whose `type` is `type`. */
  async nextJson<T = any>(type: string, timeoutMs?: number): Promise<T> {
    return JSON.parse(await this.next((m) => m.includes(`"type":"${type}"`) && JSON.parse(m).type === type, timeoutMs));
  }

  close(): Promise<Closed> {
    this.ws.close();
    return this.closed;
  }

  private take(message: string): void {
    const index = this.waiters.findIndex((w) => w.match(message));
    if (index >= 0) this.waiters.splice(index, 1)[0]!.resolve(message);
    else this.pending.push(message);
  }
}

/** Resolves with the HTTP status of a refused upgrade; fails if the socket opens. */
export async function refusedStatus(url: string, headers: Record<string, string> = {}, localAddress?: string): Promise<number> {
  const s = new TestSocket(url, { headers, localAddress });
  const err = await s.opened.then(
    () => {
      s.ws.close();
      return new Error(`upgrade to ${url} was accepted`);
    },
    (e: Error) => e,
  );
  const m = /upgrade refused: (\d+)/.exec(err.message);
  if (!m) throw err;
  return Number(m[1]);
}
