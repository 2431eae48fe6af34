import { Room } from '../core/room.js';
import type { Member } from '../core/types.js';

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
}
