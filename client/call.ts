import type { JoinAck } from '../src/protocol/json-messages.js';
import type { DataMessage, DataPayload } from './data-pipe.js';
import { Emitter } from './emitter.js';
import { isSignalData, PeerLink } from './peer-link.js';
import { sendTo } from './send-to.js';
import type { SignalEvent, Signaling } from './signaling.js';

export interface CallEvents {
  /** A participant's media arrived (again). */
  stream: { peerId: string; stream: MediaStream };
  /** A participant left; remove its video. */
  left: { peerId: string };
  /** Number of other participants. */
  participants: number;
  'peer-state': { peerId: string; state: RTCPeerConnectionState };
  /** A message from a participant's data channel. */
  data: { peerId: string; data: DataMessage };
  /** The data channel to a participant opened. */
  'channel-open': { peerId: string };
  error: Error;
}

/**
 * A 1:1 call or a small mesh: every pair of participants has its own connection. Both
 * ends of a pair may offer at once; perfect negotiation sorts it out, with the side whose
 * peer id sorts first being polite (both ends compute the same answer).
 */
export class Call extends Emitter<CallEvents> {
  readonly links = new Map<string, PeerLink>();
  private readonly unsubscribe: (() => void)[] = [];

  constructor(
    readonly signaling: Signaling,
    readonly room: string,
    private readonly stream: MediaStream,
  ) {
    super();
    const s = signaling;
    this.unsubscribe.push(
      s.on('peer-joined', ({ room, peer }) => room === this.room && peer.role === 'peer' && this.connectTo(peer.id)),
      s.on('peer-left', ({ room, peer }) => room === this.room && this.drop(peer.id)),
      s.on('signal', (e) => this.onSignal(e)),
      // Our old session is gone on the other side too: start every connection afresh.
      s.on('rejoined', (ack) => ack.room === this.room && this.adopt(ack, true)),
    );
  }

  async start(): Promise<JoinAck> {
    if (this.signaling.state === 'idle') await this.signaling.connect();
    const ack = await this.signaling.join(this.room, 'peer');
    this.adopt(ack);
    return ack;
  }

  /**
   * Sends a message on the data channel to every participant, or to `to` only (a
   * HeraldError('not-found') if there is no such participant). Queued until each channel opens.
   */
  send(data: DataPayload, to?: string): void {
    sendTo(this.links, data, to);
  }

  async stop(): Promise<void> {
    for (const off of this.unsubscribe.splice(0)) off();
    for (const id of [...this.links.keys()]) this.drop(id);
    await this.signaling.leave(this.room).catch(() => undefined);
  }

  /**
   * Connects to the members a join returned. A member we already have a connection with
   * (its peer-joined came in before our join's reply) keeps it unless `fresh` says otherwise:
   * replacing it would leave the other side's offer on our old connection.
   */
  private adopt(ack: JoinAck, fresh = false): void {
    for (const member of ack.members) {
      if (member.role === 'peer' && (fresh || !this.links.has(member.id))) this.connectTo(member.id);
    }
  }

  private connectTo(peerId: string): PeerLink {
    this.links.get(peerId)?.close();
    const link = new PeerLink(peerId, {
      polite: this.signaling.peerId! < peerId,
      iceServers: this.signaling.iceServers,
      send: (data) => this.signaling.signal(this.room, peerId, data),
    });
    link.on('track', (event) => this.emit('stream', { peerId, stream: event.streams[0] ?? new MediaStream([event.track]) }));
    link.on('state', (state) => this.emit('peer-state', { peerId, state }));
    link.on('data', (data) => this.emit('data', { peerId, data }));
    link.on('channel-open', () => this.emit('channel-open', { peerId }));
    link.on('error', (err) => this.emit('error', err));
    this.links.set(peerId, link);
    for (const track of this.stream.getTracks()) link.pc.addTrack(track, this.stream);
    this.emit('participants', this.links.size);
    return link;
  }

  private drop(peerId: string): void {
    const link = this.links.get(peerId);
    if (!link) return;
    link.close();
    this.links.delete(peerId);
    this.emit('left', { peerId });
    this.emit('participants', this.links.size);
  }

  private onSignal({ room, from, data }: SignalEvent): void {
    // Signals that are not ours to apply (another app on the same room) are ignored.
    if (room !== this.room || !isSignalData(data)) return;
    (this.links.get(from) ?? this.connectTo(from)).receive(data);
  }
}
