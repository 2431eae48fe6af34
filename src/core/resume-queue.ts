import type { PeerState } from './peer-table.js';
import type { PeerEvent } from './types.js';

/** A dropped resumable peer's wait: its grace timer and what arrived for it meanwhile. */
export interface Detached {
  timer: NodeJS.Timeout;
  /** Everything addressed to the peer while away, in order. */
  queue: PeerEvent[];
  /** Signals in `queue`, capped at `resumeQueueMax` (past it, senders are told `expired`). */
  signals: number;
  /** Membership notices in `queue`, capped at `resumeQueueMax` too (past it, the resume is given up). */
  notices: number;
  /** Senders (room + id) already told `expired`: each is told once. */
  told: Set<string>;
}

export interface ResumeQueueHooks {
  /** The grace ran out (or the wait was given up): the peer leaves its rooms. */
  graceExpired(state: PeerState): void;
  /** Tells `senderId` of room `roomId` that its signals to `to` were dropped. */
  tellExpired(roomId: string, senderId: string, to: string): void;
}

/**
 * The resume grace: a dropped resumable peer keeps its rooms for `graceMs`, and what is
 * addressed to it waits, bounded by `max` signals (past it, senders hear `expired`, once
 * each) and `max` membership notices (past it, the resume is given up).
 */
export class ResumeQueue {
  constructor(
    private readonly graceMs: number,
    private readonly max: number,
    private readonly hooks: ResumeQueueHooks,
  ) {}

  /** Starts the grace for `state`; false when there is none (no grace configured, no rooms). */
  detach(state: PeerState): boolean {
    if (this.graceMs <= 0 || state.rooms.size === 0) return false;
    const timer = setTimeout(() => this.hooks.graceExpired(state), this.graceMs);
    timer.unref();
    state.detached = { timer, queue: [], signals: 0, notices: 0, told: new Set() };
    return true;
  }

  /** Keeps an event for a detached peer, within the caps. */
  hold(state: PeerState, detached: Detached, event: PeerEvent): void {
    if (event.type === 'fanout') return; // a publish is for who is there now (y-webrtc never resumes)
    // Membership notices are kept, so a resumed peer's view of its rooms is complete. They
    // are capped too: a view that needs more than `max` of them is no longer worth replaying,
    // so the resume is given up (the peer leaves its rooms now; on return it says hello
    // afresh and joins again). Signals are capped: past the cap, senders are told.
    if (event.type !== 'signal') {
      if (detached.notices >= this.max) {
        if (detached.notices++ > this.max) return; // given up already
        clearTimeout(detached.timer);
        // Not inside this delivery: it may be one of a loop over the room's members.
        setImmediate(() => this.hooks.graceExpired(state));
        return;
      }
      detached.notices++;
      detached.queue.push(event);
    } else if (detached.signals < this.max) {
      detached.signals++;
      detached.queue.push(event);
    } else this.bounce(detached, event.room, event.from, state.id);
  }

  /** Tells the senders of queued signals that they will never be delivered. */
  expire(state: PeerState): void {
    const detached = state.detached;
    if (!detached) return;
    for (const event of detached.queue) {
      if (event.type === 'signal') this.bounce(detached, event.room, event.from, state.id);
    }
    detached.queue.length = 0;
    detached.signals = 0;
    detached.notices = 0;
  }

  /** Sends `expired` to a sender once per absence of the recipient. */
  private bounce(detached: Detached, roomId: string, senderId: string, to: string): void {
    const key = `${roomId}\n${senderId}`;
    if (detached.told.has(key)) return;
    detached.told.add(key);
    this.hooks.tellExpired(roomId, senderId, to);
  }
}
