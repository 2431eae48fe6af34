import { describe, expect, it } from 'vitest';
import { isSignalData } from '../../client/peer-link.js';

/** The SDK applies only signals it can use: a room may hold other apps' peers (docs/sdk.md). */
describe('isSignalData', () => {
  it('accepts a description or a candidate', () => {
    expect(isSignalData({ description: { type: 'offer', sdp: 'v=0' } })).toBe(true);
    expect(isSignalData({ candidate: { candidate: 'candidate:1 1 udp 1 127.0.0.1 9 typ host', sdpMid: '0' } })).toBe(true);
  });

  it('refuses anything else a member may signal', () => {
    for (const data of [null, undefined, 'offer', 42, [], {}, { description: 'v=0' }, { description: {} }, { description: null }, { candidate: 'c' }, { chat: 'hi' }]) {
      expect(isSignalData(data), JSON.stringify(data)).toBe(false);
    }
  });
});
