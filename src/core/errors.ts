/** The stable error codes of docs/protocol.md. Every protocol reports these (src/protocol/error-table.ts). */
export const ERROR_CODES = [
  'bad-request',
  'unauthorized',
  'forbidden',
  'not-found',
  'conflict',
  'room-full',
  'rate-limited',
  'too-large',
  'unavailable',
  /** The connection joined no room within HERALD_JOIN_TIMEOUT_MS. */
  'join-timeout',
  /** WHEP: the room has no broadcaster to answer a player's offer. */
  'no-broadcaster',
  /** WHEP: a request body of a content type the resource does not take. */
  'unsupported-type',
  /** WHEP: the broadcaster did not answer a player's offer in time. */
  'timeout',
  /** A server bug; logged. */
  'internal',
] as const;
export type ErrorCode = (typeof ERROR_CODES)[number];

export class HeraldError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'HeraldError';
  }
}

export const isHeraldError = (e: unknown): e is HeraldError => e instanceof HeraldError;
