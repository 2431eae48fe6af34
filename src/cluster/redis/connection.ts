import { Cluster as IoCluster, Redis, type ClusterOptions, type RedisOptions } from 'ioredis';
import { DIRECT_SCRIPTS } from './direct.js';
import { HeraldError } from '../../core/errors.js';
import type { Logger } from '../../observability/logger.js';
import { Faults } from './faults.js';
import { accessOptions, describeTarget, type RedisTarget } from './options.js';
import * as lua from './scripts.js';

/** The Lua scripts, as commands on a connection (src/cluster/redis/scripts.ts documents each). */
export interface Scripts {
  heraldJoin(...args: (string | number)[]): Promise<[number, string[], string, string[]]>;
  heraldLeave(...args: (string | number)[]): Promise<[] | [number, string[], string]>;
  heraldReap(...args: (string | number)[]): Promise<(number | string | string[])[]>;
  heraldRestore(...args: (string | number)[]): Promise<[number, string[], string[], string[], string[], string[], string[], string[]]>;
  heraldSnapshot(...args: (string | number)[]): Promise<[number, string[]]>;
  heraldClaim(...args: (string | number)[]): Promise<[string, number]>;
  heraldReclaim(...args: (string | number)[]): Promise<string>;
  heraldRelease(...args: (string | number)[]): Promise<number>;
}

export type Commands = (Redis | IoCluster) & Scripts;

const SCRIPTS = [
  ['heraldJoin', 4, lua.JOIN],
  ['heraldLeave', 4, lua.LEAVE],
  ['heraldReap', 4, lua.REAP],
  ['heraldRestore', 4, lua.RESTORE],
  ['heraldSnapshot', 2, lua.SNAPSHOT],
  ['heraldClaim', 1, lua.CLAIM],
  ['heraldReclaim', 1, lua.RECLAIM],
  ['heraldRelease', 1, lua.RELEASE],
  ...DIRECT_SCRIPTS,
] as const;

/** Options shared by every connection: fail fast instead of queueing while Redis is away. */
const FAIL_FAST: RedisOptions = {
  lazyConnect: true,
  enableOfflineQueue: false,
  maxRetriesPerRequest: 0,
  commandTimeout: 2000,
  connectTimeout: 2000,
};

/**
 * The two connections an instance keeps: `cmd` for commands and scripts (auto-pipelined),
 * `sub` for subscriptions. On one Redis (or a Sentinel-watched master) they are plain
 * clients; on a Redis Cluster they are ioredis `Cluster`s, and `sub` uses sharded pub/sub
 * (SSUBSCRIBE, delivered as `smessage`). src/cluster/redis/options.ts adds credentials, TLS
 * and the sentinels to each.
 */
export class RedisConnection {
  readonly cmd: Commands;
  readonly sub: Redis | IoCluster;
  readonly sharded: boolean;
  /** Certificate, password and permission errors, logged for the operator (once each). */
  readonly faults: Faults;
  private closing = false;

