/** WebSocket close codes Herald uses on both protocols (docs/protocol.md lists them all). */
export const CLOSE = {
  /** Seed protocol only: server shutting down (the article's clients know nothing newer). */
  goingAway: 1001,
  badPath: 1008,
  unsupportedData: 1003,
  tooBig: 1009,
  /** JSON protocol: server restarting; reconnect (and resume) elsewhere. Preceded by `bye`. */
  restart: 1012,
  replaced: 4000,
  kicked: 4001,
  conflict: 4009,
  unauthorized: 4401,
  forbidden: 4403,
  joinTimeout: 4408,
  rateLimited: 4429,
  /** The peer let more than HERALD_MAX_SEND_BUFFER_BYTES pile up unread: treated as dead. */
  slowConsumer: 4503,
} as const;
