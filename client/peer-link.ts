import { DataPipe, type DataMessage, type DataPayload } from './data-pipe.js';
import { Emitter } from './emitter.js';
import { HeraldError } from './signaling.js';

/** What travels in `signal.data` between SDK peers (and maps onto the seed protocol). */
export type SignalData = { description: RTCSessionDescriptionInit } | { candidate: RTCIceCandidateInit };

/** Whether a received `signal.data` is one a PeerLink can apply (another app's signals are not). */
export function isSignalData(data: unknown): data is SignalData {
  if (typeof data !== 'object' || data === null) return false;
  const { description, candidate } = data as { description?: unknown; candidate?: unknown };
  if (description !== undefined) return typeof description === 'object' && description !== null && typeof (description as { type?: unknown }).type === 'string';
  return typeof candidate === 'object' && candidate !== null;
}

export interface PeerLinkOptions {
  /** The polite side yields on offer glare; both ends must decide this the same way. */
  polite: boolean;
  iceServers: RTCIceServer[];
  send(data: SignalData): void;
  /** Restart ICE this long after the connection reports `disconnected` (it may recover alone). */
  disconnectedGraceMs?: number;
}

export interface PeerLinkEvents {
  track: RTCTrackEvent;
  state: RTCPeerConnectionState;
  /** A message on the link's data channel. */
  data: DataMessage;
  /** The data channel opened: what was queued has been handed to it. */
  'channel-open': RTCDataChannel;
  error: Error;
}

/** The label of every link's one data channel. */
export const DATA_CHANNEL_LABEL = 'herald';

/**
 * One RTCPeerConnection to one remote peer, negotiated with the "perfect negotiation"
 * pattern: either side may offer at any time, glare is resolved by politeness (the polite
 * side rolls back), candidates trickle both ways and wait until a remote description
 * exists, and ICE is restarted when it fails.
 *
 * Every link carries one reliable, ordered data channel. The impolite side creates it (both
 * ends agree on who that is) and the polite side takes it from `datachannel`, so the channel
 * rides in the offer that wins any glare. It belongs to the connection, not to an offer:
 * renegotiation and ICE restarts keep it.
 */
export class PeerLink extends Emitter<PeerLinkEvents> {
  readonly pc: RTCPeerConnection;
  private makingOffer = false;
  /** The offer being made (setLocalDescription in flight), if any. */
  private offering: Promise<void> | undefined;
  /** Local candidates gathered since our last local description. */
  private localCandidates = 0;
  private ignoreOffer = false;
  private readonly earlyCandidates: RTCIceCandidateInit[] = [];
  /** Incoming signals are applied one at a time, in order. */
  private inbound: Promise<void> = Promise.resolve();
  private restartTimer: ReturnType<typeof setTimeout> | undefined;
  private closed = false;
  private readonly pipe: DataPipe;

  constructor(
    readonly remoteId: string,
    private readonly options: PeerLinkOptions,
  ) {
    super();
    const pc = (this.pc = new RTCPeerConnection({ iceServers: options.iceServers }));
    pc.onnegotiationneeded = () => void this.offer();
    pc.onicecandidate = ({ candidate }) => {
      if (!candidate) return;
      this.localCandidates++;
      options.send({ candidate: candidate.toJSON() });
    };
    pc.ontrack = (event) => this.emit('track', event);
    pc.onconnectionstatechange = () => this.emit('state', pc.connectionState);
    pc.oniceconnectionstatechange = () => this.watchIce();
    this.pipe = new DataPipe(
      { message: (data) => this.emit('data', data), open: () => this.emit('channel-open', this.pipe.channel!) },
      () => pc.sctp?.maxMessageSize,
    );
    if (options.polite) {
      pc.ondatachannel = ({ channel }) => channel.label === DATA_CHANNEL_LABEL && this.pipe.attach(channel);
    } else {
      this.pipe.attach(pc.createDataChannel(DATA_CHANNEL_LABEL, { ordered: true }));
    }
  }

  /** The data channel, once created (impolite side) or received (polite side). */
  get channel(): RTCDataChannel | undefined {
    return this.pipe.channel;
  }

