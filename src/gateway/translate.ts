import type { Payload } from '../core/types.js';

/**
 * Translation between the two protocols' signal forms, used only when a seed peer and a
 * JSON peer talk to each other. The JSON form is the SDK's:
 * `{description: RTCSessionDescriptionInit}` or `{candidate: RTCIceCandidateInit}`;
 * anything else a seed client sends travels as `{seed: {type, value}}`.
 */

export interface SeedFrame {
  type: string;
  value: string;
}

export function toSeed(payload: Payload): SeedFrame {
  if (payload.kind === 'seed') return payload;
  // PeerJS peers share no rooms with the others; should one ever meet them, nothing is lost.
  if (payload.kind === 'peerjs') return { type: payload.type, value: payload.payload ?? '' };
  // y-webrtc publishes travel as fan-outs, never as signals; kept whole should one ever be relayed.
  if (payload.kind === 'ywebrtc') return { type: 'data', value: payload.text };
  const data = payload.data as Record<string, any> | null;
  if (data && typeof data === 'object') {
    const d = data.description;
    if (d && typeof d === 'object' && typeof d.type === 'string' && typeof d.sdp === 'string') {
      return { type: d.type, value: d.sdp };
    }
    if ('candidate' in data && data.candidate && typeof data.candidate === 'object') {
      return { type: 'candid', value: JSON.stringify(data.candidate) };
    }
    const s = data.seed;
    if (s && typeof s === 'object' && typeof s.type === 'string' && typeof s.value === 'string') {
      return { type: s.type, value: s.value };
    }
  }
  return { type: 'data', value: JSON.stringify(payload.data) };
}

export function toJsonData(payload: Payload): unknown {
  if (payload.kind === 'json') return payload.data;
  if (payload.kind === 'peerjs') return { peerjs: { type: payload.type, payload: payload.payload } };
  if (payload.kind === 'ywebrtc') return { ywebrtc: payload.text };
  const { type, value } = payload;
  if (type === 'offer' || type === 'answer') return { description: { type, sdp: value } };
  if (type === 'candid') {
    try {
      return { candidate: JSON.parse(value) };
    } catch {
      // not a candidate after all: pass it through as-is
    }
  }
  return { seed: { type, value } };
}
