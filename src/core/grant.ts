import { HeraldError } from './errors.js';
import type { Role } from './types.js';

export type GrantRole = Role | 'admin';

/** What an authenticated connection may do: who it is, which room(s), which roles. */
export interface Grant {
  sub: string;
  /** A room id, or '*' for any room. */
  room: string;
  roles: ReadonlySet<GrantRole>;
  /** Expiry, in seconds since the epoch (the token's `exp`). */
  exp?: number;
}

/** Throws HeraldError('forbidden') unless `grant` allows `role` in `room`. No grant = open mode. */
export function checkGrant(grant: Grant | undefined, room: string, role: GrantRole): void {
  if (!grant) return;
  if (grant.room !== '*' && grant.room !== room) throw new HeraldError('forbidden', `token is for room ${grant.room}, not ${room}`);
  if (!grant.roles.has(role)) throw new HeraldError('forbidden', `token does not grant the ${role} role`);
}

/** True when `grant` allows `role` in `room` (no grant = open mode). */
export function allows(grant: Grant | undefined, room: string, role: GrantRole): boolean {
  return !grant || ((grant.room === '*' || grant.room === room) && grant.roles.has(role));
}
