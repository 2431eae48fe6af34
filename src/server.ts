import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Cluster } from './cluster/cluster.js';
import { MemoryCluster } from './cluster/memory.js';
import { RedisCluster } from './cluster/redis.js';
import type { Config } from './config.js';
import { Hub } from './core/hub.js';
import { Gateway } from './gateway/gateway.js';
import { createApp } from './http/app.js';
import { Tokens } from './auth/tokens.js';
import { createLogger, type Logger } from './observability/logger.js';
import { Metrics } from './observability/metrics.js';

/**
 * One Herald instance: a Koa app and the WebSocket gateway on one http.Server and one
 * port, over one core and one cluster.
 */
export class Herald {
  readonly log: Logger;
  readonly cluster: Cluster;
  readonly hub: Hub;
  readonly gateway: Gateway;
  readonly server: Server;
  readonly metrics: Metrics;
  /** Undefined in open dev mode (no HERALD_SECRET). */
  readonly tokens: Tokens | undefined;
  private draining = false;

  constructor(readonly config: Config, log?: Logger) {
    this.log = log ?? createLogger(config.logLevel);
    this.cluster = config.redisUrl ? new RedisCluster(config, this.log) : new MemoryCluster();
    this.metrics = new Metrics({
      connections: () => this.gateway.connectionCounts(),
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
    }, this.metrics);
    this.gateway = new Gateway(config, this.hub, this.log, this.metrics, this.tokens);
    const app = createApp({
      config,
      log: this.log,
      hub: this.hub,
      metrics: this.metrics,
      tokens: this.tokens,
      readiness: { notReadyReason: () => this.notReadyReason() },
    });
    const handle = app.callback();
    // Short header and request deadlines, checked every second: a socket that sends partial
    // headers holds a file descriptor for seconds, not Node's default 60-90 s.
    this.server = createServer(
      {
        headersTimeout: config.headersTimeoutMs,
        requestTimeout: Math.max(config.requestTimeoutMs, config.headersTimeoutMs),
        connectionsCheckingInterval: Math.min(1000, config.headersTimeoutMs),
      },
      (req, res) => {
        if (this.gateway.admission.refusesRequest(req)) {
          res.writeHead(429, { 'Content-Type': 'application/json', Connection: 'close' });
          res.end(JSON.stringify({ error: 'rate-limited', message: `at most ${config.maxConnectionsPerIp} connections per client address` }));
          return;
        }
        void handle(req, res);
      },
    );
    this.gateway.attach(this.server);
  }

  notReadyReason(): string | undefined {
    if (this.draining) return 'draining';
    if (!this.cluster.healthy) return 'cluster unavailable';
    return undefined;
  }

  /** Listens and resolves to the bound port (useful with port 0). */
  async start(): Promise<number> {
    await this.cluster.start(this.hub);
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(this.config.port, this.config.host, () => resolve());
    });
    return this.port;
  }

  get port(): number {
    return (this.server.address() as AddressInfo).port;
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
    await this.gateway.closeAll(reason, this.config.drainDeadlineMs);
    this.gateway.stop();
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
    this.hub.stop();
    await this.cluster.stop();
  }
}
