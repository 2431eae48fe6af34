import type { ErrorCode } from '../core/errors.js';

/**
 * How each error code looks on every wire, in one place so the protocols cannot drift
 * (docs/protocol.md "Error table"):
 * - JSON: `{type:"error", code}` with the code itself;
 * - seed: `error|<seed>|<message>`;
 * - PeerJS: `{type:"ERROR", payload:{msg}}`, or `ID-TAKEN` for a held id;
 * - `close`: the close code when the error ends the connection;
 * - `http`: the status of a refused seed upgrade or an HTTP route;
 * - `whep`: the WHEP resource's status where it differs from `http` (draft-ietf-wish-whep:
 *   players retry a full server on 503, not 409);
 * - `retryAfter`: seconds for the `Retry-After` of an HTTP answer (WHEP), when retrying makes sense.
 */
export interface ErrorForms {
  seed: string;
  peerjs: 'ERROR' | 'ID-TAKEN';
  close: number;
  http: [number, string];
  whep?: number;
  retryAfter?: number;
}

export const ERROR_TABLE: Readonly<Record<ErrorCode, ErrorForms>> = {
  // The article's clients know `bad-frame`; a seed `not-found` is sharpened by the adapter
  // to `no-such-peer` (sender) or `no-sender` (reader).
  'bad-request': { seed: 'bad-frame', peerjs: 'ERROR', close: 4400, http: [400, 'Bad Request'] },
  unauthorized: { seed: 'unauthorized', peerjs: 'ERROR', close: 4401, http: [401, 'Unauthorized'] },
  forbidden: { seed: 'forbidden', peerjs: 'ERROR', close: 4403, http: [403, 'Forbidden'] },
  'not-found': { seed: 'no-such-peer', peerjs: 'ERROR', close: 4404, http: [404, 'Not Found'] },
  conflict: { seed: 'conflict', peerjs: 'ID-TAKEN', close: 4009, http: [409, 'Conflict'] },
  'room-full': { seed: 'room-full', peerjs: 'ERROR', close: 4009, http: [409, 'Conflict'], whep: 503, retryAfter: 10 },
  'rate-limited': { seed: 'rate-limited', peerjs: 'ERROR', close: 4429, http: [429, 'Too Many Requests'] },
  'too-large': { seed: 'too-large', peerjs: 'ERROR', close: 1009, http: [413, 'Payload Too Large'] },
  // Try again, elsewhere: a draining server or an unreachable cluster.
  unavailable: { seed: 'unavailable', peerjs: 'ERROR', close: 1012, http: [503, 'Service Unavailable'], retryAfter: 5 },
  'join-timeout': { seed: 'join-timeout', peerjs: 'ERROR', close: 4408, http: [408, 'Request Timeout'] },
  // WHEP only (src/http/whep.ts): no broadcaster to answer, a wrong body type, no answer in time.
  'no-broadcaster': { seed: 'no-sender', peerjs: 'ERROR', close: 4404, http: [409, 'Conflict'], retryAfter: 5 },
  'unsupported-type': { seed: 'bad-frame', peerjs: 'ERROR', close: 4400, http: [415, 'Unsupported Media Type'] },
  timeout: { seed: 'timeout', peerjs: 'ERROR', close: 4408, http: [504, 'Gateway Timeout'] },
  internal: { seed: 'internal', peerjs: 'ERROR', close: 1011, http: [500, 'Internal Server Error'] },
};

export const closeCodeOf = (code: ErrorCode): number => ERROR_TABLE[code].close;
export const httpStatusOf = (code: ErrorCode): [number, string] => ERROR_TABLE[code].http;
export const seedCodeOf = (code: ErrorCode): string => ERROR_TABLE[code].seed;

/** The status a WHEP resource answers `code` with. */
export const whepStatusOf = (code: ErrorCode): number => ERROR_TABLE[code].whep ?? ERROR_TABLE[code].http[0];
