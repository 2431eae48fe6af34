import { pino, type Logger } from 'pino';

export type { Logger };

/** Structured JSON logs. Tokens and SDP never go in: callers log ids and sizes only. */
export function createLogger(level: string): Logger {
  return pino({
    level,
    base: { service: 'herald' },
    redact: { paths: ['token', '*.token', 'req.headers.authorization', 'sdp', '*.sdp'], remove: true },
  });
}
