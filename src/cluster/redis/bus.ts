import type { Cluster as IoCluster, Redis } from 'ioredis';
import type { Receipt } from '../../core/cluster.js';
import type { Member } from '../../core/types.js';
import type { Context } from './context.js';
import { Inbound, type DataFrame } from './inbound.js';
import { Outbound } from './outbound.js';
import type { RoomWire, Wire } from './wire.js';

/** How often unconfirmed batches are looked at (resent, given up) and missing ones asked for. */
const TICK_MS = 250;

/** One tick's messages waiting for one channel. */
interface Pending {
  target: string;
  texts: string[];
  wires: Wire[];
  receipts: (Receipt | undefined)[] | undefined;
}

/** A frame as it arrives: a numbered batch, confirmations (`k`), skips (`s`), or (older instances) bare wires. */
type Frame = Partial<DataFrame> & { k?: [string, number, number, 0 | 1][]; s?: [string, number, number][] };

/**
 * Messages between instances. Everything one tick sends down one channel goes out as one
 * PUBLISH, a numbered batch: under relay load this turns hundreds of PUBLISHes per tick
 * into a few. Batches are delivered exactly once and in order per sending instance and
 * channel, or their senders are told (outbound.ts sends and resends, inbound.ts orders,
 * drops duplicates and confirms; docs/architecture.md "Cross-instance delivery"). Every
 * Wire type travels this way; the guarantee does not look inside.
 *
 * Channels: on one Redis each instance has one channel. On a Redis Cluster a room's messages
 * travel on a sharded channel in the room's own slot (one per room and receiving instance),
 * so losing a master silences only the rooms it serves; peer claims and hand-offs travel on
 * the receiving instance's control channel, confirmations back on the sender's room channel
 * and control channel.
 */
