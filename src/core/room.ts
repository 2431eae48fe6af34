import { HeraldError } from './errors.js';
import { hears, type Member, type RoomCounts } from './types.js';

/**
 * One room's membership, split by role so that every question the message path asks
 * ("who is the broadcaster?", "is X here?", "who hears about Y?") is a map lookup.
 */
export class Room {
  broadcaster: Member | undefined;
  readonly viewers = new Map<string, Member>();
  readonly peers = new Map<string, Member>();
  /** Members per holding instance: where a fan-out must go (core/fanout.ts). */
  private readonly perInstance = new Map<string, number>();

  constructor(readonly id: string) {}

  /** The instances holding members of this room, each once. */
  instanceIds(): IterableIterator<string> {
    return this.perInstance.keys();
  }

  get size(): number {
    return (this.broadcaster ? 1 : 0) + this.viewers.size + this.peers.size;
  }

  counts(): RoomCounts {
    return { broadcaster: this.broadcaster !== undefined, viewers: this.viewers.size, peers: this.peers.size };
  }

  get(peerId: string): Member | undefined {
    if (this.broadcaster?.peerId === peerId) return this.broadcaster;
    return this.viewers.get(peerId) ?? this.peers.get(peerId);
  }

  /** Adds or replaces `member`; a peer holds one role per room. */
  put(member: Member): void {
    this.remove(member.peerId);
    this.perInstance.set(member.instanceId, (this.perInstance.get(member.instanceId) ?? 0) + 1);
    if (member.role === 'broadcaster') this.broadcaster = member;
    else if (member.role === 'viewer') this.viewers.set(member.peerId, member);
    else this.peers.set(member.peerId, member);
  }

  remove(peerId: string): Member | undefined {
    const gone = this.take(peerId);
    if (gone) {
      const n = (this.perInstance.get(gone.instanceId) ?? 1) - 1;
      if (n > 0) this.perInstance.set(gone.instanceId, n);
      else this.perInstance.delete(gone.instanceId);
    }
    return gone;
  }

  private take(peerId: string): Member | undefined {
    if (this.broadcaster?.peerId === peerId) {
      const gone = this.broadcaster;
      this.broadcaster = undefined;
      return gone;
    }
    const viewer = this.viewers.get(peerId);
    if (viewer) {
      this.viewers.delete(peerId);
      return viewer;
    }
    const peer = this.peers.get(peerId);
    if (peer) this.peers.delete(peerId);
    return peer;
  }

  members(): Member[] {
    const all: Member[] = this.broadcaster ? [this.broadcaster] : [];
    for (const m of this.viewers.values()) all.push(m);
    for (const m of this.peers.values()) all.push(m);
    return all;
  }

  /**
   * The members told when `subject` joins or leaves. A viewer's arrival touches only the
   * broadcaster, so a join storm of N viewers costs N notices, not N².
   */
  *listenersOf(subject: Member): Iterable<Member> {
    if (subject.role === 'viewer') {
      if (this.broadcaster && this.broadcaster.peerId !== subject.peerId) yield this.broadcaster;
      return;
    }
    const pool = subject.role === 'broadcaster' ? this.viewers : this.peers;
    for (const m of pool.values()) {
      if (m.peerId !== subject.peerId && hears(m.role, subject.role)) yield m;
    }
  }
}

/**
 * The admission rule, shared by every cluster implementation (Redis repeats it atomically
 * in Lua): one broadcaster per room, and an optional cap on members.
 */
export function checkAdmission(room: Room | undefined, member: Member, maxPeers: number): void {
  const existing = room?.get(member.peerId);
  if (member.role === 'broadcaster' && room?.broadcaster && room.broadcaster.peerId !== member.peerId) {
    throw new HeraldError('conflict', `room ${room.id} already has a broadcaster`);
  }
  if (!existing && maxPeers > 0 && room && room.size >= maxPeers) {
    throw new HeraldError('room-full', `room ${room.id} is full (${maxPeers} members)`);
  }
}
