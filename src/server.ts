import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type Koa from 'koa';
import type { Cluster } from './core/cluster.js';
import { MemoryCluster } from './cluster/memory.js';
import { RedisCluster } from './cluster/redis/index.js';
import type { Config } from './config.js';
import { Hub } from './core/hub.js';
import { Gateway } from './gateway/gateway.js';
import { createApp } from './http/app.js';
import { WhepEndpoint } from './http/whep.js';
import { Tokens } from './auth/tokens.js';
import { InstanceReporter } from './observability/instance-reporter.js';
import { createLogger, type Logger } from './observability/logger.js';
import { Metrics } from './observability/metrics.js';

export interface AttachOptions {
  /**
   * Which WebSocket upgrades Herald takes from the app's server: `'json'` (default) only its
   * JSON protocol at `/ws`, leaving every other path to the app; `'all'` every upgrade (also
   * the seed protocol's `/<role>/<id>` paths), for a server with no WebSockets of its own.
   */
  upgrades?: 'json' | 'all';
}

/**
 * One Herald instance: a Koa app and the WebSocket gateway over one core and one cluster.
 * `start()` serves both on an http.Server of its own; `attach(server)` instead shares an
 * app's existing server (docs/deploy.md "Embedding").
 */
export class Herald {
  readonly log: Logger;
  /** @internal */
  readonly cluster: Cluster;
  /** @internal */
  readonly hub: Hub;
  /** @internal */
  readonly gateway: Gateway;
  /** Herald's own http.Server, which `start()` listens on (unused after `attach()`). */
  readonly server: Server;
  /** @internal */
  readonly metrics: Metrics;
  /** @internal Publishes this instance's status and rate history for the console. */
  readonly reporter: InstanceReporter;
  /** @internal WHEP players' sessions held here (docs/whep.md). */
  readonly whep: WhepEndpoint;
  /** @internal Undefined in open dev mode (no HERALD_SECRET). */
  readonly tokens: Tokens | undefined;
  /**
   * Herald's HTTP routes (health, metrics, /api/*, the SDK at /sdk/herald.js, the demo pages)
   * as a Koa app: an app that attached Herald may mount it (e.g. with koa-mount) to serve them.
   */
  readonly app: Koa;
  private draining = false;
  private started = false;
  /** After `attach()`: the app's server, and how to give its upgrades back. */
  private host: { server: Server; detach: () => void } | undefined;

  constructor(readonly config: Config, log?: Logger) {
    this.log = log ?? createLogger(config.logLevel);
    this.cluster = config.redisUrl || config.redisClusterNodes || config.redisSentinels ? new RedisCluster(config, this.log) : new MemoryCluster();
    this.metrics = new Metrics({
      connections: () => ({ ...this.gateway.connectionCounts(), whep: this.whep.size }),
      rooms: () => this.hub.roomCount,
      clusterUp: () => this.cluster.healthy,
    });
    this.tokens = config.secret ? new Tokens(config.secret) : undefined;
    this.hub = new Hub(this.cluster, {
      maxPeersPerRoom: config.maxPeersPerRoom,
      maxRoomsPerPeer: config.maxRoomsPerConnection,
      resumeGraceMs: config.resumeGraceMs,
      resumeQueueMax: config.resumeQueueMax,
      countsIntervalMs: config.countsIntervalMs,
      directTtlMs: config.peerjsExpireMs,
      directQueueMax: config.resumeQueueMax,
    }, this.metrics);
    this.gateway = new Gateway(config, this.hub, this.log, this.metrics, this.tokens);
    this.reporter = new InstanceReporter({
      registry: this.metrics.registry,
      cluster: this.cluster,
      log: this.log,
      notReadyReason: () => this.notReadyReason(),
    });
    this.whep = new WhepEndpoint(config, this.hub, this.tokens, this.metrics, this.log);
    this.app = createApp({
      config,
      log: this.log,
      hub: this.hub,
      metrics: this.metrics,
      tokens: this.tokens,
      readiness: { notReadyReason: () => this.notReadyReason() },
      reporter: this.reporter,
      whep: this.whep,
    });
    const handle = this.app.callback();
    // Short header and request deadlines, checked every second: a socket that sends partial
    // headers holds a file descriptor for seconds, not Node's default 60-90 s.
    this.server = createServer(
      {
        headersTimeout: config.headersTimeoutMs,
        requestTimeout: Math.max(config.requestTimeoutMs, config.headersTimeoutMs),
        connectionsCheckingInterval: Math.min(1000, config.headersTimeoutMs),
      },
      (req, res) => void handle(req, res),
    );
  }

  notReadyReason(): string | undefined {
    if (this.draining) return 'draining';
    if (!this.cluster.healthy) return 'cluster unavailable';
    return undefined;
  }

  /** Listens on `config.port`/`config.host` and resolves to the bound port (useful with port 0). */
  async start(): Promise<number> {
    this.claimStart();
    await this.cluster.start(this.hub);
    this.gateway.attach(this.server);
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(this.config.port, this.config.host, () => resolve());
    });
    this.reporter.start();
    return this.port;
  }

  /**
   * Shares an app's existing http.Server instead of listening: Herald takes the WebSocket
   * upgrades `options.upgrades` names and nothing else, so the app's own routes and its other
   * upgrades are untouched (`config.port`/`host` are not used). `stop()` drains Herald's
   * sockets and gives the upgrades back, but leaves the app's server running.
   */
  async attach(server: Server, options: AttachOptions = {}): Promise<void> {
    this.claimStart();
    await this.cluster.start(this.hub);
    const wants = options.upgrades === 'all' ? undefined : (req: IncomingMessage) => new URL(req.url ?? '/', 'http://herald').pathname === '/ws';
    // The app's server keeps its own connection handling: no admission counting at accept.
    this.host = { server, detach: this.gateway.attach(server, { wants, admission: false }) };
    this.reporter.start();
  }

  private claimStart(): void {
    if (this.started) throw new Error('this Herald was already started (start() or attach() once per instance)');
    this.started = true;
  }

  /** The port Herald's sockets arrive on (the app's server's, after `attach()`). */
  get port(): number {
    return ((this.host?.server ?? this.server).address() as AddressInfo).port;
  }

  /**
   * Graceful drain (docs/operations.md "Drain"): report not-ready and refuse new sockets at once, give load
   * balancers `drainGraceMs` to notice, then close every socket (JSON: `bye` + 1012, seed:
   * 1001), force the stragglers at `drainDeadlineMs`, and stop listening.
   */
  async stop(reason = 'server shutting down', graceMs = this.config.drainGraceMs): Promise<void> {
    if (this.draining) return;
    this.draining = true;
    this.gateway.stopAccepting();
    if (graceMs > 0) await new Promise((r) => setTimeout(r, graceMs));
    await Promise.all([this.gateway.closeAll(reason, this.config.drainDeadlineMs), this.whep.closeAll()]);
    this.gateway.stop();
    if (this.host) {
      this.host.detach();
    } else {
      this.server.closeAllConnections();
      await new Promise<void>((resolve) => this.server.close(() => resolve()));
    }
    this.reporter.stop();
    this.hub.stop();
    await this.cluster.stop();
  }
}
