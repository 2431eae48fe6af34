import { EventEmitter } from 'node:events';
import type { WebSocket } from 'ws';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { Heartbeat, heard } from '../../src/gateway/heartbeat.js';

/**
 * The heartbeat's visits, on fake timers and stand-in sockets (the real-socket behaviour is in
 * test/integration/heartbeat.test.ts): a socket that sent a message since its last visit is not
 * pinged; a silent one is, and is terminated at the next visit if it did not answer.
 */
class FakeSocket extends EventEmitter {
  readonly OPEN = 1;
  readyState = 1;
  pings = 0;
  terminated = false;
  constructor(private readonly answers: boolean) {
    super();
  }
  ping(token: Buffer): void {
    this.pings++;
    if (this.answers) this.emit('pong', Buffer.from(token));
  }
  terminate(): void {
    this.terminated = true;
    this.readyState = 3;
    this.emit('close');
  }
}

describe('Heartbeat visits', () => {
  beforeEach(() => vi.useFakeTimers());
  afterEach(() => vi.useRealTimers());

  it('does not ping a socket that talks; pings a silent one every interval; drops one that stops both', () => {
    const heartbeat = new Heartbeat(1000);
    const talker = new FakeSocket(false); // never answers a ping: only its messages keep it
    const silent = new FakeSocket(true);
    heartbeat.watch(talker as unknown as WebSocket);
    heartbeat.watch(silent as unknown as WebSocket);
    // Four intervals, with a message from the talker every half interval.
    for (let i = 0; i < 8; i++) {
      heard(talker as unknown as WebSocket);
      vi.advanceTimersByTime(500);
    }
    expect(talker.pings).toBe(0);
    expect(talker.terminated).toBe(false);
    expect(silent.pings).toBe(4);
    expect(silent.terminated).toBe(false);
    // The talker goes quiet. Its next visit still counts its last message (sent after the
    // previous visit); the one after pings it; not answering, it is dropped at the third.
    vi.advanceTimersByTime(1000);
    expect(talker.pings).toBe(0);
    vi.advanceTimersByTime(1000);
    expect(talker.pings).toBe(1);
    expect(talker.terminated).toBe(false);
    vi.advanceTimersByTime(1000);
    expect(talker.terminated).toBe(true);
    expect(silent.terminated).toBe(false);
    heartbeat.stop();
  });

  it('a message clears an unanswered ping: the socket is alive, it is not dropped', () => {
    const heartbeat = new Heartbeat(1000);
    const s = new FakeSocket(false);
    heartbeat.watch(s as unknown as WebSocket);
    vi.advanceTimersByTime(1000);
    expect(s.pings).toBe(1); // unanswered
    heard(s as unknown as WebSocket);
    vi.advanceTimersByTime(1000);
    expect(s.terminated).toBe(false);
    expect(s.pings).toBe(1); // and no ping on that visit
    vi.advanceTimersByTime(1000);
    expect(s.pings).toBe(2);
    vi.advanceTimersByTime(1000);
    expect(s.terminated).toBe(true);
    heartbeat.stop();
  });
});