  constructor(
    readonly target: RedisTarget,
    instanceId: string,
    log?: Logger,
  ) {
    this.faults = new Faults(log);
    this.sharded = target.kind === 'cluster';
    const access = accessOptions(target);
    if (target.kind !== 'cluster') {
      const options: RedisOptions = {
        ...FAIL_FAST,
        ...access,
        retryStrategy: (attempt) => Math.min(attempt * 100, 1000),
        enableAutoPipelining: true,
        // A master demoted under us (a failover that kept this connection, a managed Redis
        // behind one DNS name) answers writes READONLY: reconnect, to wherever the master is now.
        reconnectOnError: (err) => this.demoted(err),
      };
      const client = (own: RedisOptions) => (target.kind === 'url' ? new Redis(target.url, { ...options, ...own }) : new Redis({ ...options, ...own }));
      this.cmd = client({ connectionName: `herald:${instanceId}` }) as Commands;
      this.sub = client({
        enableAutoPipelining: false,
        autoResubscribe: false, // recovery subscribes, after re-basing the replicas
        connectionName: `herald-sub:${instanceId}`,
      });
      // A failover makes the sentinels kill the old master's clients; a sentinel that kills
      // only normal ones leaves `sub` there: when `cmd` comes back on another server, `sub`
      // follows it.
      if (target.kind === 'sentinel') this.cmd.on('ready', () => this.follow());
    } else {
      const options = (name: string, sharded: boolean): ClusterOptions => ({
        lazyConnect: true,
        enableOfflineQueue: false,
        enableAutoPipelining: !sharded,
        shardedSubscribers: sharded,
        // A dead master is not fatal: the rest of the cluster keeps serving its slots.
        clusterRetryStrategy: (attempt) => Math.min(attempt * 100, 1000),
        retryDelayOnClusterDown: 100,
        retryDelayOnFailover: 100,
        retryDelayOnMoved: 0,
        maxRedirections: 4,
        slotsRefreshTimeout: 1000,
        slotsRefreshInterval: 2000,
        redisOptions: { ...FAIL_FAST, ...access, connectionName: name },
      });
      this.cmd = new IoCluster(target.nodes, options(`herald:${instanceId}`, false)) as Commands;
      this.sub = new IoCluster(target.nodes, options(`herald-sub:${instanceId}`, true));
    }
    for (const [name, numberOfKeys, script] of SCRIPTS) this.cmd.defineCommand(name, { numberOfKeys, lua: script });
  }

  get ready(): boolean {
    return this.cmd.status === 'ready' && this.sub.status === 'ready';
  }

  /** Where log lines say Redis is (never a password). */
  describe(): string {
    return describeTarget(this.target);
  }

  /** Sentinel mode: moves `sub` to the server `cmd` is on, if it is elsewhere. */
  private follow(): void {
    const [cmd, sub] = [(this.cmd as Redis).stream, (this.sub as Redis).stream];
    if (this.sub.status !== 'ready' || !cmd || !sub) return;
    if (cmd.remoteAddress === sub.remoteAddress && cmd.remotePort === sub.remotePort) return;
    this.faults.moved(this.describe());
    (this.sub as Redis).disconnect(true);
  }

  /**
   * `cmd` got READONLY: it reconnects (ioredis does, when this returns 1), and so must `sub`,
   * which never writes and so would stay subscribed on the demoted server.
   */
  private demoted(err: Error): 1 | false {
    if (!err.message.startsWith('READONLY')) return false;
    if (this.sub.status === 'ready') {
      this.faults.demoted(this.describe());
      (this.sub as Redis).disconnect(true);
    }
    return 1;
  }

  connect(): void {
    for (const conn of [this.cmd, this.sub]) {
      // ioredis ends a client for good when its connector gives up (e.g. a sentinel
      // connector interrupted mid-resolution): Herald never gives up before stop().
      conn.on('end', () => {
        if (!this.closing) setTimeout(() => !this.closing && conn.status === 'end' && conn.connect().catch(() => {}), 1000).unref();
      });
      conn.connect().catch(() => {});
    }
  }

  disconnect(): void {
    this.closing = true;
    this.cmd.disconnect();
    this.sub.disconnect();
  }
}

/** Errors that mean "Redis (or the master of this slot) is not there right now" rather than a script's answer. */
export function isUnavailable(err: unknown): boolean {
  if (err instanceof HeraldError) return err.code === 'unavailable';
  const text = err instanceof Error ? `${err.name} ${err.message}` : String(err);
  return /offline|enableOfflineQueue|Connection is closed|MaxRetriesPerRequest|timed out|READONLY|ECONNREFUSED|ECONNRESET|EPIPE|not writeable|Stream isn't|CLUSTERDOWN|Too many Cluster redirections|Failed to refresh slots|None of startup nodes|TRYAGAIN|MOVED|ASK |NOSCRIPT|LOADING/i.test(text);
}

export const UNREACHABLE = 'the cluster directory (redis) is unreachable';
