import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { waitFor } from './instances.js';
import { freePort } from './redis.js';
import { RedisProcess } from './redis-process.js';
import { clientTls, tlsServerArgs, type Certificates } from './tls-redis.js';

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

  /**
   * With `certs`: every process (data nodes and sentinels) speaks TLS only, replication
   * included, and asks for client certificates. With `password`: the data nodes require it
   * (the replica and the sentinels authenticate with it); with `sentinelPassword`: so do
   * the sentinels (of clients and of each other).
   */
  static async start(options: { certs?: Certificates; password?: string; sentinelPassword?: string } = {}): Promise<SentinelGroup> {
    const { certs, password, sentinelPassword } = options;
    const dir = mkdtempSync(join(tmpdir(), 'herald-sentinel-'));
    const [mPort, rPort, ...sPorts] = await Promise.all(Array.from({ length: 5 }, () => freePort()));
    const listen = (port: number) => (certs ? [...tlsServerArgs(certs, port), '--tls-replication', 'yes'] : ['--port', String(port)]);
    const tlsClient = certs ? { tls: clientTls(certs) } : {};
    const client = { ...tlsClient, ...(password ? { password } : {}) };
    const sentinelClient = { ...tlsClient, ...(sentinelPassword ? { password: sentinelPassword } : {}) };
    const data = (port: number, replicaOf?: number) => () => [
      ...listen(port), '--bind', '127.0.0.1', '--protected-mode', 'no', '--save', '', '--appendonly', 'no',
      '--loglevel', 'warning', '--dir', dir, '--dbfilename', `dump-${port}.rdb`,
      ...(replicaOf ? ['--replicaof', '127.0.0.1', String(replicaOf)] : []),
      // Either node may be the master after a failover: both require the password and use it.
      ...(password ? ['--requirepass', password, '--masterauth', password] : []),
    ];
    const master = new RedisProcess(mPort!, data(mPort!), client);
    const replica = new RedisProcess(rPort!, data(rPort!, mPort), client);
    const sentinels = sPorts.map((port) => {
      const file = join(dir, `sentinel-${port}.conf`);
      const tls = certs
        ? [
            'port 0', `tls-port ${port}`, `tls-cert-file ${certs.serverCert}`, `tls-key-file ${certs.serverKey}`,
            `tls-ca-cert-file ${certs.ca}`, 'tls-auth-clients yes', 'tls-replication yes',
          ]
        : [`port ${port}`];
      writeFileSync(
        file,
        [
          ...tls, 'bind 127.0.0.1', 'protected-mode no', `dir ${dir}`, 'loglevel warning',
          `sentinel monitor ${MASTER_NAME} 127.0.0.1 ${mPort} 2`,
          `sentinel down-after-milliseconds ${MASTER_NAME} 1000`,
          `sentinel failover-timeout ${MASTER_NAME} 3000`,
          `sentinel parallel-syncs ${MASTER_NAME} 1`,
          ...(password ? [`sentinel auth-pass ${MASTER_NAME} ${password}`] : []),
          ...(sentinelPassword ? [`requirepass ${sentinelPassword}`, `sentinel sentinel-pass ${sentinelPassword}`] : []),
          '',
        ].join('\n'),
      );
      // The config file is the sentinel's state too (it rewrites it): start from it each time.
      return new RedisProcess(port, () => [file, '--sentinel'], sentinelClient);
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
