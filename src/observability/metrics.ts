import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { HubObserver } from '../core/hub.js';
import type { Payload, Protocol } from '../core/types.js';

/** Bounded label values for relayed message types (a label per SDP type, not per client whim). */
const SEED_TYPES = new Set(['offer', 'answer', 'candid', 'join', 'leave']);
const PEERJS_TYPES: Record<string, string> = { OFFER: 'offer', ANSWER: 'answer', CANDIDATE: 'candidate', LEAVE: 'leave', EXPIRE: 'expire' };

function relayType(payload: Payload): string {
  if (payload.kind === 'seed') return SEED_TYPES.has(payload.type) ? payload.type : 'other';
  if (payload.kind === 'peerjs') return PEERJS_TYPES[payload.type] ?? 'other';
  if (payload.kind === 'ywebrtc') return 'publish';
  const data = payload.data as Record<string, any> | null;
  if (data && typeof data === 'object') {
    if (data.description && typeof data.description.type === 'string') {
      const t = data.description.type;
      return t === 'offer' || t === 'answer' || t === 'pranswer' || t === 'rollback' ? t : 'other';
    }
    if ('candidate' in data) return 'candidate';
  }
  return 'other';
}

export interface MetricSources {
  connections(): Record<Protocol, number>;
  rooms(): number;
  clusterUp(): boolean;
}

/** Prometheus metrics of one Herald instance, in a registry of its own. */
export class Metrics implements HubObserver {
  readonly registry = new Registry();
  private readonly joins: Counter<'role'>;
  private readonly leaves: Counter<'reason'>;
  private readonly relayedTotal: Counter<'type'>;
  private readonly relayedByType = new Map<string, { inc(): void }>();
  readonly relayLatency: Histogram;
  private readonly errorsTotal: Counter<'code' | 'protocol'>;
  private readonly rateLimited: Counter<'protocol'>;

  constructor(sources: MetricSources) {
    const registers = [this.registry];
    // 100 ms event-loop sampling instead of 10 ms: idle servers should stay idle.
    collectDefaultMetrics({ register: this.registry, eventLoopMonitoringPrecision: 100 });
    new Gauge({
      name: 'herald_connections',
      help: 'Open WebSocket connections by protocol (whep: WHEP player sessions, which have no socket)',
      labelNames: ['protocol'],
      registers,
      collect() {
        for (const [protocol, n] of Object.entries(sources.connections())) this.set({ protocol }, n);
      },
    });
    new Gauge({
      name: 'herald_rooms',
      help: 'Rooms with members on this instance',
      registers,
      collect() {
        this.set(sources.rooms());
      },
    });
    new Gauge({
      name: 'herald_cluster_up',
      help: '1 when the cluster backend (Redis) is reachable, 0 otherwise (always 1 in memory mode)',
      registers,
      collect() {
        this.set(sources.clusterUp() ? 1 : 0);
      },
    });
    this.joins = new Counter({ name: 'herald_joins_total', help: 'Room joins by role', labelNames: ['role'], registers });
    this.leaves = new Counter({ name: 'herald_leaves_total', help: 'Room leaves by reason', labelNames: ['reason'], registers });
    this.relayedTotal = new Counter({
      name: 'herald_messages_relayed_total',
      help: 'Signals relayed, by type',
      labelNames: ['type'],
      registers,
    });
    this.relayLatency = new Histogram({
      name: 'herald_relay_latency_seconds',
      help: 'Time from receiving a signal to handing it to the recipient socket (same instance)',
      buckets: [0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.05],
      registers,
    });
    this.errorsTotal = new Counter({
      name: 'herald_errors_total',
      help: 'Errors sent to clients, by code and protocol',
      labelNames: ['code', 'protocol'],
      registers,
    });
    this.rateLimited = new Counter({
      name: 'herald_rate_limited_total',
      help: 'Messages refused by the per-connection rate limit',
      labelNames: ['protocol'],
      registers,
    });
  }

  joined(member: { role: string }): void {
    this.joins.inc({ role: member.role });
  }

  left(_member: unknown, reason: string): void {
    this.leaves.inc({ reason });
  }

  relayed(payload: Payload, seconds: number): void {
    // Per-type children are cached: no label hashing per relayed message.
    const type = relayType(payload);
    let counter = this.relayedByType.get(type);
    if (!counter) this.relayedByType.set(type, (counter = this.relayedTotal.labels({ type })));
    counter.inc();
    this.relayLatency.observe(seconds);
  }

  error(code: string, protocol: Protocol): void {
    this.errorsTotal.inc({ code, protocol });
    if (code === 'rate-limited') this.rateLimited.inc({ protocol });
  }
}
