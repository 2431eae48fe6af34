import type { Wire } from './wire.js';

/** Confirmations wait this long to gather (one PUBLISH confirms many batches and channels). */
const ACK_DELAY_MS = 20;
/** While batches are missing, the sender is asked again this often. */
const GAP_ASK_MS = 250;
/**
 * Missing batches the sender never resent nor gave up (it died with them): after this long
 * the ones held behind them are delivered. Well past the sender's give-up (outbound.ts).
 */
const STALL_MS = 10_000;
/** At most this many early batches are held per stream; past that, later ones are dropped (the sender resends them). */
const HELD_MAX = 20_000;
/** A stream not heard from for this long is forgotten. */
const IDLE_MS = 600_000;

/** A numbered batch as it travels (outbound.ts frames it). */
export interface DataFrame {
  f: string;
  e: number;
  n: number;
  w: Wire[];
}

/** What one sending instance sent down one channel, as received. */
interface Stream {
  from: string;
  channel: string;
  epoch: number;
  /** The number of the next batch to deliver. */
  next: number;
  /** Batches that arrived before `next`, by number. */
  held: Map<number, Wire[]>;
  /** Since when batches are missing (held ones wait behind them). */
  gapSince: number | undefined;
  lastAskedGap: number;
  lastHeard: number;
}

export interface InboundIo {
  deliver(wire: Wire): void;
  /** The channels that confirmations of `channel`'s batches go back to, for instance `from`. */
  ackRoute(from: string, channel: string): string[];
  /** Publishes a control frame (not numbered). */
  publish(channel: string, body: string): void;
  /** Batches given up for a sender that never answered (logged). */
  stalled(from: string, channel: string, missing: number): void;
}

/**
 * The receiving half of the bus's delivery guarantee (outbound.ts is the sending half).
 * Per sending instance, channel and epoch it delivers batches in their numbers' order:
 * a number already delivered is a duplicate (dropped, confirmed again); a number past the
 * next one is held while the sender is asked for the missing ones. Confirmations are
 * cumulative and gathered: one PUBLISH per sending instance (on a Redis Cluster, per channel
 * and route) every ACK_DELAY_MS at most.
 */
export class Inbound {
  private readonly streams = new Map<string, Stream>();
  /** Streams to confirm in the next control frames: something arrived (a resend is confirmed again) or is missing. */
  private readonly due = new Set<Stream>();
  private ackTimer: NodeJS.Timeout | undefined;

  constructor(
    private readonly me: string,
    private readonly io: InboundIo,
  ) {}

  receive(channel: string, frame: DataFrame, now: number): void {
    const key = `${frame.f}\n${channel}`;
    let stream = this.streams.get(key);
    if (!stream || frame.e > stream.epoch) {
      stream = { from: frame.f, channel, epoch: frame.e, next: 1, held: new Map(), gapSince: undefined, lastAskedGap: 0, lastHeard: now };
      this.streams.set(key, stream);
    } else if (frame.e < stream.epoch) return; // a resend from a forgotten stream
    stream.lastHeard = now;
    this.due.add(stream);
    if (frame.n === stream.next) {
      stream.next++;
      this.deliver(frame.w);
      this.drain(stream);
    } else if (frame.n > stream.next && stream.held.size < HELD_MAX && !stream.held.has(frame.n)) {
      stream.held.set(frame.n, frame.w);
      stream.gapSince ??= now;
    }
    this.scheduleAck(stream.gapSince !== undefined && now - stream.lastAskedGap >= GAP_ASK_MS ? 0 : ACK_DELAY_MS);
  }

  /** The sender gave up every batch below `below`: they will never come (their senders were told). */
  skipped(from: string, channel: string, epoch: number, below: number): void {
    const key = `${from}\n${channel}`;
    const stream = this.streams.get(key);
    if (!stream || epoch > stream.epoch) {
      // Nothing of this stream arrived yet: it starts past what was given up, so a late copy is dropped.
      this.streams.set(key, { from, channel, epoch, next: below, held: new Map(), gapSince: undefined, lastAskedGap: 0, lastHeard: Date.now() });
      return;
    }
    if (stream.epoch !== epoch || below <= stream.next) return;
    for (const n of stream.held.keys()) if (n < below) stream.held.delete(n);
    stream.next = below;
    this.drain(stream);
    this.due.add(stream);
    this.scheduleAck(ACK_DELAY_MS);
  }

  /** Asks again for what is missing, gives up on senders that died, forgets idle streams. */
  tick(now: number): void {
    for (const [key, stream] of this.streams) {
      if (stream.gapSince !== undefined) {
        if (now - stream.gapSince >= STALL_MS) {
          const first = Math.min(...stream.held.keys());
          this.io.stalled(stream.from, stream.channel, first - stream.next);
          stream.next = first;
          this.drain(stream);
        } else if (now - stream.lastAskedGap >= GAP_ASK_MS) this.due.add(stream);
      } else if (now - stream.lastHeard >= IDLE_MS) this.streams.delete(key);
    }
    if (this.due.size) this.scheduleAck(0);
  }

  /** The sending instance is gone (reaped): its streams end. */
  forget(instanceId: string): void {
    for (const [key, stream] of this.streams) {
      if (stream.from !== instanceId) continue;
      this.streams.delete(key);
      this.due.delete(stream);
    }
  }

  stop(): void {
    clearTimeout(this.ackTimer);
  }

  private deliver(wires: Wire[]): void {
    for (const wire of wires) this.io.deliver(wire);
  }

  private drain(stream: Stream): void {
    for (let wires = stream.held.get(stream.next); wires; wires = stream.held.get(stream.next)) {
      stream.held.delete(stream.next);
      stream.next++;
      this.deliver(wires);
    }
    stream.gapSince = stream.held.size ? (stream.gapSince ?? Date.now()) : undefined;
  }

  private scheduleAck(delay: number): void {
    if (this.ackTimer && delay > 0) return;
    clearTimeout(this.ackTimer);
    this.ackTimer = setTimeout(this.flushAcks, delay);
    this.ackTimer.unref();
  }

  /** One control frame per sending instance: `[channel, epoch, last delivered, gap?]` per stream. */
  private readonly flushAcks = (): void => {
    this.ackTimer = undefined;
    const now = Date.now();
    const byRoute = new Map<string, { route: string[]; acks: string[] }>();
    for (const stream of this.due) {
      const gap = stream.gapSince !== undefined;
      if (gap) stream.lastAskedGap = now;
      const route = this.io.ackRoute(stream.from, stream.channel);
      const key = route.join('\n');
      let group = byRoute.get(key);
      if (!group) byRoute.set(key, (group = { route, acks: [] }));
      group.acks.push(`[${JSON.stringify(stream.channel)},${stream.epoch},${stream.next - 1},${gap ? 1 : 0}]`);
    }
    this.due.clear();
    for (const { route, acks } of byRoute.values()) {
      const body = `{"f":${JSON.stringify(this.me)},"k":[${acks.join(',')}]}`;
      for (const channel of route) this.io.publish(channel, body);
    }
  };
}
