import type { Logger } from '../../observability/logger.js';

export type FaultKind = 'tls' | 'auth' | 'permission';

const HINTS: Record<FaultKind, string> = {
  tls: 'redis TLS failed: check REDIS_TLS_CA_FILE (the CA that signed the server certificate), that the certificate names the host Herald connects to, and REDIS_TLS_CERT_FILE/REDIS_TLS_KEY_FILE if the server asks for a client certificate',
  auth: 'redis refused the user or password: check REDIS_URL or REDIS_USERNAME/REDIS_PASSWORD (REDIS_SENTINEL_PASSWORD for the sentinels)',
  permission: 'the redis user may not run a command, or use a key or channel, that Herald needs (NOPERM): give it the ACL in docs/operations.md "Redis ACL"',
};

/** Which errors no retry will fix: the operator must change a certificate, a password or an ACL. */
export function faultKind(err: unknown): FaultKind | undefined {
  const code = (err as { code?: unknown } | undefined)?.code;
  const text = err instanceof Error ? err.message : String(err);
  if (/NOPERM|no permissions? to/i.test(text)) return 'permission';
  if (/WRONGPASS|NOAUTH|invalid (username-)?password/i.test(text)) return 'auth';
  if (typeof code === 'string' && /^(ERR_TLS_|ERR_SSL_|UNABLE_TO_|SELF_SIGNED|DEPTH_ZERO|CERT_|HOSTNAME_MISMATCH)/.test(code)) return 'tls';
  if (/certificate|SSL routines|wrong version number|alert (handshake|bad|unknown)/i.test(text)) return 'tls';
  return undefined;
}

/**
 * The Redis errors an operator has to act on, logged at error level with what to check,
 * once per distinct error until Redis works again: an instance that cannot verify the
 * server, log in, or run its commands says so plainly (and stays not-ready: /readyz 503),
 * instead of retrying in silence.
 */
export class Faults {
  private readonly told = new Set<string>();

  constructor(private readonly log: Logger | undefined) {}

  /** Logs `err` if it is an operator's fault; returns whether it was. */
  report(err: unknown, where: string): boolean {
    const kind = faultKind(err);
    if (!kind) return false;
    const text = err instanceof Error ? err.message : String(err);
    const key = `${kind}:${text}`;
    if (!this.told.has(key)) {
      this.told.add(key);
      this.log?.error({ err: text, redis: where, fault: kind }, HINTS[kind]);
    }
    return true;
  }

  /** A master was demoted under this instance's connections (READONLY). */
  demoted(where: string): void {
    this.log?.warn({ redis: where }, 'redis answered READONLY (the master was demoted): reconnecting both connections to the current master');
  }

  /** Sentinel mode: the command connection reached another master than the subscriber is on. */
  moved(where: string): void {
    this.log?.warn({ redis: where }, 'the master changed: moving the subscriber connection to it');
  }

  /** Redis works: the same fault, if it comes back, is logged again. */
  clear(): void {
    this.told.clear();
  }
}
