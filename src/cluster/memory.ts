import { randomUUID } from 'node:crypto';
import type { Cluster, ClusterListener, InstanceStatus, PeerHolding, Receipt, RoomSummary } from '../core/cluster.js';
import { fanOutLocally } from '../core/fanout.js';
import { Room, checkAdmission } from '../core/room.js';
import type { FanoutEvent, LeaveReason, Member, PeerEvent } from '../core/types.js';
import { LocalDelivery } from './local.js';
import { MemoryDirectMail } from './memory-direct.js';

/** The embedded default: one process, every room and peer in local maps. */
export class MemoryCluster implements Cluster {
  readonly instanceId = `mem-${randomUUID().slice(0, 8)}`;
  readonly healthy = true;
  readonly direct = new MemoryDirectMail();
  private readonly rooms = new Map<string, Room>();
  private readonly local = new LocalDelivery(this.instanceId);
  private report: object | null = null;

  async start(listener: ClusterListener): Promise<void> {
    this.local.attach(listener);
  }

  async stop(): Promise<void> {
    this.rooms.clear();
  }

  async join(roomId: string, member: Member, maxPeers: number): Promise<Room> {
    let room = this.rooms.get(roomId);
    checkAdmission(room, member, maxPeers);
    if (!room) {
      room = new Room(roomId);
      this.rooms.set(roomId, room);
    }
    room.put(member);
    this.local.joined(room, member);
    return room;
  }

  async leave(roomId: string, peerId: string, reason: LeaveReason): Promise<Member | undefined> {
    const room = this.rooms.get(roomId);
    const gone = room?.remove(peerId);
    if (!room || !gone) return undefined;
    if (room.size === 0) this.rooms.delete(roomId);
    this.local.left(room, gone, reason);
    return gone;
  }

  localRoomCount(): number {
    return this.rooms.size;
  }

  room(roomId: string): Room | undefined {
    return this.rooms.get(roomId);
  }

  send(to: Member, event: PeerEvent, receipt?: Receipt): void {
    // One process: every member is local.
    this.local.deliver(to.peerId, event);
    receipt?.();
  }

  fanout(room: Room, event: FanoutEvent): void {
    fanOutLocally(room, this.instanceId, event, (peerId, e) => this.local.deliver(peerId, e));
  }

  /** One process: a resume always finds its peer in the hub, so nothing is ever handed over. */
  async claimPeer(): Promise<undefined> {
    return undefined;
  }
  async releasePeer(): Promise<void> {}

  async listRooms(): Promise<RoomSummary[]> {
    return [...this.rooms.values()].map((r) => ({
      id: r.id,
      members: r.size,
      broadcaster: r.broadcaster?.peerId ?? null,
    }));
  }

  async roomMembers(roomId: string): Promise<Member[] | undefined> {
    return this.rooms.get(roomId)?.members();
  }

  /** One process: there are no other instances. */
  async remotePeers(): Promise<PeerHolding[]> {
    return [];
  }

  async reportInstance(report: object): Promise<void> {
    this.report = report;
  }

  async instances(): Promise<InstanceStatus[]> {
    return [{ id: this.instanceId, up: true, report: this.report }];
  }
}
