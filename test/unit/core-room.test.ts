import { describe, expect, it } from 'vitest';
import { HeraldError } from '../../src/core/errors.js';
import { Room, checkAdmission } from '../../src/core/room.js';
import { ROLES, hears, maySignal, type Member, type Role } from '../../src/core/types.js';

const member = (peerId: string, role: Role): Member => ({
  peerId,
  role,
  protocol: 'json',
  instanceId: 'i1',
  joinedAt: 0,
});

const ids = (members: Iterable<Member>) => [...members].map((m) => m.peerId).sort();

function codeOf(fn: () => void): string | undefined {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(HeraldError);
    return (err as HeraldError).code;
  }
  return undefined;
}

describe('maySignal / hears', () => {
  it('follows the role matrix of docs/protocol.md §2', () => {
    const allowed = new Set(['broadcaster>viewer', 'viewer>broadcaster', 'peer>peer']);
    for (const from of ROLES) {
      for (const to of ROLES) expect(maySignal(from, to), `${from}>${to}`).toBe(allowed.has(`${from}>${to}`));
    }
  });

  it('a member hears about exactly the members it may talk to; viewers hear the broadcaster', () => {
    const heard = new Set(['viewer<broadcaster', 'broadcaster<viewer', 'peer<peer']);
    for (const listener of ROLES) {
      for (const subject of ROLES) {
        expect(hears(listener, subject), `${listener}<${subject}`).toBe(heard.has(`${listener}<${subject}`));
      }
    }
  });
});

describe('Room', () => {
  it('stores each role in its own place and finds any member by id', () => {
    const room = new Room('r');
    expect(room.size).toBe(0);
    room.put(member('b', 'broadcaster'));
    room.put(member('v1', 'viewer'));
    room.put(member('v2', 'viewer'));
    room.put(member('p1', 'peer'));
    expect(room.size).toBe(4);
    expect(room.broadcaster?.peerId).toBe('b');
    expect(ids(room.viewers.values())).toEqual(['v1', 'v2']);
    expect(ids(room.peers.values())).toEqual(['p1']);
    expect(room.get('b')?.role).toBe('broadcaster');
    expect(room.get('v2')?.role).toBe('viewer');
    expect(room.get('p1')?.role).toBe('peer');
    expect(room.get('nobody')).toBeUndefined();
    expect(room.members()[0]?.peerId).toBe('b');
    expect(ids(room.members())).toEqual(['b', 'p1', 'v1', 'v2']);
  });

  it('put replaces a member: one role per peer, size unchanged', () => {
    const room = new Room('r');
    room.put(member('x', 'viewer'));
    room.put(member('x', 'broadcaster'));
    expect(room.size).toBe(1);
    expect(room.viewers.size).toBe(0);
    expect(room.broadcaster?.peerId).toBe('x');
    room.put(member('x', 'peer'));
    expect(room.size).toBe(1);
    expect(room.broadcaster).toBeUndefined();
    expect(room.get('x')?.role).toBe('peer');
    const again = member('x', 'peer');
    room.put(again);
    expect(room.get('x')).toBe(again);
    expect(room.size).toBe(1);
  });

  it('remove returns the removed member of any role, or undefined', () => {
    const room = new Room('r');
    const b = member('b', 'broadcaster');
    const v = member('v', 'viewer');
    const p = member('p', 'peer');
    room.put(b);
    room.put(v);
    room.put(p);
    expect(room.remove('nobody')).toBeUndefined();
    expect(room.remove('v')).toBe(v);
    expect(room.remove('v')).toBeUndefined();
    expect(room.remove('b')).toBe(b);
    expect(room.broadcaster).toBeUndefined();
    expect(room.remove('p')).toBe(p);
    expect(room.size).toBe(0);
    expect(room.members()).toEqual([]);
  });

  describe('listenersOf', () => {
    const full = () => {
      const room = new Room('r');
      room.put(member('b', 'broadcaster'));
      for (const v of ['v1', 'v2', 'v3']) room.put(member(v, 'viewer'));
      for (const p of ['p1', 'p2']) room.put(member(p, 'peer'));
      return room;
    };

    it('a viewer is heard by the broadcaster only, never by other viewers', () => {
      const room = full();
      expect(ids(room.listenersOf(room.get('v1')!))).toEqual(['b']);
    });

    it('a viewer with no broadcaster is heard by nobody', () => {
      const room = new Room('r');
      room.put(member('v1', 'viewer'));
      room.put(member('v2', 'viewer'));
      expect(ids(room.listenersOf(room.get('v1')!))).toEqual([]);
    });

    it('the broadcaster is heard by every viewer, not by mesh peers', () => {
      const room = full();
      expect(ids(room.listenersOf(room.get('b')!))).toEqual(['v1', 'v2', 'v3']);
    });

    it('a mesh peer is heard by the other peers, not by itself', () => {
      const room = full();
      room.put(member('p3', 'peer'));
      expect(ids(room.listenersOf(room.get('p1')!))).toEqual(['p2', 'p3']);
    });

    it('works for a member already removed (the leave notice is computed after removal)', () => {
      const room = full();
      const gone = room.remove('b')!;
      expect(ids(room.listenersOf(gone))).toEqual(['v1', 'v2', 'v3']);
      const viewer = room.remove('v1')!;
      expect(ids(room.listenersOf(viewer))).toEqual([]);
    });

    it('tolerates members leaving while the listeners are iterated', () => {
      const room = full();
      const seen: string[] = [];
      for (const listener of room.listenersOf(member('b', 'broadcaster'))) {
        seen.push(listener.peerId);
        room.remove(listener.peerId);
      }
      expect(seen.sort()).toEqual(['v1', 'v2', 'v3']);
      expect(room.viewers.size).toBe(0);
    });
  });
});

describe('checkAdmission', () => {
  it('admits anyone to a room that does not exist yet', () => {
    expect(codeOf(() => checkAdmission(undefined, member('b', 'broadcaster'), 1))).toBeUndefined();
  });

  it('allows one broadcaster per room, but lets the same one join again', () => {
    const room = new Room('r');
    room.put(member('b', 'broadcaster'));
    expect(codeOf(() => checkAdmission(room, member('b2', 'broadcaster'), 0))).toBe('conflict');
    expect(codeOf(() => checkAdmission(room, member('b', 'broadcaster'), 0))).toBeUndefined();
    expect(codeOf(() => checkAdmission(room, member('v', 'viewer'), 0))).toBeUndefined();
  });

  it('a present viewer may not become a second broadcaster', () => {
    const room = new Room('r');
    room.put(member('b', 'broadcaster'));
    room.put(member('v', 'viewer'));
    expect(codeOf(() => checkAdmission(room, member('v', 'broadcaster'), 0))).toBe('conflict');
  });

  it('caps the member count for newcomers only; 0 means no cap', () => {
    const room = new Room('r');
    room.put(member('a', 'peer'));
    room.put(member('b', 'peer'));
    expect(codeOf(() => checkAdmission(room, member('c', 'peer'), 2))).toBe('room-full');
    expect(codeOf(() => checkAdmission(room, member('c', 'peer'), 3))).toBeUndefined();
    expect(codeOf(() => checkAdmission(room, member('a', 'peer'), 2))).toBeUndefined();
    expect(codeOf(() => checkAdmission(room, member('c', 'peer'), 0))).toBeUndefined();
  });
});
