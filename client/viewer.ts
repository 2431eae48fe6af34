import type { JoinAck } from '../src/protocol/json-messages.js';
import { Emitter } from './emitter.js';
import { PeerLink } from './peer-link.js';
import type { SignalEvent, Signaling } from './signaling.js';

export interface ViewerEvents {
  /** The broadcast's stream, each time a (new) connection delivers it. */
  stream: MediaStream;
  /** true when a broadcaster is in the room, false when it left. */
  live: boolean;
  state: RTCPeerConnectionState;
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

  async stop(): Promise<void> {
    for (const off of this.unsubscribe.splice(0)) off();
    this.dropLink();
    await this.signaling.leave(this.room).catch(() => undefined);
  }

  private onSignal({ room, from, data }: SignalEvent): void {
    if (room !== this.room) return;
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
