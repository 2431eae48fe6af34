import { HeraldError } from '../../core/errors.js';
import type { Receipt } from '../../core/cluster.js';
import type { Wire } from './wire.js';

/** Unconfirmed this long after its first send, a batch is resent (the oldest few). */
const RESEND_MS = 1000;
/** Unconfirmed this long after its first send, a batch is given up: its senders are told. */
export const GIVE_UP_MS = 5000;
/** At most this many batches wait for confirmation per channel; past that the oldest are given up. */
const WINDOW_MAX = 20_000;
/** How many batches one resend pass repeats (a receiver that is back asks for the rest). */
const RESEND_BATCHES = 256;
/** A receiver's request for missing batches is served at most this often per channel. */
const RESEND_GAP_MS = 100;
/** A channel with nothing unconfirmed and nothing sent for this long is forgotten (a new epoch starts). */
const IDLE_MS = 300_000;

/** One tick's messages to one channel, as sent: kept until the receiving instance confirms. */
interface Batch {
  n: number;
  body: string;
  wires: Wire[];
  /** Receipts by the wire's index, when any of its wires has one. */
  receipts: (Receipt | undefined)[] | undefined;
  firstSent: number;
  lastSent: number;
}

/** What this instance sent down one channel: numbered batches, the unconfirmed ones kept in order. */
interface Stream {
  target: string;
  /** Distinguishes this stream from an earlier one on the same channel (after forgetting it). */
  epoch: number;
  /** Number of the last batch sent. */
  n: number;
  window: Batch[];
  lastUsed: number;
  lastGapResend: number;
}

/** Where batches and control frames go, and who hears about losses (wired by the Bus). */
export interface OutboundIo {
  publish(channel: string, body: string): void;
  /** A wire without a receipt that was given up. */
  lost(wire: Wire): void;
}

/**
 * The sending half of the bus's delivery guarantee (docs/architecture.md "Cross-instance
 * delivery"). Every batch sent down a channel is numbered (per sending instance, channel and
 * epoch) and kept until the receiving instance confirms it (cumulatively, src/cluster/redis/inbound.ts).
 * Unconfirmed batches are resent; the receiver drops what it already has and holds what
 * arrives early, so each one is delivered once and in order. A batch still unconfirmed after
 * GIVE_UP_MS is given up: its senders are told (`unavailable`), and the receiver is told to
 * skip it, so it can never be delivered after having been reported.
 */
export class Outbound {
  private readonly streams = new Map<string, Stream>();
  private epochs = 0;

  constructor(
    private readonly me: string,
    private readonly io: OutboundIo,
  ) {}

  /** Frames one batch for `channel` (to instance `target`) and keeps it until confirmed. */
  frame(channel: string, target: string, texts: string[], wires: Wire[], receipts: (Receipt | undefined)[] | undefined, now: number): string {
    let stream = this.streams.get(channel);
    if (!stream) {
      stream = { target, epoch: ++this.epochs, n: 0, window: [], lastUsed: now, lastGapResend: 0 };
      this.streams.set(channel, stream);
    }
    const n = ++stream.n;
    const body = `{"f":${JSON.stringify(this.me)},"e":${stream.epoch},"n":${n},"w":[${texts.join(',')}]}`;
    stream.window.push({ n, body, wires, receipts, firstSent: now, lastSent: now });
    stream.lastUsed = now;
    if (stream.window.length > WINDOW_MAX) this.giveUp(channel, stream, stream.window.length - WINDOW_MAX);
    return body;
  }

  /**
   * The receiver has every batch up to `n`; with `gap`, it holds later ones and misses the
   * next: resend from there (or, if those were given up, tell it to skip them).
   */
  acked(from: string, channel: string, epoch: number, n: number, gap: boolean, now: number): void {
    const stream = this.streams.get(channel);
    if (!stream || stream.epoch !== epoch || stream.target !== from) return;
    const { window } = stream;
    let confirmed = 0;
    while (confirmed < window.length && window[confirmed]!.n <= n) confirmed++;
    if (confirmed > 0) {
      for (const batch of window.splice(0, confirmed)) if (batch.receipts) for (const r of batch.receipts) r?.();
    }
    if (!gap) return;
    const oldest = window[0]?.n ?? stream.n + 1;
    if (oldest > n + 1) this.skip(channel, stream, oldest);
    if (window.length && now - stream.lastGapResend >= RESEND_GAP_MS) {
      stream.lastGapResend = now;
      this.resend(channel, stream, now);
    }
  }

  /** Resends what waits too long for confirmation and gives up what waited in vain (every few hundred ms). */
  tick(now: number): void {
    for (const [channel, stream] of this.streams) {
      const { window } = stream;
      let expired = 0;
      while (expired < window.length && now - window[expired]!.firstSent >= GIVE_UP_MS) expired++;
      if (expired > 0) this.giveUp(channel, stream, expired);
      if (window.length && now - window[0]!.lastSent >= RESEND_MS) this.resend(channel, stream, now);
      if (!window.length && now - stream.lastUsed >= IDLE_MS) this.streams.delete(channel);
    }
  }

  /** The receiving instance is gone (reaped): everything waiting for it is given up now. */
  forget(instanceId: string): void {
    for (const [channel, stream] of this.streams) {
      if (stream.target !== instanceId) continue;
      if (stream.window.length) this.giveUp(channel, stream, stream.window.length);
      this.streams.delete(channel);
    }
  }

  /** Batches waiting for confirmation, over all channels (metrics, tests). */
  get unconfirmed(): number {
    let n = 0;
    for (const s of this.streams.values()) n += s.window.length;
    return n;
  }

  private resend(channel: string, stream: Stream, now: number): void {
    const { window } = stream;
    for (let i = 0; i < window.length && i < RESEND_BATCHES; i++) {
      window[i]!.lastSent = now;
      this.io.publish(channel, window[i]!.body);
    }
  }

  /** Drops the `count` oldest batches, tells their senders, and tells the receiver to skip them. */
  private giveUp(channel: string, stream: Stream, count: number): void {
    const dropped = stream.window.splice(0, count);
    for (const batch of dropped) {
      batch.wires.forEach((wire, i) => {
        const receipt = batch.receipts?.[i];
        if (receipt) receipt(new HeraldError('unavailable', 'the instance holding the recipient did not confirm delivery'));
        else this.io.lost(wire);
      });
    }
    this.skip(channel, stream, dropped[dropped.length - 1]!.n + 1);
  }

  /** A skip travels on the batches' own channel: the receiver listens there (and on a Redis Cluster it is the same slot). */
  private skip(channel: string, stream: Stream, below: number): void {
    this.io.publish(channel, `{"f":${JSON.stringify(this.me)},"s":[[${JSON.stringify(channel)},${stream.epoch},${below}]]}`);
  }
}
