import { HeraldError } from './signaling.js';

/** What `send` takes: text, or bytes in any buffer or view. */
export type DataPayload = string | ArrayBuffer | ArrayBufferView;
/** What a `data` event carries: text arrives as a string, bytes as an ArrayBuffer. */
export type DataMessage = string | ArrayBuffer;

/**
 * The largest message the SDK sends in one piece. Larger ones are refused with a
 * `HeraldError('too-large')` at `send()`, never split: what a message is stays the app's call
 * (a file transfer chunks its file and numbers the chunks). 256 KiB is what Chromium's SCTP
 * offers; a peer advertising less (`pc.sctp.maxMessageSize`) lowers it.
 */
export const MAX_MESSAGE_BYTES = 256 * 1024;
/** Bytes a link holds for a channel that is not open yet or whose send buffer is full. */
export const MAX_QUEUED_BYTES = 16 * 1024 * 1024;
/** Hand the browser more only while its send buffer holds less than this. */
const HIGH_WATER = 1024 * 1024;
const LOW_WATER = 256 * 1024;

export interface DataPipeEvents {
  message(data: DataMessage): void;
  open(): void;
}

const encoder = new TextEncoder();

export function byteLength(data: DataPayload): number {
  if (typeof data !== 'string') return data.byteLength;
  // Cheap bound first: a UTF-16 unit is at most 3 UTF-8 bytes.
  return data.length * 3 <= MAX_MESSAGE_BYTES ? data.length : encoder.encode(data).byteLength;
}

/** The message's size in bytes, or HeraldError('too-large') when it is over `max`. */
export function checkSize(data: DataPayload, max = MAX_MESSAGE_BYTES): number {
  const size = byteLength(data);
  if (size > max) throw new HeraldError('too-large', `message of ${size} bytes exceeds the data channel's limit of ${max} bytes; split it`);
  return size;
}

/** A private copy of the bytes, so an app reusing its buffer cannot change a queued message. */
export function snapshot(data: DataPayload): string | ArrayBuffer {
  if (typeof data === 'string') return data;
  if (data instanceof ArrayBuffer) return data.slice(0);
  return new Uint8Array(data.buffer, data.byteOffset, data.byteLength).slice().buffer;
}

/**
 * One link's reliable, ordered data channel as the app sees it: messages sent before the
 * channel opens (or while the browser's send buffer is full) wait in order, and go out as
 * soon as it can take them. The channel lives as long as its RTCPeerConnection, so
 * renegotiation and ICE restarts do not touch it.
 */
export class DataPipe {
  private current: RTCDataChannel | undefined;
  private readonly queue: (string | ArrayBuffer)[] = [];
  private queuedBytes = 0;

  constructor(
    private readonly events: DataPipeEvents,
    /** The peer's limit once known (`pc.sctp.maxMessageSize`), else undefined. */
    private readonly peerLimit: () => number | undefined,
  ) {}

  /** The RTCDataChannel, once this side created or received it. */
  get channel(): RTCDataChannel | undefined {
    return this.current;
  }

  attach(channel: RTCDataChannel): void {
    this.current = channel;
    channel.binaryType = 'arraybuffer';
    channel.bufferedAmountLowThreshold = LOW_WATER;
    // A channel announced by `datachannel` is open already and still gets an `open` event.
    let announced = false;
    const opened = () => {
      if (announced) return;
      announced = true;
      this.flush();
      this.events.open();
    };
    channel.onopen = opened;
    channel.onbufferedamountlow = () => this.flush();
    channel.onmessage = (e) => this.events.message(e.data as DataMessage);
    if (channel.readyState === 'open') opened();
  }

  /** The largest message this link accepts now. */
  get maxMessageBytes(): number {
    const peer = this.peerLimit();
    return peer && peer > 0 ? Math.min(peer, MAX_MESSAGE_BYTES) : MAX_MESSAGE_BYTES;
  }

  /** Sends now, or queues in order; throws HeraldError('too-large') for what can never go. */
  send(data: DataPayload): void {
    const size = checkSize(data, this.maxMessageBytes);
    const channel = this.current;
    if (this.queue.length === 0 && channel?.readyState === 'open' && channel.bufferedAmount < HIGH_WATER) {
      channel.send(data as any);
      return;
    }
    if (this.queuedBytes + size > MAX_QUEUED_BYTES) {
      throw new HeraldError('too-large', `more than ${MAX_QUEUED_BYTES} bytes are waiting for the data channel`);
    }
    this.queue.push(snapshot(data));
    this.queuedBytes += size;
  }

  private flush(): void {
    const channel = this.current;
    while (this.queue.length > 0 && channel?.readyState === 'open' && channel.bufferedAmount < HIGH_WATER) {
      const next = this.queue.shift()!;
      this.queuedBytes -= byteLength(next);
      channel.send(next as any);
    }
  }
}
