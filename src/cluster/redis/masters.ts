import calculateSlot from 'cluster-key-slot';
import { Redis, type Cluster as IoCluster } from 'ioredis';
import type { Context } from './context.js';
import { accessOptions } from './options.js';

interface MasterState {
  probe: Redis;
  up: boolean;
  /** The server's run id (changes on every restart: an empty restart loses its keys). */
  runId: string | undefined;
  /** When it last became reachable with this run id and the cluster served its slots (0: not yet). */
  since: number;
}

/**
 * Watches each Redis Cluster master on a connection of its own: whether it answers, and
 * its run id. ioredis' `Cluster` stays `ready` while one master is dead and does not say
 * when one came back empty, so this is what tells Herald:
 * - which rooms are unavailable right now (their slot's master is down), instead of marking
 *   the whole instance not-ready;
 * - that a master restarted (new run id), so that what lived there is registered again;
 * - how long a master has been stable, so that a liveness key that vanished with a restart
 *   is not taken for a dead instance.
 * On one Redis it only tracks the command connection (a restart there drops every connection
 * and the whole instance re-registers).
 */
export class Masters {
  private readonly masters = new Map<string, MasterState>();
  private readyAt = 0;

  constructor(
    private readonly ctx: Context,
    private readonly back: (address: string, emptied: boolean) => void,
  ) {}

  start(): void {
    this.ctx.conn.cmd.on('ready', () => {
      this.readyAt = Date.now();
      this.refresh();
    });
  }

  stop(): void {
    for (const m of this.masters.values()) m.probe.disconnect();
    this.masters.clear();
  }

  /** Picks up the masters the cluster's slot map names (called every tick). */
  refresh(): void {
    if (!this.ctx.conn.sharded) return;
    const slots = (this.ctx.conn.cmd as IoCluster).slots;
    const seen = new Set<string>();
    for (const owners of slots) if (owners?.[0]) seen.add(owners[0]);
    for (const address of seen) if (!this.masters.has(address)) this.watch(address);
  }

  /** Whether the master serving this room's slot answers (always true on one Redis). */
  roomUp(roomId: string): boolean {
    return this.keyUp(`${this.ctx.keys.prefix}:{room:${roomId}}`);
  }

  keyUp(key: string): boolean {
    const state = this.stateOf(key);
    return state ? state.up : true;
  }

  /** How long the master serving `key` has been up with the same run id, in ms (0: down or unknown). */
  stableFor(key: string, now = Date.now()): number {
    if (!this.ctx.conn.sharded) return this.ctx.conn.cmd.status === 'ready' ? now - this.readyAt : 0;
    const state = this.stateOf(key);
    return state?.up && state.since > 0 ? now - state.since : 0;
  }

  /** Addresses of the masters that are down now. */
  down(): string[] {
    return [...this.masters].filter(([, m]) => !m.up).map(([a]) => a);
  }

  /** Whether `roomId`'s slot is served by `address`. */
  serves(address: string, roomId: string): boolean {
    return this.servesKey(address, `${this.ctx.keys.prefix}:{room:${roomId}}`);
  }

  servesKey(address: string, key: string): boolean {
    return this.addressOf(key) === address;
  }

  private addressOf(key: string): string | undefined {
    if (!this.ctx.conn.sharded) return undefined;
    return (this.ctx.conn.cmd as IoCluster).slots[calculateSlot(key)]?.[0];
  }

  private stateOf(key: string): MasterState | undefined {
    const address = this.addressOf(key);
    return address === undefined ? undefined : this.masters.get(address);
  }

  private watch(address: string): void {
    const colon = address.lastIndexOf(':');
    const probe = new Redis({
      ...accessOptions(this.ctx.conn.target),
      host: address.slice(0, colon),
      port: Number(address.slice(colon + 1)),
      lazyConnect: true,
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      connectTimeout: 1000,
      commandTimeout: 1000,
      // Keep trying: a dead master is expected back (that is when it matters most).
      retryStrategy: () => 200,
      connectionName: `herald-probe:${this.ctx.me}`,
    });
    const state: MasterState = { probe, up: false, runId: undefined, since: 0 };
    this.masters.set(address, state);
    probe.on('error', () => {});
    probe.on('close', () => {
      if (state.up) this.ctx.log.warn({ master: address }, 'redis cluster master unreachable: its rooms are unavailable');
      state.up = false;
    });
    probe.on('ready', () => {
      void probe.info('server').then(
        (info) => {
          const runId = /run_id:(\w+)/.exec(info)?.[1];
          const before = state.runId;
          state.runId = runId;
          state.since = 0;
          state.up = true;
          // A restarted master answers before the cluster serves its slots again (CLUSTERDOWN):
          // it counts as stable only from then, or a reaper could take a liveness key that its
          // owner cannot write back yet for a dead instance.
          void clusterServes(probe).then((serves) => {
            if (serves && state.runId === runId && state.up) state.since = Date.now();
          });
          if (before === undefined) return;
          const emptied = before !== runId;
          if (emptied) this.ctx.log.warn({ master: address }, 'redis cluster master restarted (new run id): registering again what lived there');
          else this.ctx.log.info({ master: address }, 'redis cluster master reachable again');
          // Either way notices for its rooms may have been lost meanwhile: re-sync them.
          this.back(address, emptied);
        },
        () => probe.disconnect(true),
      );
    });
    probe.connect().catch(() => {});
  }
}

/** Waits (polling, while the probe is connected) until the node says the cluster is ok. */
async function clusterServes(probe: Redis): Promise<boolean> {
  while (probe.status === 'ready') {
    const info = String(await probe.call('CLUSTER', 'INFO').catch(() => ''));
    if (info.includes('cluster_state:ok')) return true;
    await new Promise((r) => setTimeout(r, 200));
  }
  return false;
}
