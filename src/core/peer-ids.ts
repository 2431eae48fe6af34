import { createHash, randomBytes, randomUUID } from 'node:crypto';

/**
 * Who may use which peer id when tokens are on: ids belong to identities. A token whose
 * `sub` is `carol` owns the id `carol` and every id `carol~<suffix>`, and no other; the
 * server gives a token holder who asks for no id a fresh `carol~<random>`. So another
 * identity can never take, or lock its owner out of, `carol` (docs/security.md "Peer ids").
 *
 * A `sub` that is not itself a usable id (longer than 40, or with characters outside
 * A-Z a-z 0-9 _ . : @ -, `~` included) owns `~<hash>` and `~<hash>~<suffix>` instead, where
 * `<hash>` is 16 base64url characters of its SHA-256: no plain `sub` can start with `~`,
 * and `~` appears in no plain `sub`, so no two identities' id spaces overlap.
 */
export function idNamespace(sub: string): string {
  if (/^[A-Za-z0-9_.:@-]{1,40}$/.test(sub)) return sub;
  return '~' + createHash('sha256').update(sub).digest('base64url').slice(0, 16);
}

/** True when `identity` may use `peerId` (always true in open mode). */
export function ownsPeerId(identity: string | undefined, peerId: string): boolean {
  if (identity === undefined) return true;
  const ns = idNamespace(identity);
  return peerId === ns || peerId.startsWith(ns + '~');
}

/** A fresh id: random in open mode, inside the identity's own id space with tokens. */
export function newPeerId(identity: string | undefined): string {
  if (identity === undefined) return randomUUID();
  return `${idNamespace(identity)}~${randomBytes(12).toString('base64url')}`;
}
