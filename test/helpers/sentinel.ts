import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis, type RedisOptions } from 'ioredis';
import { waitFor } from './instances.js';
import { freePort } from './redis.js';

/** Every redis-server and sentinel still running: killed if the test process exits first. */
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

export const MASTER_NAME = 'mymaster';

/**
 * A master, a replica and three sentinels watching them (quorum 2), each its own process
 * with a config file in a temp dir, tuned to fail over within seconds: a master is down
 * after 1 s of silence, and a failover may be retried after 3 s. No persistence.
 */
export class SentinelGroup {
  private constructor(
    readonly dir: string,
    /** The two data nodes; which is master changes with failovers. */
    readonly nodes: [RedisProcess, RedisProcess],
    readonly sentinels: RedisProcess[],
  ) {}

  static async start(): Promise<SentinelGroup> {
    const dir = mkdtempSync(join(tmpdir(), 'herald-sentinel-'));
    const [mPort, rPort, ...sPorts] = await Promise.all(Array.from({ length: 5 }, () => freePort()));
    const data = (port: number, replicaOf?: number) => () => [
      '--port', String(port), '--bind', '127.0.0.1', '--protected-mode', 'no', '--save', '', '--appendonly', 'no',
      '--loglevel', 'warning', '--dir', dir, '--dbfilename', `dump-${port}.rdb`,
      ...(replicaOf ? ['--replicaof', '127.0.0.1', String(replicaOf)] : []),
    ];
    const master = new RedisProcess(mPort!, data(mPort!));
    const replica = new RedisProcess(rPort!, data(rPort!, mPort));
    const sentinels = sPorts.map((port) => {
      const file = join(dir, `sentinel-${port}.conf`);
      writeFileSync(
        file,
        [
          `port ${port}`, 'bind 127.0.0.1', 'protected-mode no', `dir ${dir}`, 'loglevel warning',
          `sentinel monitor ${MASTER_NAME} 127.0.0.1 ${mPort} 2`,
          `sentinel down-after-milliseconds ${MASTER_NAME} 1000`,
          `sentinel failover-timeout ${MASTER_NAME} 3000`,
          `sentinel parallel-syncs ${MASTER_NAME} 1`,
          '',
        ].join('\n'),
      );
      // The config file is the sentinel's state too (it rewrites it): start from it each time.
      return new RedisProcess(port, () => [file, '--sentinel']);
    });
    const group = new SentinelGroup(dir, [master, replica], sentinels);
    try {
      await master.start();
      await replica.start();
      await Promise.all(sentinels.map((s) => s.start()));
      await group.settled();
    } catch (err) {
      await group.stop();
      throw err;
    }
    return group;
  }

  /** `host:port,…` of the sentinels, for REDIS_SENTINELS. */
  get sentinelList(): string {
    return this.sentinels.map((s) => s.address).join(',');
  }

  /** The data node every running sentinel names as master now. */
  async master(): Promise<RedisProcess | undefined> {
    const named = await Promise.all(
      this.sentinels.filter((s) => s.running).map((s) => s.call('SENTINEL', 'get-master-addr-by-name', MASTER_NAME).catch(() => undefined)),
    );
    const ports = new Set(named.map((n) => (Array.isArray(n) ? Number(n[1]) : -1)));
    if (ports.size !== 1) return undefined;
    return this.nodes.find((n) => ports.has(n.port));
  }

  /**
   * The master, when the group is steady: every sentinel names it and it answers as master;
   * the other node replicates it with its link up; and every sentinel knows that replica and
   * the two other sentinels (so that a failover can be agreed on).
   */
  async steady(): Promise<RedisProcess | undefined> {
    const master = await this.master();
    if (!master || (await master.role()) !== 'master') return undefined;
    const replica = this.nodes.find((n) => n !== master)!;
    const info = replica.running ? String(await replica.call('INFO', 'replication').catch(() => '')) : '';
    if (!info.includes('role:slave') || !info.includes('master_link_status:up') || !info.includes(`master_port:${master.port}`)) return undefined;
    for (const s of this.sentinels) {
      const replicas = (await s.call('SENTINEL', 'replicas', MASTER_NAME).catch(() => [])) as string[][];
      const others = (await s.call('SENTINEL', 'sentinels', MASTER_NAME).catch(() => [])) as string[][];
      const up = replicas.filter((r) => r[r.indexOf('port') + 1] === String(replica.port) && !/down|disconnected/.test(r[r.indexOf('flags') + 1] ?? ''));
      if (up.length !== 1 || others.length !== this.sentinels.length - 1) return undefined;
    }
    return master;
  }

  /** Waits until every running sentinel names `node` master and it answers as one (its replica may be down). */
  promotedTo(node: RedisProcess, timeoutMs = 30_000): Promise<number> {
    return waitFor(`${node.address} to be promoted`, async () => (await this.master()) === node && (await node.role()) === 'master', timeoutMs, 100);
  }

  /** Waits until the group is steady (any master). */
  async settled(timeoutMs = 30_000): Promise<void> {
    await waitFor('the sentinel group to settle', async () => (await this.steady()) !== undefined, timeoutMs, 200);
  }

  /** Waits until the group is steady with `master` as its master; resolves with how long that took. */
  settledOn(master: RedisProcess, timeoutMs = 30_000): Promise<number> {
    return waitFor(`the sentinel group to settle on ${master.address}`, async () => (await this.steady()) === master, timeoutMs, 200);
  }

  async stop(): Promise<void> {
    await Promise.all([...this.nodes, ...this.sentinels].map((p) => p.kill()));
    rmSync(this.dir, { recursive: true, force: true });
  }
}
