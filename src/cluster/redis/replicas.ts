import { Room } from '../../core/room.js';
import type { LeaveReason, Member } from '../../core/types.js';
import { sameMember, type RoomWire } from './wire.js';

const TOMBSTONE_MS = 60_000;

/** This instance's copy of one room, with what it needs to apply changes in order. */
export class Replica {
  readonly room: Room;
  /** Changes at or below this version are already in (the snapshot the replica came from). */
  base = 0;
  /** Version of the last change applied, per present member. */
  readonly seen = new Map<string, number>();
  /** Version and time of removal, per removed member (dropped after a minute). */
  readonly gone = new Map<string, { v: number; at: number }>();
  /** Members held by this instance. */
  local = 0;

  constructor(
    id: string,
    private readonly me: string,
  ) {
    this.room = new Room(id);
  }

  fresh(peerId: string, v: number): boolean {
    return v > Math.max(this.base, this.seen.get(peerId) ?? this.gone.get(peerId)?.v ?? 0);
  }

  /** Whether the replica has applied a change of `peerId` newer than version `v`. */
  newer(peerId: string, v: number): boolean {
    return (this.seen.get(peerId) ?? this.gone.get(peerId)?.v ?? 0) > v;
  }

  put(m: Member, v: number): Member | undefined {
    const prev = this.room.get(m.peerId);
    if (prev?.instanceId === this.me) this.local--;
    this.room.put(m);
    if (m.instanceId === this.me) this.local++;
    this.seen.set(m.peerId, v);
    this.gone.delete(m.peerId);
    return prev;
  }

  remove(peerId: string, v: number): Member | undefined {
    const gone = this.room.remove(peerId);
    if (gone?.instanceId === this.me) this.local--;
    this.seen.delete(peerId);
    this.gone.set(peerId, { v, at: Date.now() });
    return gone;
  }

  reset(base: number): void {
    this.base = base;
    this.seen.clear();
    this.gone.clear();
  }

  /** Members this instance holds. */
  mine(): Member[] {
    return this.room.members().filter((m) => m.instanceId === this.me);
  }
}

/** What applying changes tells the rest of the instance. */
export interface ReplicaEvents {
  joined(room: Room, member: Member): void;
  left(room: Room, member: Member, reason: LeaveReason): void;
  /** The replica was dropped: no local member and no join on its way. */
  dropped(roomId: string): void;
}

interface Loading {
  buffer: RoomWire[];
  done: Promise<void>;
  resolve(): void;
}

/**
 * Every replica this instance keeps, and the rules for keeping them in step with the
 * directory without Redis in the loop: changes apply in each room's version order per
 * member (late or duplicated notices are ignored), notices that arrive while a snapshot is
 * loading wait for it, and a replica lives exactly as long as a local member or a join needs
 * it. Pure logic: src/cluster/redis/membership.ts and registration.ts feed it from Redis.
 */
export class Replicas {
  private readonly replicas = new Map<string, Replica>();
  private readonly loading = new Map<string, Loading>();
  /** Joins in flight per room: a replica is kept while one is pending. */
  private readonly joining = new Map<string, number>();
  /** Room changes held while the whole instance re-registers, applied once replicas are re-based. */
  private held: RoomWire[] | undefined;

  constructor(
    private readonly me: string,
    private readonly events: ReplicaEvents,
  ) {}

  get(roomId: string): Replica | undefined {
    return this.replicas.get(roomId);
  }

  get size(): number {
    return this.replicas.size;
  }

  ids(): string[] {
    return [...this.replicas.keys()];
  }

  all(): IterableIterator<Replica> {
    return this.replicas.values();
  }

  /** Whether any member is held here (drain waits for none). */
  get holdsMembers(): boolean {
    for (const r of this.replicas.values()) if (r.local > 0) return true;
    return false;
  }

  clear(): void {
    this.replicas.clear();
  }

  // ---- loading from a snapshot ----

  /** True when neither a replica nor a load exists: the caller should ask for a snapshot. */
  needsSnapshot(roomId: string): boolean {
    return !this.replicas.has(roomId) && !this.loading.has(roomId);
  }

  startLoading(roomId: string): void {
    let resolve!: () => void;
    const done = new Promise<void>((r) => (resolve = r));
    this.loading.set(roomId, { buffer: [], done, resolve });
  }

  abortLoading(roomId: string): void {
    this.loading.get(roomId)?.resolve();
    this.loading.delete(roomId);
  }

  /** Resolves once a pending load of the room (if any) is finished. */
  async loaded(roomId: string): Promise<void> {
    await this.loading.get(roomId)?.done;
  }

  /** Builds a replica from an atomic snapshot at version `v`, then applies what arrived meanwhile. */
  finishLoading(roomId: string, v: number, snapshot: Member[], newcomer?: Member): Replica {
    const loading = this.loading.get(roomId);
    this.loading.delete(roomId);
    const replica = new Replica(roomId, this.me);
    replica.base = v;
    for (const m of snapshot) replica.put(m, v);
    this.replicas.set(roomId, replica);
    if (newcomer) this.events.joined(replica.room, newcomer);
    for (const wire of loading?.buffer ?? []) this.apply(replica, wire);
    loading?.resolve();
    return replica;
  }

  /** Builds a replica with no directory behind it (Redis unreachable): local admission only. */
  createOffline(roomId: string): Replica {
    const replica = new Replica(roomId, this.me);
    this.replicas.set(roomId, replica);
    return replica;
  }

