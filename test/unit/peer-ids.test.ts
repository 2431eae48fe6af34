import { describe, expect, it } from 'vitest';
import { idNamespace, newPeerId, ownsPeerId } from '../../src/core/peer-ids.js';
import { PeerId } from '../../src/protocol/json-messages.js';

describe('peer ids belong to identities', () => {
  it('a plain sub owns itself and sub~suffix, nothing else', () => {
    expect(ownsPeerId('carol', 'carol')).toBe(true);
    expect(ownsPeerId('carol', 'carol~phone')).toBe(true);
    expect(ownsPeerId('carol', 'carolx')).toBe(false);
    expect(ownsPeerId('carol', 'caro')).toBe(false);
    expect(ownsPeerId('mallory', 'carol')).toBe(false);
    expect(ownsPeerId('mallory', 'carol~phone')).toBe(false);
  });

  it('open mode (no identity) owns every id', () => {
    expect(ownsPeerId(undefined, 'carol')).toBe(true);
  });

  it('a sub that is no valid id gets a hashed space that no plain sub can reach', () => {
    for (const sub of ['auth0|12345', 'a~b', 'x'.repeat(41), 'ü']) {
      const ns = idNamespace(sub);
      expect(ns).toMatch(/^~[A-Za-z0-9_-]{16}$/);
      expect(ownsPeerId(sub, sub)).toBe(false);
      expect(ownsPeerId(sub, `${ns}~x`)).toBe(true);
    }
    // The id `a~b` is in `a`'s space; the sub `a~b` (with a '~') owns neither it nor `a`.
    expect(ownsPeerId('a', 'a~b')).toBe(true);
    expect(ownsPeerId('a~b', 'a~b')).toBe(false);
    expect(ownsPeerId('a~b', 'a')).toBe(false);
  });

  it('ids the server picks are valid peer ids inside the identity\'s space', () => {
    for (const sub of ['carol', 'x'.repeat(40), 'auth0|12345', undefined]) {
      const id = newPeerId(sub);
      expect(PeerId.safeParse(id).success).toBe(true);
      expect(ownsPeerId(sub, id)).toBe(true);
    }
  });
});
