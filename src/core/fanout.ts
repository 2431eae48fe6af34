import type { Room } from './room.js';
import type { FanoutEvent } from './types.js';

/**
 * Fan-out: one message to every member of a room, its sender included (y-webrtc's publish).
 * The core's relays go member to member; this is its one operation addressed to a room.
 *
 * It costs one delivery per local member and, per other instance holding members, one
 * message on the network (never one per remote member): that instance delivers it to its own
 * members from its replica of the room. Ordering is `Cluster.fanout`'s contract
 * (core/cluster.ts): per sender, in the order of calls, on every instance.
 */

/** Gives `event` to each member of `room` held by instance `me`, sender included. */
export function fanOutLocally(room: Room, me: string, event: FanoutEvent, deliver: (peerId: string, event: FanoutEvent) => void): void {
  // y-webrtc topics hold peers only; the other role maps are checked for mixed rooms.
  for (const m of room.peers.values()) if (m.instanceId === me) deliver(m.peerId, event);
  for (const m of room.viewers.values()) if (m.instanceId === me) deliver(m.peerId, event);
  const b = room.broadcaster;
  if (b && b.instanceId === me) deliver(b.peerId, event);
}
