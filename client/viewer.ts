import type { JoinAck } from '../src/protocol/json-messages.js';
import { checkSize, MAX_QUEUED_BYTES, snapshot, type DataMessage, type DataPayload } from './data-pipe.js';
import { Emitter } from './emitter.js';
import { isSignalData, PeerLink } from './peer-link.js';
import { HeraldError, type SignalEvent, type Signaling } from './signaling.js';

export interface ViewerEvents {
  /** The broadcast's stream, each time a (new) connection delivers it. */
  stream: MediaStream;
  /** true when a broadcaster is in the room, false when it left. */
  live: boolean;
  state: RTCPeerConnectionState;
  /** A message from the broadcaster's data channel. */
  data: { peerId: string; data: DataMessage };
  /** The data channel to the broadcaster opened. */
  'channel-open': { peerId: string };
  error: Error;
}

/**
 * Plays a room's broadcast. Waits if the broadcaster is not there yet, and picks up again
 * when the broadcaster leaves and comes back (each offer from a new broadcaster gets a
 * fresh RTCPeerConnection).
 */
export class Viewer extends Emitter<ViewerEvents> {
  link: PeerLink | undefined;
  live = false;
  private readonly unsubscribe: (() => void)[] = [];
  /** What `send` got while there was no connection to a broadcaster; the next one takes it. */
  private readonly unsent: DataPayload[] = [];
  private unsentBytes = 0;

  constructor(
    readonly signaling: Signaling,
    readonly room: string,
  ) {
    super();
    const s = signaling;
    this.unsubscribe.push(
      s.on('signal', (e) => this.onSignal(e)),
      // A broadcaster that (re)joins is a fresh session and offers on a fresh connection.
      s.on('peer-joined', ({ room, peer }) => {
        if (room !== this.room || peer.role !== 'broadcaster') return;
        this.dropLink();
        this.setLive(true);
      }),
      s.on('peer-left', ({ room, peer }) => {
        if (room !== this.room || peer.role !== 'broadcaster') return;
        this.dropLink();
        this.setLive(false);
      }),
      // We could not resume: the broadcaster dropped our connection and offers a new one.
      s.on('rejoined', (ack) => {
        if (ack.room !== this.room) return;
        this.dropLink();
        this.setLive(ack.counts.broadcaster);
      }),
    );
  }

  async start(): Promise<JoinAck> {
    if (this.signaling.state === 'idle') await this.signaling.connect();
    const ack = await this.signaling.join(this.room, 'viewer');
    this.setLive(ack.counts.broadcaster);
    return ack;
  }

  /**
   * Sends a message on the data channel to the broadcaster. Before there is a connection
   * (no broadcaster yet) or while its channel opens, messages wait in order.
   */
  send(data: DataPayload): void {
    if (this.link) return this.link.send(data);
    const size = checkSize(data);
    if (this.unsentBytes + size > MAX_QUEUED_BYTES) throw new HeraldError('too-large', `more than ${MAX_QUEUED_BYTES} bytes are waiting for a broadcaster`);
    this.unsent.push(snapshot(data));
    this.unsentBytes += size;
  }

  async stop(): Promise<void> {
    for (const off of this.unsubscribe.splice(0)) off();
    this.dropLink();
    await this.signaling.leave(this.room).catch(() => undefined);
  }

  private onSignal({ room, from, data }: SignalEvent): void {
    // Signals that are not ours to apply (another app on the same room) are ignored.
    if (room !== this.room || !isSignalData(data)) return;
    if (!this.link || this.link.remoteId !== from || ('description' in data && data.description?.type === 'offer' && this.link.pc.connectionState === 'closed')) {
      this.dropLink();
      this.link = this.createLink(from);
    }
    this.link.receive(data);
  }

  private createLink(broadcasterId: string): PeerLink {
    const link = new PeerLink(broadcasterId, {
      polite: true,
      iceServers: this.signaling.iceServers,
      send: (data) => this.signaling.signal(this.room, broadcasterId, data),
    });
    link.on('track', (event) => this.emit('stream', event.streams[0] ?? new MediaStream([event.track])));
    link.on('state', (state) => this.emit('state', state));
    link.on('error', (err) => this.emit('error', err));
    link.on('data', (data) => this.emit('data', { peerId: broadcasterId, data }));
    link.on('channel-open', () => this.emit('channel-open', { peerId: broadcasterId }));
    for (const data of this.unsent.splice(0)) link.send(data);
    this.unsentBytes = 0;
    this.setLive(true);
    return link;
  }

  private dropLink(): void {
    this.link?.close();
    this.link = undefined;
  }

  private setLive(live: boolean): void {
    if (this.live === live) return;
    this.live = live;
    this.emit('live', live);
  }
}
