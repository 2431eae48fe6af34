import type { JoinAck } from '../src/protocol/json-messages.js';
import type { DataMessage, DataPayload } from './data-pipe.js';
import { Emitter } from './emitter.js';
import { isSignalData, PeerLink } from './peer-link.js';
import { sendTo } from './send-to.js';
import type { SignalEvent, Signaling } from './signaling.js';
import { isWhepSignal, WhepLink } from './whep-link.js';

export interface BroadcasterEvents {
  /** The number of viewers with a connection (open or being set up), WHEP players included. */
  viewers: number;
  'viewer-state': { viewerId: string; state: RTCPeerConnectionState };
  /** A message from a viewer's data channel. */
  data: { peerId: string; data: DataMessage };
  /** The data channel to a viewer opened. */
  'channel-open': { peerId: string };
  error: Error;
}

/**
 * Sends one MediaStream to every viewer of a room: one RTCPeerConnection per viewer,
 * created when the viewer joins and closed when it leaves. A WHEP player (a viewer marked
 * `whep`, docs/whep.md) gets a WhepLink instead, which answers the player's offer.
 */
export class Broadcaster extends Emitter<BroadcasterEvents> {
  readonly links = new Map<string, PeerLink>();
  /** WHEP players' connections: no data channel, so `send` does not reach them. */
  readonly whepLinks = new Map<string, WhepLink>();
  private readonly unsubscribe: (() => void)[] = [];

  constructor(
    readonly signaling: Signaling,
    readonly room: string,
    private stream: MediaStream,
  ) {
    super();
    const s = signaling;
    this.unsubscribe.push(
      // A WHEP player offers itself: its link is made when its offer comes.
      s.on('peer-joined', ({ room, peer }) => room === this.room && peer.role === 'viewer' && !peer.whep && this.addViewer(peer.id)),
      s.on('peer-left', ({ room, peer }) => room === this.room && this.removeViewer(peer.id)),
      s.on('signal', (e) => this.onSignal(e)),
      // Our old session is gone on the other side too: start every connection afresh.
      s.on('rejoined', (ack) => ack.room === this.room && this.adopt(ack, true)),
    );
  }

  /** Joins the room as its broadcaster and offers the stream to every viewer already there. */
  async start(): Promise<JoinAck> {
    if (this.signaling.state === 'idle') await this.signaling.connect();
    const ack = await this.signaling.join(this.room, 'broadcaster');
    this.adopt(ack);
    return ack;
  }

  get viewerCount(): number {
    return this.links.size + this.whepLinks.size;
  }

  /** Swaps the outgoing track of one kind on every connection, without renegotiating. */
  async replaceTrack(track: MediaStreamTrack): Promise<void> {
    const old = this.stream.getTracks().find((t) => t.kind === track.kind);
    if (old) this.stream.removeTrack(old);
    this.stream.addTrack(track);
    // Matched by the transceiver's media kind, which holds even for a sender with no track.
    await Promise.all(
      [...this.links.values(), ...this.whepLinks.values()].flatMap((link) =>
        link.pc.getTransceivers().filter((t) => t.receiver.track.kind === track.kind).map((t) => t.sender.replaceTrack(track)),
      ),
    );
  }

  /**
   * Sends a message on the data channel to every viewer, or to viewer `to` only (a
   * HeraldError('not-found') if there is no such viewer). Queued until each channel opens.
   */
  send(data: DataPayload, to?: string): void {
    sendTo(this.links, data, to);
  }

  async stop(): Promise<void> {
    for (const off of this.unsubscribe.splice(0)) off();
    for (const link of this.links.values()) link.close();
    this.links.clear();
    for (const link of this.whepLinks.values()) link.close();
    this.whepLinks.clear();
    this.emit('viewers', 0);
    await this.signaling.leave(this.room).catch(() => undefined);
  }

  /**
   * Connects to the members a join returned. A member we already have a connection with
   * (its peer-joined came in before our join's reply) keeps it unless `fresh` says otherwise:
   * replacing it would leave the other side's offer on our old connection.
   */
  private adopt(ack: JoinAck, fresh = false): void {
    if (fresh) {
      // Our old session is gone, and with it every WHEP session it answered (WHEP cannot renegotiate).
      for (const link of this.whepLinks.values()) link.close();
      this.whepLinks.clear();
    }
    for (const member of ack.members) {
      if (member.role === 'viewer' && !member.whep && (fresh || !this.links.has(member.id))) this.addViewer(member.id);
    }
    if (fresh) this.emit('viewers', this.viewerCount);
  }

  private addWhepViewer(viewerId: string): WhepLink {
    const link = new WhepLink(viewerId, {
      iceServers: this.signaling.iceServers,
      stream: this.stream,
      send: (data) => this.signaling.signal(this.room, viewerId, data),
    });
    link.on('state', (state) => {
      this.emit('viewer-state', { viewerId, state });
      if (state === 'closed') this.removeViewer(viewerId);
    });
    link.on('error', (err) => this.emit('error', err));
    this.whepLinks.set(viewerId, link);
    this.emit('viewers', this.viewerCount);
    return link;
  }

  private addViewer(viewerId: string): PeerLink {
    this.links.get(viewerId)?.close();
    const link = new PeerLink(viewerId, {
      polite: false,
      iceServers: this.signaling.iceServers,
      send: (data) => this.signaling.signal(this.room, viewerId, data),
    });
    link.on('state', (state) => {
      this.emit('viewer-state', { viewerId, state });
      if (state === 'closed') this.removeViewer(viewerId, link);
    });
    link.on('error', (err) => this.emit('error', err));
    link.on('data', (data) => this.emit('data', { peerId: viewerId, data }));
    link.on('channel-open', () => this.emit('channel-open', { peerId: viewerId }));
    this.links.set(viewerId, link);
    for (const track of this.stream.getTracks()) link.pc.addTrack(track, this.stream);
    this.emit('viewers', this.viewerCount);
    return link;
  }

  private removeViewer(viewerId: string, only?: PeerLink): void {
    const whep = this.whepLinks.get(viewerId);
    if (whep && !only) {
      whep.close();
      this.whepLinks.delete(viewerId);
      this.emit('viewers', this.viewerCount);
      return;
    }
    const link = this.links.get(viewerId);
    if (!link || (only && link !== only)) return;
    link.close();
    this.links.delete(viewerId);
    this.emit('viewers', this.viewerCount);
  }

  private onSignal({ room, from, data }: SignalEvent): void {
    if (room !== this.room) return;
    if (isWhepSignal(data)) {
      const link = this.whepLinks.get(from) ?? ('description' in data ? this.addWhepViewer(from) : undefined);
      link?.receive(data);
      return;
    }
    // Signals that are not ours to apply (another app on the same room) are ignored.
    if (!isSignalData(data)) return;
    // A viewer we have no link for (e.g. we reconnected): set one up, then apply its signal.
    (this.links.get(from) ?? this.addViewer(from)).receive(data);
  }
}
