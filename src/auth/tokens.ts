import { SignJWT, jwtVerify, errors } from 'jose';
import { z } from 'zod';
import { HeraldError } from '../core/errors.js';
import type { Grant, GrantRole } from '../core/grant.js';

export type { Grant };

const Claims = z.object({
  sub: z.string().min(1).max(128),
  room: z.string().min(1).max(128),
  roles: z.array(z.enum(['broadcaster', 'viewer', 'peer', 'admin'])).min(1),
  exp: z.number(),
});

const ALG = 'HS256';

/** HS256 JWTs (jose): minted by `herald token`, checked at every WebSocket upgrade. */
export class Tokens {
  private readonly key: Uint8Array;

  constructor(secret: string) {
    this.key = new TextEncoder().encode(secret);
  }

  async mint(claims: { sub: string; room: string; roles: GrantRole[]; ttl: string | number }): Promise<string> {
    return new SignJWT({ room: claims.room, roles: claims.roles })
      .setProtectedHeader({ alg: ALG })
      .setSubject(claims.sub)
      .setIssuedAt()
      .setExpirationTime(typeof claims.ttl === 'number' ? Math.floor(Date.now() / 1000) + claims.ttl : claims.ttl)
      .sign(this.key);
  }

  /** Resolves to the grant, or throws HeraldError('unauthorized') saying why (never echoing the token). */
  async verify(token: string | undefined): Promise<Grant> {
    if (!token) throw new HeraldError('unauthorized', 'a token is required');
    let payload: unknown;
    try {
      ({ payload } = await jwtVerify(token, this.key, { algorithms: [ALG] }));
    } catch (err) {
      if (err instanceof errors.JWTExpired) throw new HeraldError('unauthorized', 'token expired');
      if (err instanceof errors.JWSSignatureVerificationFailed) throw new HeraldError('unauthorized', 'token signature is invalid');
      throw new HeraldError('unauthorized', 'token is malformed');
    }
    const claims = Claims.safeParse(payload);
    if (!claims.success) throw new HeraldError('unauthorized', `token claims are invalid (${claims.error.issues[0]!.path.join('.')})`);
    return { sub: claims.data.sub, room: claims.data.room, roles: new Set(claims.data.roles), exp: claims.data.exp };
  }
}

/** `?token=` wins over `Authorization: Bearer` (browsers can only send the former). */
export function tokenFrom(url: URL, authorization: string | undefined): string | undefined {
  const fromQuery = url.searchParams.get('token');
  if (fromQuery) return fromQuery;
  const match = /^Bearer\s+(.+)$/i.exec(authorization ?? '');
  return match?.[1];
}