  /**
   * Sends one message on the data channel, or queues it (in order) until the channel opens.
   * Throws HeraldError('too-large') for a message over the link's limit or a full queue.
   */
  send(data: DataPayload): void {
    if (this.closed) throw new HeraldError('closed', `the link to ${this.remoteId} is closed`);
    this.pipe.send(data);
  }

  get polite(): boolean {
    return this.options.polite;
  }

  /** Feeds one signal from the remote peer. */
  receive(data: SignalData): void {
    this.inbound = this.inbound.then(() => this.apply(data)).catch((err) => this.emit('error', err));
  }

  restartIce(): void {
    if (!this.closed) this.pc.restartIce();
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this.restartTimer);
    this.pc.close();
  }

  private offer(): Promise<void> {
    const offering = (async () => {
      try {
        this.makingOffer = true;
        this.localCandidates = 0;
        await this.pc.setLocalDescription();
        this.options.send({ description: this.pc.localDescription!.toJSON() });
      } catch (err) {
        this.emit('error', err as Error);
      } finally {
        this.makingOffer = false;
      }
    })();
    this.offering = offering;
    void offering.finally(() => this.offering === offering && (this.offering = undefined));
    return offering;
  }

  /**
   * Before the polite side rolls back its own offer, lets that offer's ICE gathering get
   * going: Chromium (at least 120-156) never gathers a single candidate for the answer when
   * the rollback lands while the offer's first gathering is still starting, and ICE stays
   * `new` for good (restartIce does not revive it). Waiting for the first local candidate,
   * or the end of gathering, costs a few tens of ms and only happens on glare.
   */
  private async settleOwnOffer(maxMs = 2000): Promise<void> {
    await this.offering;
    const pc = this.pc;
    const ready = () => this.closed || pc.signalingState !== 'have-local-offer' || this.localCandidates > 0 || pc.iceGatheringState === 'complete';
    if (ready()) return;
    await new Promise<void>((resolve) => {
      const done = () => {
        clearInterval(poll);
        clearTimeout(cap);
        pc.removeEventListener('icecandidate', check);
        pc.removeEventListener('icegatheringstatechange', check);
        resolve();
      };
      const check = () => ready() && done();
      const poll = setInterval(check, 20);
      const cap = setTimeout(done, maxMs);
      pc.addEventListener('icecandidate', check);
      pc.addEventListener('icegatheringstatechange', check);
    });
  }

  private async apply(data: SignalData): Promise<void> {
    if (this.closed) return;
    const pc = this.pc;
    if ('description' in data) {
      const description = data.description;
      const collision = description.type === 'offer' && (this.makingOffer || pc.signalingState !== 'stable');
      this.ignoreOffer = !this.options.polite && collision;
      if (this.ignoreOffer) return;
      if (collision) await this.settleOwnOffer();
      if (this.closed) return;
      await pc.setRemoteDescription(description); // the polite side rolls back implicitly
      for (const candidate of this.earlyCandidates.splice(0)) await this.addCandidate(candidate);
      if (description.type === 'offer') {
        this.localCandidates = 0;
        await pc.setLocalDescription();
        this.options.send({ description: pc.localDescription!.toJSON() });
      }
    } else if ('candidate' in data && data.candidate) {
      if (!pc.remoteDescription) this.earlyCandidates.push(data.candidate);
      else await this.addCandidate(data.candidate);
    }
  }

  private async addCandidate(candidate: RTCIceCandidateInit): Promise<void> {
    try {
      await this.pc.addIceCandidate(candidate);
    } catch (err) {
      // Candidates for an offer we ignored during glare are expected to fail.
      if (!this.ignoreOffer) this.emit('error', err as Error);
    }
  }

  private watchIce(): void {
    const state = this.pc.iceConnectionState;
    clearTimeout(this.restartTimer);
    if (state === 'failed') this.restartIce();
    else if (state === 'disconnected') {
      this.restartTimer = setTimeout(() => {
        if (this.pc.iceConnectionState === 'disconnected') this.restartIce();
      }, this.options.disconnectedGraceMs ?? 3000);
    }
  }
}
