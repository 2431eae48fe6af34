/**
 * Every Redis key and channel Herald uses, with its data type. All names start with
 * `HERALD_REDIS_PREFIX`. The part in braces is the hash tag: on Redis Cluster every key
 * with the same tag lives in the same slot, so each Lua script (which touches one room's
 * keys, or one peer's) runs on one master, and one master's loss affects only the rooms,
 * peers and instances whose tags hash to it.
 */
export class Keys {
  constructor(readonly prefix: string) {}

  /**
   * One room (tag `{room:<id>}`):
   * - members  HASH    peerId -> Member JSON plus `c`, the holder's claim number
   * - bcast    STRING  peerId of the broadcaster
   * - insts    HASH    instanceId -> how many members that instance holds in the room
   * - ver      STRING  counter bumped by every change: the order replicas apply changes in
   */
  room(roomId: string): [members: string, bcast: string, insts: string, ver: string] {
    const base = `${this.prefix}:{room:${roomId}}`;
    return [`${base}:members`, `${base}:bcast`, `${base}:insts`, `${base}:ver`];
  }

  /** HASH {i: holding instance, u: identity, s: claim counter} (tag `{peer:<id>}`). */
  peer(peerId: string): string {
    return `${this.prefix}:{peer:${peerId}}`;
  }

  /**
   * One instance (tag `{inst:<id>}`):
   * - alive  STRING  '1' with a 5 s TTL, refreshed every second: absent means dead
   * - rooms  SET     ids of the rooms it holds members of (what a reaper visits)
   * - peers  SET     ids of the peers it has claimed (what a reaper releases)
   */
  instance(id: string, what: 'alive' | 'rooms' | 'peers'): string {
    return `${this.prefix}:{inst:${id}}:${what}`;
  }

  /** STRING, NX with a TTL: held by the one survivor reaping `dead`. */
  reapLock(dead: string): string {
    return `${this.prefix}:reap:{inst:${dead}}`;
  }

  /** STRING: an instance's status report for the console (JSON, 60 s TTL; tag `{inst:<id>}`). */
  report(id: string): string {
    return `${this.prefix}:{inst:${id}}:report`;
  }

  /** ZSET instance id -> when it last reported (epoch ms): who the console lists. */
  get reporters(): string {
    return `${this.prefix}:reporters`;
  }

  /** SET of every registered instance id (what survivors check for liveness). */
  get instances(): string {
    return `${this.prefix}:instances`;
  }

  /**
   * SET of room ids with members: every join adds its room, a leave or reap that empties a
   * room removes it. The admin listing reads it instead of scanning (a SCAN covers one node
   * only on Redis Cluster). Advisory: an empty room still found in it is pruned on read.
   */
  get roomIndex(): string {
    return `${this.prefix}:{index}:rooms`;
  }

  /** Single Redis: the instance's one channel (PUBLISH/SUBSCRIBE). */
  instanceChannel(id: string): string {
    return `${this.prefix}:inst:${id}`;
  }

  /** Single Redis: the channel an instance publishes to itself to prove its link (src/cluster/redis/probe.ts). */
  probeChannel(id: string): string {
    return `${this.prefix}:inst:${id}:probe`;
  }

  /**
   * Redis Cluster: the sharded channel (SPUBLISH/SSUBSCRIBE) carrying one room's traffic to
   * one instance. It shares the room's slot, so a room's keys and messages fail together and
   * no other room's.
   */
  roomChannel(roomId: string, instanceId: string): string {
    return `${this.prefix}:{room:${roomId}}:to:${instanceId}`;
  }

  /** Redis Cluster: the sharded channel of peer claims and hand-offs for one instance. */
  controlChannel(instanceId: string): string {
    return `${this.prefix}:{inst:${instanceId}}:ctl`;
  }

  /** The room a room channel belongs to (inverse of roomChannel), or undefined. */
  roomOfChannel(channel: string): string | undefined {
    const head = `${this.prefix}:{room:`;
    if (!channel.startsWith(head)) return undefined;
    const end = channel.lastIndexOf('}:to:');
    return end > head.length - 1 ? channel.slice(head.length, end) : undefined;
  }
}