export class Bus {
  /** Messages waiting for this tick's publish, per channel, in order. */
  private readonly outbox = new Map<string, Pending>();
  private handler: (wire: Wire) => void = () => {};
  /** Whether this instance's own channel is subscribed on the current subscriber connection. */
  subscribed = false;
  private readonly out: Outbound;
  private readonly in: Inbound;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly ctx: Context,
    /** A message without a receipt that the receiving instance never confirmed. */
    private readonly lost: (wire: Wire) => void = () => {},
  ) {
    const publish = (channel: string, body: string) => this.send(channel, body);
    this.out = new Outbound(ctx.me, { publish, lost: (wire) => this.lost(wire) });
    this.in = new Inbound(ctx.me, {
      deliver: (wire) => this.handler(wire),
      publish,
      ackRoute: (from, channel) => this.ackRoute(from, channel),
      stalled: (from, channel, missing) =>
        ctx.log.warn({ from, channel, missing }, 'cross-instance batches never arrived and their sender stopped answering: delivering what came after them'),
    });
  }

  /** Starts receiving: every message for this instance goes to `handler`, in order. */
  listen(handler: (wire: Wire) => void): void {
    this.handler = handler;
    const { conn, keys, me } = this.ctx;
    const sub = conn.sub;
    sub.on('close', () => (this.subscribed = false));
    if (conn.sharded) (sub as IoCluster).on('smessage', (channel: string, text: string) => this.receive(channel, text));
    else {
      const own = keys.instanceChannel(me);
      (sub as Redis).on('message', (channel: string, text: string) => channel === own && this.receive(channel, text));
    }
    this.timer = setInterval(() => {
      const now = Date.now();
      this.out.tick(now);
      this.in.tick(now);
    }, TICK_MS);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
    this.in.stop();
  }

  /** An instance was reaped: what waits for it is given up now, and its streams end. */
  forget(instanceId: string): void {
    this.out.forget(instanceId);
    this.in.forget(instanceId);
  }

  /** Batches sent and not confirmed yet. */
  get unconfirmed(): number {
    return this.out.unconfirmed;
  }

  /** Subscribes to this instance's own channel and probe channel (one Redis) or control channel (Redis Cluster). */
  async subscribeOwn(): Promise<void> {
    const { conn, keys, me } = this.ctx;
    if (conn.sharded) await conn.sub.ssubscribe(keys.controlChannel(me));
    else await conn.sub.subscribe(keys.instanceChannel(me), keys.probeChannel(me));
    this.subscribed = true;
  }

  /** Redis Cluster: starts receiving one room's messages (before joining it, so none is missed). */
  async subscribeRoom(roomId: string): Promise<void> {
    if (!this.ctx.conn.sharded) return;
    await this.ctx.conn.sub.ssubscribe(this.ctx.keys.roomChannel(roomId, this.ctx.me));
  }

  unsubscribeRoom(roomId: string): void {
    if (!this.ctx.conn.sharded) return;
    this.ctx.conn.sub.sunsubscribe(this.ctx.keys.roomChannel(roomId, this.ctx.me)).catch(() => {});
  }

  /**
   * Sends `wire` to one instance; `roomId` names the room it concerns (routes it on a Redis
   * Cluster); `receipt` hears once whether it was delivered (core/cluster.ts Receipt).
   */
  publish(instanceId: string, wire: Wire, roomId?: string, receipt?: Receipt): void {
    this.enqueue(this.channel(instanceId, roomId), instanceId, JSON.stringify(wire), wire, receipt);
  }

  /** One notice per instance holding members of the room, plus the previous holder of the member. */
  publishRoom(insts: string[], previous: Member | undefined, wire: RoomWire): void {
    const targets = new Set(insts);
    if (previous) targets.add(previous.instanceId);
    this.publishEach(targets, wire, wire.room);
  }

  /** Sends `wire`, serialised once, to each of `instanceIds` but this one, on `roomId`'s channels. */
  publishEach(instanceIds: Iterable<string>, wire: Wire, roomId: string): void {
    let text: string | undefined;
    for (const id of instanceIds) {
      if (id === this.ctx.me) continue;
      this.enqueue(this.channel(id, roomId), id, (text ??= JSON.stringify(wire)), wire, undefined);
    }
  }

  /**
   * Where confirmations go. One Redis: the sender's channel. A Redis Cluster: the sender's
   * channel for the same room (the same slot as the batches, so a dead master elsewhere
   * cannot block them) and its control channel (it may hold no member of the room).
   */
  private ackRoute(from: string, channel: string): string[] {
    const { conn, keys } = this.ctx;
    if (!conn.sharded) return [keys.instanceChannel(from)];
    const room = keys.roomOfChannel(channel);
    return room === undefined ? [keys.controlChannel(from)] : [keys.roomChannel(room, from), keys.controlChannel(from)];
  }

  private channel(instanceId: string, roomId: string | undefined): string {
    const { conn, keys } = this.ctx;
    if (!conn.sharded) return keys.instanceChannel(instanceId);
    return roomId === undefined ? keys.controlChannel(instanceId) : keys.roomChannel(roomId, instanceId);
  }

  private enqueue(channel: string, target: string, text: string, wire: Wire, receipt: Receipt | undefined): void {
    let pending = this.outbox.get(channel);
    if (!pending) {
      if (this.outbox.size === 0) process.nextTick(this.flush);
      this.outbox.set(channel, (pending = { target, texts: [], wires: [], receipts: undefined }));
    }
    if (receipt) (pending.receipts ??= [])[pending.wires.length] = receipt;
    pending.texts.push(text);
    pending.wires.push(wire);
  }

  private readonly flush = (): void => {
    const now = Date.now();
    for (const [channel, p] of this.outbox) this.send(channel, this.out.frame(channel, p.target, p.texts, p.wires, p.receipts, now));
    this.outbox.clear();
  };

  private send(channel: string, body: string): void {
    const { cmd, conn, log } = this.ctx;
    const sent = conn.sharded ? cmd.spublish(channel, body) : cmd.publish(channel, body);
    // An unsent batch stays unconfirmed: it is resent, or given up and reported (outbound.ts).
    sent.catch((err: unknown) => log.debug({ err: String(err), channel }, 'cross-instance publish failed'));
  }

  private receive(channel: string, text: string): void {
    let frame: Frame | Wire | Wire[];
    try {
      frame = JSON.parse(text) as Frame | Wire | Wire[];
    } catch {
      return;
    }
    if (Array.isArray(frame)) {
      for (const wire of frame) this.handler(wire); // an older instance: unnumbered
      return;
    }
    if ('type' in frame) {
      this.handler(frame);
      return;
    }
    const now = Date.now();
    if (frame.w && typeof frame.f === 'string') this.in.receive(channel, frame as DataFrame, now);
    else if (frame.k && typeof frame.f === 'string') for (const [ch, e, n, gap] of frame.k) this.out.acked(frame.f, ch, e, n, gap === 1, now);
    else if (frame.s && typeof frame.f === 'string') for (const [ch, e, below] of frame.s) this.in.skipped(frame.f, ch, e, below);
  }
}
