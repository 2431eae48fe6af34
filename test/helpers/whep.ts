import type { JsonClient } from './json-client.js';

/**
 * WHEP protocol-test helpers: a minimal recvonly offer, and a JSON-protocol broadcaster that
 * answers WHEP offers the way the SDK's Broadcaster does (signal `{description: answer}`),
 * so every status can be checked without a browser.
 */

export const OFFER = [
  'v=0',
  'o=- 4611731400430051336 2 IN IP4 127.0.0.1',
  's=-',
  't=0 0',
  'a=group:BUNDLE 0',
  'm=video 9 UDP/TLS/RTP/SAVPF 96',
  'c=IN IP4 0.0.0.0',
  'a=ice-ufrag:abcd',
  'a=ice-pwd:abcdefghijklmnopqrstuvwx',
  'a=fingerprint:sha-256 00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF:00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF',
  'a=setup:actpass',
  'a=mid:0',
  'a=recvonly',
  'a=rtcp-mux',
  'a=rtpmap:96 VP8/90000',
  '',
].join('\r\n');

export const answerFor = (tag: string) => OFFER.replace('a=recvonly', 'a=sendonly').replace('a=setup:actpass', 'a=setup:passive') + `a=x-tag:${tag}\r\n`;

export const FRAG = [
  'a=ice-ufrag:abcd',
  'a=ice-pwd:abcdefghijklmnopqrstuvwx',
  'm=video 9 UDP/TLS/RTP/SAVPF 0',
  'a=mid:0',
  'a=candidate:1 1 udp 2113937151 127.0.0.1 50000 typ host',
  'a=end-of-candidates',
  '',
].join('\r\n');

/**
 * Answers the next WHEP offer `broadcaster` receives with `answerFor(tag)`; resolves to the
 * player's peer id and the offer's signal data.
 */
export async function answerNextOffer(broadcaster: JsonClient, room: string, tag: string): Promise<{ viewer: string; data: any }> {
  const offer = await broadcaster.nextWhere('signal', (m) => m.room === room && m.data?.whep === true && m.data?.description?.type === 'offer');
  broadcaster.signalNoAck(room, offer.from, { description: { type: 'answer', sdp: answerFor(tag) } });
  return { viewer: offer.from, data: offer.data };
}

export function postOffer(base: string, room: string, init: { headers?: Record<string, string>; body?: string } = {}): Promise<Response> {
  return fetch(`${base}/whep/${encodeURIComponent(room)}`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/sdp', ...init.headers },
    body: init.body ?? OFFER,
  });
}

export function patchFrag(url: string, init: { headers?: Record<string, string>; body?: string } = {}): Promise<Response> {
  return fetch(url, { method: 'PATCH', headers: { 'Content-Type': 'application/trickle-ice-sdpfrag', ...init.headers }, body: init.body ?? FRAG });
}
