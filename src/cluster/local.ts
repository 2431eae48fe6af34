import type { ClusterListener } from '../core/cluster.js';
import type { Room } from '../core/room.js';
import type { LeaveReason, Member, PeerEvent } from '../core/types.js';

/**
 * Delivery to the peers this instance holds, written once for every cluster. The memory
 * cluster is nothing but this; the Redis cluster embeds it (as LiveKit's Redis router embeds
 * its local router) and adds the network only for members held elsewhere.
 */
export class LocalDelivery {
  private listener: ClusterListener | undefined;

  constructor(readonly instanceId: string) {}

  attach(listener: ClusterListener): void {
    this.listener = listener;
  }

  get core(): ClusterListener {
    if (!this.listener) throw new Error('cluster used before start()');
    return this.listener;
  }

  /** Delivers in-process when `to` lives here; false means it lives on another instance. */
  send(to: Member, event: PeerEvent): boolean {
    if (to.instanceId !== this.instanceId) return false;
    this.core.deliver(to.peerId, event);
    return true;
  }

  deliver(peerId: string, event: PeerEvent): void {
    this.core.deliver(peerId, event);
  }

  joined(room: Room, member: Member): void {
    this.core.memberJoined(room, member);
  }

  left(room: Room, member: Member, reason: LeaveReason): void {
    this.core.memberLeft(room, member, reason);
  }
}
