import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Cluster } from './cluster/cluster.js';
import { MemoryCluster } from './cluster/memory.js';
import type { Config } from './config.js';
import { Hub } from './core/hub.js';
import { Gateway } from './gateway/gateway.js';
import { createApp } from './http/app.js';
import { createLogger, type Logger } from './observability/logger.js';

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
  private draining = false;

  constructor(readonly config: Config, log?: Logger) {
    this.log = log ?? createLogger(config.logLevel);
    this.cluster = new MemoryCluster();
    this.hub = new Hub(this.cluster, {
      maxPeersPerRoom: config.maxPeersPerRoom,
      maxRoomsPerPeer: config.maxRoomsPerConnection,
      resumeGraceMs: config.resumeGraceMs,
      resumeQueueMax: config.resumeQueueMax,
    });
    this.gateway = new Gateway(config, this.hub, this.log);
    const app = createApp({ log: this.log, readiness: { notReadyReason: () => this.notReadyReason() } });
    this.server = createServer(app.callback());
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

  /** Graceful stop: refuse new sockets, close the open ones, stop listening. */
  async stop(reason = 'server shutting down'): Promise<void> {
    this.draining = true;
    await this.gateway.closeAll(reason, this.config.drainDeadlineMs);
    this.gateway.stop();
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
    await this.cluster.stop();
  }
}
