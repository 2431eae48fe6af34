import { spawn, type ChildProcess } from 'node:child_process';
import { Redis, type RedisOptions } from 'ioredis';
import { waitFor } from './instances.js';

/** Every redis-server (data node or sentinel) still running: killed if the test process exits first. */
const live = new Set<ChildProcess>();
process.once('exit', () => {
  for (const proc of live) proc.kill('SIGKILL');
});

/** One `redis-server` (a data node or a sentinel) on its own loopback port, started from `args`. */
export class RedisProcess {
  private proc: ChildProcess | undefined;
  private exited: Promise<void> = Promise.resolve();
  output = '';

  constructor(
    readonly port: number,
    private readonly args: () => string[],
    /** How the test's own clients reach it (TLS options for a TLS-only server). */
    private readonly clientOptions: RedisOptions = {},
  ) {}

  get address(): string {
    return `127.0.0.1:${this.port}`;
  }

  get running(): boolean {
    return this.proc !== undefined && this.proc.exitCode === null && this.proc.signalCode === null;
  }

  /** Starts (again) and resolves once it answers PING. */
  async start(): Promise<void> {
    if (this.running) throw new Error(`${this.address} is already running`);
    const proc = spawn('redis-server', this.args(), { stdio: ['ignore', 'pipe', 'pipe'] });
    this.proc = proc;
    proc.stdout!.on('data', (d) => (this.output += d));
    proc.stderr!.on('data', (d) => (this.output += d));
    live.add(proc);
    this.exited = new Promise((resolve) =>
      proc.once('exit', () => {
        live.delete(proc);
        resolve();
      }),
    );
    await waitFor(`${this.address} to answer PING`, async () => {
      if (!this.running) throw new Error(`redis-server ${this.address} exited at start: ${this.output.slice(-1000)}`);
      const c = this.client({ retryStrategy: () => null, connectTimeout: 500 });
      try {
        return (await c.ping()) === 'PONG';
      } catch {
        return false;
      } finally {
        c.disconnect();
      }
    });
  }

  /** SIGKILL, as a crash would; resolves once the process is gone. */
  async kill(): Promise<void> {
    if (!this.running) return;
    this.proc!.kill('SIGKILL');
    await this.exited;
  }

  /** A client on this server (the caller disconnects it). */
  client(options: RedisOptions = {}): Redis {
    const c = new Redis({ host: '127.0.0.1', port: this.port, maxRetriesPerRequest: 1, ...this.clientOptions, ...options });
    c.on('error', () => {});
    return c;
  }

  /** Runs one command on a short-lived connection. */
  async call(...args: string[]): Promise<unknown> {
    const c = this.client();
    try {
      return await c.call(args[0]!, ...args.slice(1));
    } finally {
      c.disconnect();
    }
  }

  /** `role` from INFO replication: 'master' or 'slave' (undefined when it does not answer). */
  async role(): Promise<string | undefined> {
    if (!this.running) return undefined;
    try {
      return /role:(\w+)/.exec(String(await this.call('INFO', 'replication')))?.[1];
    } catch {
      return undefined;
    }
  }
}
