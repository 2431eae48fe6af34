import { describe, expect, it } from 'vitest';
import { iceServerLinks, isMediaSdp, parseSdpFrag } from '../../src/http/whep-sdp.js';
import { OFFER } from '../helpers/whep.js';

describe('WHEP SDP reading (src/http/whep-sdp.ts)', () => {
  it('tells a media offer from other text', () => {
    expect(isMediaSdp(OFFER)).toBe(true);
    expect(isMediaSdp(OFFER.replace(/\r\n/g, '\n'))).toBe(true);
    expect(isMediaSdp('')).toBe(false);
    expect(isMediaSdp('{"type":"offer"}')).toBe(false);
    expect(isMediaSdp(OFFER.replace('v=0', 'v=1'))).toBe(false);
    expect(isMediaSdp(OFFER + 'not a line\r\n')).toBe(false);
    expect(isMediaSdp(OFFER.replace('m=video', 'm=application'))).toBe(false);
  });

  it('takes the candidates out of a trickle fragment, under their section mid', () => {
    const frag = 'a=ice-ufrag:u\r\na=ice-pwd:p\r\nm=audio 9 UDP/TLS/RTP/SAVPF 0\r\na=mid:a0\r\na=candidate:1 1 udp 1 10.0.0.1 5000 typ host\r\nm=video 9 UDP/TLS/RTP/SAVPF 0\r\na=mid:v1\r\na=candidate:2 1 udp 1 10.0.0.1 5002 typ host\r\na=end-of-candidates\r\n';
    expect(parseSdpFrag(frag)).toEqual([
      { candidate: 'candidate:1 1 udp 1 10.0.0.1 5000 typ host', sdpMid: 'a0' },
      { candidate: 'candidate:2 1 udp 1 10.0.0.1 5002 typ host', sdpMid: 'v1' },
      { candidate: '', sdpMid: 'v1' },
    ]);
    // Without a=mid: the section's index.
    expect(parseSdpFrag('m=video 9 UDP/TLS/RTP/SAVPF 0\r\na=candidate:3 1 udp 1 1.2.3.4 1 typ host\r\n')).toEqual([{ candidate: 'candidate:3 1 udp 1 1.2.3.4 1 typ host', sdpMLineIndex: 0 }]);
    expect(parseSdpFrag('a=ice-ufrag:u\r\n')).toEqual([]);
    expect(parseSdpFrag('hello')).toBeUndefined();
  });

  it('writes one RFC 9725 Link per URL, credentials quoted', () => {
    expect(iceServerLinks([{ urls: 'stun:s.test' }, { urls: ['turn:t.test?transport=udp', 'turns:t.test'], username: '1:a"b', credential: 'c\\d' }])).toEqual([
      '<stun:s.test>; rel="ice-server"',
      '<turn:t.test?transport=udp>; rel="ice-server"; username="1:a\\"b"; credential="c\\\\d"; credential-type="password"',
      '<turns:t.test>; rel="ice-server"; username="1:a\\"b"; credential="c\\\\d"; credential-type="password"',
    ]);
    expect(iceServerLinks([])).toEqual([]);
  });
});
