import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import calculateSlot from 'cluster-key-slot';
import { Redis } from 'ioredis';
import { freePort } from './redis.js';
import { RedisProcess } from './redis-process.js';

const run = promisify(execFile);

/** One master of a test Redis Cluster: its own process, port, cluster bus port and nodes file. */
class Master extends RedisProcess {
  /**
   * A restart keeps the same nodes file, so it keeps its node id and slots but comes back
   * empty (no persistence), like a cache-only master after a crash.
   */
  constructor(port: number, busPort: number, dir: string) {
    super(port, () => [
      '--port', String(port), '--bind', '127.0.0.1', '--protected-mode', 'no',
      '--cluster-enabled', 'yes', '--cluster-port', String(busPort),
      '--cluster-config-file', join(dir, `nodes-${port}.conf`),
      '--cluster-node-timeout', '2000', '--cluster-require-full-coverage', 'no',
      '--cluster-allow-reads-when-down', 'no',
      '--save', '', '--appendonly', 'no', '--dir', dir, '--loglevel', 'warning',
    ]);
  }

  /** One command on a fresh connection, its answer as text. */
  async command(...args: string[]): Promise<string> {
    return String(await this.call(...args));
  }
}

async function waitUntil(what: string, probe: () => Promise<boolean>, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await probe()) return;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/**
 * A real Redis Cluster of three masters and no replicas, on free loopback ports, made the
 * way an operator makes one: three `redis-server --cluster-enabled yes`, then
 * `redis-cli --cluster create … --cluster-replicas 0 --cluster-yes`.
 */
export class TestRedisCluster {
  private constructor(
    readonly masters: Master[],
    private readonly dir: string,
  ) {}

  static async start(): Promise<TestRedisCluster> {
    const dir = mkdtempSync(join(tmpdir(), 'herald-cluster-'));
    const masters: Master[] = [];
    for (let i = 0; i < 3; i++) masters.push(new Master(await freePort(), await freePort(), dir));
    const cluster = new TestRedisCluster(masters, dir);
    try {
      await Promise.all(masters.map((m) => m.start()));
      await run('redis-cli', ['--cluster', 'create', ...masters.map((m) => m.address), '--cluster-replicas', '0', '--cluster-yes']);
      await cluster.waitHealthy();
    } catch (err) {
      await cluster.stop();
      throw err;
    }
    return cluster;
  }

  /** The REDIS_CLUSTER_NODES value. */
  get nodes(): string {
    return this.masters.map((m) => m.address).join(',');
  }

  /** Waits until every running master reports `cluster_state:ok` and knows every slot's owner. */
  async waitHealthy(): Promise<void> {
    await waitUntil('the redis cluster to be ok', async () => {
      for (const m of this.masters) {
        if (!m.running) continue;
        const info = await m.command('CLUSTER', 'INFO').catch(() => '');
        if (!info.includes('cluster_state:ok') || !info.includes('cluster_slots_assigned:16384')) return false;
      }
      return true;
    }, 30_000);
  }

  /** The master (index) serving a key's slot. */
  async masterOf(key: string): Promise<number> {
    const slot = calculateSlot(key);
    const slots = JSON.parse(JSON.stringify(await this.slotMap())) as [number, number, number][];
    const owner = slots.find(([from, to]) => slot >= from && slot <= to);
    if (!owner) throw new Error(`no owner for slot ${slot}`);
    return this.masters.findIndex((m) => m.port === owner[2]);
  }

  private async slotMap(): Promise<[number, number, number][]> {
    const client = new Redis({ port: this.masters.find((m) => m.running)!.port, host: '127.0.0.1', lazyConnect: true, maxRetriesPerRequest: 0 });
    client.on('error', () => {});
    try {
      await client.connect();
      const slots = (await client.cluster('SLOTS')) as [number, number, [string, number]][];
      return slots.map(([from, to, [, port]]) => [from, to, port]);
    } finally {
      client.disconnect();
    }
  }

  async stop(): Promise<void> {
    await Promise.all(this.masters.map((m) => m.kill()));
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** A room id whose keys land on master `index` (rooms are tagged `{room:<id>}` under `prefix`). */
export async function roomOnMaster(cluster: TestRedisCluster, index: number, base: string, prefix = 'herald'): Promise<string> {
  for (let i = 0; i < 10_000; i++) {
    const id = `${base}-${i}`;
    if ((await cluster.masterOf(`${prefix}:{room:${id}}`)) === index) return id;
  }
  throw new Error(`no room id found on master ${index}`);
}
