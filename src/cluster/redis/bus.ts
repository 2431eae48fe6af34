import type { Cluster as IoCluster, Redis } from 'ioredis';
import type { Member } from '../../core/types.js';
import type { Context } from './context.js';
import type { RoomWire, Wire } from './wire.js';

/**
 * Messages between instances. Everything one tick sends down one channel goes out as one
 * PUBLISH (a JSON array when there is more than one message), in order: under relay load this
 * turns hundreds of PUBLISHes per tick into a few, and a lone message is one PUBLISH of itself.
 *
 * Channels: on one Redis each instance has one channel. On a Redis Cluster a room's messages
 * travel on a sharded channel in the room's own slot (one per room and receiving instance),
 * so losing a master silences only the rooms it serves; peer claims and hand-offs travel on
 * the receiving instance's control channel.
 */
export class Bus {
  /** Texts waiting for this tick's publish, per channel, in order. */
  private readonly outbox = new Map<string, string[]>();
  private handler: (wire: Wire) => void = () => {};
  /** Whether this instance's own channel is subscribed on the current subscriber connection. */
  subscribed = false;

  constructor(private readonly ctx: Context) {}

  /** Starts receiving: every message for this instance goes to `handler`. */
  listen(handler: (wire: Wire) => void): void {
    this.handler = handler;
    const { conn, keys, me } = this.ctx;
    const sub = conn.sub;
    sub.on('close', () => (this.subscribed = false));
    if (conn.sharded) (sub as IoCluster).on('smessage', (_channel: string, text: string) => this.receive(text));
    else {
      const own = keys.instanceChannel(me);
      (sub as Redis).on('message', (channel: string, text: string) => channel === own && this.receive(text));
    }
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

  /** Sends `wire` to one instance; `roomId` names the room it concerns (routes it on a Redis Cluster). */
  publish(instanceId: string, wire: Wire, roomId?: string): void {
    this.enqueue(this.channel(instanceId, roomId), JSON.stringify(wire));
  }

  /** One notice per instance holding members of the room, plus the previous holder of the member. */
  publishRoom(insts: string[], previous: Member | undefined, wire: RoomWire): void {
    const text = JSON.stringify(wire);
    const targets = new Set(insts);
    if (previous) targets.add(previous.instanceId);
    targets.delete(this.ctx.me);
    for (const id of targets) this.enqueue(this.channel(id, wire.room), text);
  }

  private channel(instanceId: string, roomId: string | undefined): string {
    const { conn, keys } = this.ctx;
    if (!conn.sharded) return keys.instanceChannel(instanceId);
    return roomId === undefined ? keys.controlChannel(instanceId) : keys.roomChannel(roomId, instanceId);
  }

  private enqueue(channel: string, text: string): void {
    let queue = this.outbox.get(channel);
    if (!queue) {
      if (this.outbox.size === 0) process.nextTick(this.flush);
      this.outbox.set(channel, (queue = []));
    }
    queue.push(text);
  }

  private readonly flush = (): void => {
    const { cmd, conn, log } = this.ctx;
    for (const [channel, texts] of this.outbox) {
      const body = texts.length === 1 ? texts[0]! : `[${texts.join(',')}]`;
      const sent = conn.sharded ? cmd.spublish(channel, body) : cmd.publish(channel, body);
      sent.catch((err: unknown) => log.warn({ err: String(err), channel, wires: texts.length }, 'cross-instance publish failed'));
    }
    this.outbox.clear();
  };

  private receive(text: string): void {
    let parsed: Wire | Wire[];
    try {
      parsed = JSON.parse(text) as Wire | Wire[];
    } catch {
      return;
    }
    if (Array.isArray(parsed)) for (const wire of parsed) this.handler(wire);
    else this.handler(parsed);
  }
}
