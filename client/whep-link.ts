import { Emitter } from './emitter.js';

/** How long an answer waits for its candidates before it is sent with those it has. */
export const WHEP_GATHER_CAP_MS = 2000;

/** What a WHEP player's session sends in `signal.data` (docs/whep.md): marked `whep: true`. */
export type WhepSignal = { whep: true; description: RTCSessionDescriptionInit } | { whep: true; candidate: RTCIceCandidateInit };

export function isWhepSignal(data: unknown): data is WhepSignal {
  if (typeof data !== 'object' || data === null || (data as { whep?: unknown }).whep !== true) return false;
  const { description, candidate } = data as { description?: { type?: unknown; sdp?: unknown }; candidate?: unknown };
  if (description !== undefined) return description?.type === 'offer' && typeof description.sdp === 'string';
  return typeof candidate === 'object' && candidate !== null;
}

export interface WhepLinkOptions {
  iceServers: RTCIceServer[];
  stream: MediaStream;
  /** Sends `signal.data` to the player's session. */
  send(data: unknown): void;
}

export interface WhepLinkEvents {
  state: RTCPeerConnectionState;
  error: Error;
}

/**
 * The broadcaster's connection to one WHEP player. Unlike a PeerLink it never offers: the
 * player offered (recvonly), and WHEP has no renegotiation, so the answer is sendonly, carries
 * every candidate gathered within WHEP_GATHER_CAP_MS (players do not take trickled ones from
 * the server), and there is no data channel. The player's candidates arrive trickled (PATCH).
 */
export class WhepLink extends Emitter<WhepLinkEvents> {
  readonly pc: RTCPeerConnection;
  private inbound: Promise<void> = Promise.resolve();
  private closed = false;
  private ended = false;

  constructor(
    readonly remoteId: string,
    private readonly options: WhepLinkOptions,
  ) {
    super();
    this.pc = new RTCPeerConnection({ iceServers: options.iceServers });
    this.pc.onconnectionstatechange = () => {
      const state = this.pc.connectionState;
      this.emit('state', state);
      // No ICE restart is possible over WHEP: a failed connection is over; its session is told.
      if (state === 'failed') this.end();
    };
  }

  /** Feeds one signal from the player's session, in order. */
  receive(data: WhepSignal): void {
    this.inbound = this.inbound.then(() => this.apply(data)).catch((err) => this.emit('error', err as Error));
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.pc.close();
  }

  /** Closes the connection and tells the player's session (which ends it for the player). */
  end(): void {
    if (!this.ended && !this.closed) {
      this.ended = true;
      this.options.send({ whep: 'end' });
    }
    this.close();
    this.emit('state', 'closed');
  }

  private async apply(data: WhepSignal): Promise<void> {
    if (this.closed) return;
    const pc = this.pc;
    if ('description' in data) {
      if (pc.signalingState !== 'stable' || pc.remoteDescription) return; // one offer per session
      await pc.setRemoteDescription(data.description);
      const tracks = this.options.stream.getTracks();
      for (const transceiver of pc.getTransceivers()) {
        const track = tracks.find((t) => t.kind === transceiver.receiver.track.kind && !pc.getSenders().some((s) => s.track === t));
        if (track) {
          transceiver.direction = 'sendonly';
          await transceiver.sender.replaceTrack(track);
          transceiver.sender.setStreams(this.options.stream);
        } else transceiver.direction = 'inactive';
      }
      await pc.setLocalDescription();
      await this.gathered();
      if (this.closed) return;
      this.options.send({ description: pc.localDescription!.toJSON() });
    } else if (data.candidate.candidate) {
      // (An empty candidate, the player's end of candidates, is not needed: ICE runs on without it.)
      if (!pc.remoteDescription) return;
      await pc.addIceCandidate(data.candidate).catch((err) => this.emit('error', err as Error));
    }
  }

  /** Resolves when gathering completes, or after WHEP_GATHER_CAP_MS. */
  private gathered(): Promise<void> {
    const pc = this.pc;
    if (pc.iceGatheringState === 'complete') return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(cap);
        pc.removeEventListener('icegatheringstatechange', check);
        resolve();
      };
      const check = () => (pc.iceGatheringState === 'complete' || this.closed) && done();
      const cap = setTimeout(done, WHEP_GATHER_CAP_MS);
      pc.addEventListener('icegatheringstatechange', check);
    });
  }
}
