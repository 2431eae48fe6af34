import { SignJWT } from 'jose';

export type TokenRole = 'broadcaster' | 'viewer' | 'peer' | 'admin';

/** A token signer for `secret`: `mint(sub, room, roles)` signs HS256, valid 10 minutes; `key` forges one with another secret. */
export function tokenMinter(secret: string) {
  return (sub: string, room: string, roles: TokenRole[], key = secret) =>
    new SignJWT({ room, roles })
      .setProtectedHeader({ alg: 'HS256' })
      .setSubject(sub)
      .setExpirationTime(Math.floor(Date.now() / 1000) + 600)
      .sign(new TextEncoder().encode(key));
}