  beginJoin(roomId: string): void {
    this.joining.set(roomId, (this.joining.get(roomId) ?? 0) + 1);
  }

  endJoin(roomId: string): void {
    const n = (this.joining.get(roomId) ?? 1) - 1;
    if (n > 0) this.joining.set(roomId, n);
    else this.joining.delete(roomId);
    const replica = this.replicas.get(roomId);
    if (replica) this.maybeDrop(replica);
  }

  // ---- applying changes ----

  /** Holds every room change until `release` (the instance is re-registering). */
  hold(): void {
    this.held = [];
  }

  release(): void {
    const held = this.held ?? [];
    this.held = undefined;
    for (const wire of held) this.receive(wire);
  }

  /** A change another instance published. */
  receive(wire: RoomWire): void {
    if (this.held) {
      this.held.push(wire);
      return;
    }
    const loading = this.loading.get(wire.room);
    if (loading) {
      loading.buffer.push(wire);
      return;
    }
    const replica = this.replicas.get(wire.room);
    if (replica) this.apply(replica, wire); // else: not ours (any more)
  }

  apply(replica: Replica, wire: RoomWire): void {
    if (wire.type === 'joined') this.applyJoin(replica, wire.member, wire.v, wire.moved === true);
    else for (const m of wire.members) this.applyLeave(replica, m, wire.v, wire.reason);
  }

  applyJoin(replica: Replica, member: Member, v: number, silent = false): void {
    if (!replica.fresh(member.peerId, v)) return;
    const prev = this.put(replica, member, v);
    // A re-announcement of what the replica already has (recovery) is not news, and neither
    // is a member moving with its resume to another instance.
    if (!silent && (!prev || !sameMember(prev, member))) this.events.joined(replica.room, member);
    this.maybeDrop(replica);
  }

  applyLeave(replica: Replica, member: Member, v: number, reason: LeaveReason): void {
    if (!replica.fresh(member.peerId, v)) return;
    const gone = replica.remove(member.peerId, v);
    if (gone) this.events.left(replica.room, gone, reason);
    this.maybeDrop(replica);
  }

  /** A local member leaves while the directory is away; `dirty` rooms are written again later. */
  removeOffline(replica: Replica, peerId: string, reason: LeaveReason): Member | undefined {
    const member = replica.room.get(peerId);
    if (!member) return undefined;
    replica.remove(peerId, replica.seen.get(peerId) ?? replica.base);
    this.events.left(replica.room, member, reason);
    this.maybeDrop(replica);
    return member;
  }

  /**
   * Merges an atomic snapshot at version `v` into a replica. Members the replica has seen
   * a newer change of are kept; the others take the snapshot's state, announced only if it
   * is news. With `removeMissing`, members absent from the snapshot are gone (ours too: the
   * directory is the truth once everyone has had time to register again). With
   * `restart`, versions start over (Redis may have restarted empty; room notices were held
   * back meanwhile, so nothing newer has been applied).
   */
  rebase(replica: Replica, v: number, snapshot: Member[], opts: { removeMissing: boolean; restart: boolean }): void {
    if (opts.restart) replica.reset(0);
    const inSnapshot = new Set(snapshot.map((m) => m.peerId));
    // Departures first: a broadcaster replaced by another must leave before the other arrives.
    if (opts.removeMissing) {
      const broadcaster = snapshot.find((m) => m.role === 'broadcaster');
      for (const m of replica.room.members()) {
        if (inSnapshot.has(m.peerId) || replica.newer(m.peerId, v)) continue;
        replica.remove(m.peerId, v);
        // A member of ours the directory no longer has was removed while we could not hear
        // it (a notice published before we had subscribed again): a broadcaster replaced by
        // another lost a reconciliation (`conflict`); anything else was removed (`kicked`).
        const reason = m.instanceId !== this.me ? 'instance-lost' : m.role === 'broadcaster' && broadcaster ? 'conflict' : 'kicked';
        this.events.left(replica.room, m, reason);
      }
    }
    for (const m of snapshot) {
      if (replica.newer(m.peerId, v)) continue;
      const current = replica.room.get(m.peerId);
      this.put(replica, m, v);
      if (!current || !sameMember(current, m)) this.events.joined(replica.room, m);
    }
    replica.base = Math.max(replica.base, v);
    this.maybeDrop(replica);
  }

  /**
   * Puts a member in. A room has one broadcaster: another one in the replica (the directory
   * settled a reconciliation conflict in the newcomer's favour) leaves, and is told why.
   */
  private put(replica: Replica, member: Member, v: number): Member | undefined {
    const displaced = member.role === 'broadcaster' ? replica.room.broadcaster : undefined;
    if (displaced && displaced.peerId !== member.peerId) {
      replica.remove(displaced.peerId, v);
      this.events.left(replica.room, displaced, 'conflict');
    }
    return replica.put(member, v);
  }

  /** Drops a replica once no member of it is held here and no join is on its way. */
  maybeDrop(replica: Replica): void {
    const id = replica.room.id;
    if (replica.local > 0 || this.joining.has(id) || this.replicas.get(id) !== replica) return;
    this.replicas.delete(id);
    this.events.dropped(id);
  }

  pruneTombstones(now = Date.now()): void {
    const cutoff = now - TOMBSTONE_MS;
    for (const replica of this.replicas.values()) {
      for (const [peerId, t] of replica.gone) if (t.at < cutoff) replica.gone.delete(peerId);
    }
  }
}
