import { spawn, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { Redis } from 'ioredis';

/** A free loopback TCP port (bound and released; good enough for a test's own servers). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

/** Every redis-server still running: killed if the test process exits first. */
const live = new Set<ChildProcess>();
process.once('exit', () => {
  for (const proc of live) proc.kill('SIGKILL');
});

/**
 * A throwaway `redis-server` of the test's own, on its own port (never the machine's 6379),
 * without persistence: fault tests kill it, and a restart comes back empty, like a real
 * crash of a cache-only Redis.
 */
export class TestRedis {
  private proc: ChildProcess | undefined;
  private exited: Promise<void> = Promise.resolve();

  private constructor(readonly port: number) {}

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  static async start(port?: number): Promise<TestRedis> {
    const redis = new TestRedis(port ?? (await freePort()));
    await redis.restart();
    return redis;
  }

  get running(): boolean {
    return this.proc !== undefined && this.proc.exitCode === null && this.proc.signalCode === null;
  }

  /** Starts (again) on the same port and resolves once it answers PING. */
  async restart(): Promise<void> {
    if (this.running) throw new Error('redis-server is already running');
    const proc = spawn(
      'redis-server',
      ['--port', String(this.port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--protected-mode', 'no', '--loglevel', 'warning'],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    this.proc = proc;
    let output = '';
    proc.stdout!.on('data', (d) => (output += d));
    proc.stderr!.on('data', (d) => (output += d));
    live.add(proc);
    this.exited = new Promise((resolve) =>
      proc.once('exit', () => {
        live.delete(proc);
        resolve();
      }),
    );
    const deadline = Date.now() + 10_000;
    for (;;) {
      if (!this.running) throw new Error(`redis-server exited at start: ${output.trim()}`);
      if (await this.ping()) return;
      if (Date.now() > deadline) throw new Error(`redis-server did not answer on ${this.port}: ${output.trim()}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  /** SIGKILL, as a crash would; resolves once the process is gone. */
  async kill(): Promise<void> {
    if (!this.running) return;
    this.proc!.kill('SIGKILL');
    await this.exited;
  }

  stop(): Promise<void> {
    return this.kill();
  }

  /** A fresh client on this server (the caller disconnects it). */
  client(): Redis {
    return new Redis(this.url, { lazyConnect: false, maxRetriesPerRequest: 1 });
  }

  private async ping(): Promise<boolean> {
    const probe = new Redis(this.url, { lazyConnect: true, retryStrategy: () => null, maxRetriesPerRequest: 0, connectTimeout: 500 });
    probe.on('error', () => {});
    try {
      await probe.connect();
      return (await probe.ping()) === 'PONG';
    } catch {
      return false;
    } finally {
      probe.disconnect();
    }
  }
}
