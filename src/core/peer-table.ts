import { HeraldError } from './errors.js';
import type { Grant } from './grant.js';
import type { Detached } from './resume-queue.js';
import type { PeerEvent, Protocol, Role, Sequenced, Session } from './types.js';

/** The rooms of a room-less (direct) peer: none, ever. One shared map (memory per idle peer). */
class NoRooms extends Map<string, Role> {
  override set(): this {
    throw new HeraldError('forbidden', 'a room-less peer joins no rooms');
  }
}
export const NO_ROOMS: Map<string, Role> = new NoRooms();

/** One peer id held by this instance: connected (session) or waiting to resume (detached). */
export interface PeerState {
  readonly id: string;
  /** Token identity (`sub`); undefined in open mode. */
  readonly identity: string | undefined;
  /** The grant in force: that of the token the current session came with. */
  grant: Grant | undefined;
  protocol: Protocol;
  session: Session | undefined;
  detached: Detached | undefined;
  /** Rooms this peer is in, and its role in each. */
  readonly rooms: Map<string, Role>;
  readonly resumeToken: string;
  /** The last sequence number given (acknowledging sessions only). */
  seq: number;
  /** Given but not acknowledged, oldest first: replayed by a resume past the client's `lastSeq`. */
  unacked: Sequenced[];
}

/**
 * The peers this instance holds, by id and by resume token, and how an event is given to a
 * session: numbered and kept until acknowledged when the session acknowledges (resume replay).
 */
export class PeerTable {
  private readonly byId = new Map<string, PeerState>();
  private readonly byResumeToken = new Map<string, PeerState>();

  constructor(private readonly resumeQueueMax: number) {}

  get size(): number {
    return this.byId.size;
  }

  get(peerId: string): PeerState | undefined {
    return this.byId.get(peerId);
  }

  has(peerId: string): boolean {
    return this.byId.has(peerId);
  }

  ids(): IterableIterator<string> {
    return this.byId.keys();
  }

  byToken(resumeToken: string): PeerState | undefined {
    return this.byResumeToken.get(resumeToken);
  }

  /** Registers a peer; one without a resume token (room-less) gets no index entry. */
  add(state: PeerState): void {
    this.byId.set(state.id, state);
    if (state.resumeToken) this.byResumeToken.set(state.resumeToken, state);
  }

  /** Forgets a peer on this instance (its rooms are the caller's business). */
  remove(state: PeerState): void {
    this.byId.delete(state.id);
    this.byResumeToken.delete(state.resumeToken);
    if (state.detached) clearTimeout(state.detached.timer);
  }

  /** Binds a session; a previous different session is closed as replaced. */
  attach(state: PeerState, session: Session): void {
    const previous = state.session;
    if (state.detached) clearTimeout(state.detached.timer);
    state.detached = undefined;
    state.session = session;
    state.protocol = session.protocol;
    if (previous && previous !== session) previous.close(4000, 'replaced');
  }

  /** Gives an event to a session: numbered and kept until acknowledged, if it acknowledges. */
  give(state: PeerState, session: Session, event: PeerEvent): void {
    if (!session.acknowledges) {
      session.deliver(event);
      return;
    }
    const seq = ++state.seq;
    state.unacked.push({ seq, event });
    // A client that stops acknowledging must not grow this without bound: the oldest go.
    if (state.unacked.length > this.resumeQueueMax * 4) state.unacked.shift();
    session.deliver(event, seq);
  }

  /** Gives again, with their numbers, the unacknowledged events past the client's `lastSeq`. */
  replay(state: PeerState, session: Session, lastSeq: number | undefined): void {
    if (!session.acknowledges || lastSeq === undefined) {
      state.unacked = [];
      return;
    }
    this.ack(state, Math.min(lastSeq, state.seq));
    for (const { seq, event } of state.unacked) session.deliver(event, seq);
  }

  /** Forgets what was given up to `seq`; false when `seq` was never given. */
  ack(state: PeerState, seq: number): boolean {
    if (seq > state.seq) return false;
    const unacked = state.unacked;
    let n = 0;
    while (n < unacked.length && unacked[n]!.seq <= seq) n++;
    if (n > 0) unacked.splice(0, n);
    return true;
  }
}
