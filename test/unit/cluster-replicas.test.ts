import { describe, expect, it } from 'vitest';
import type { Room } from '../../src/core/room.js';
import type { LeaveReason, Member, Role } from '../../src/core/types.js';
import { Replicas } from '../../src/cluster/redis/replicas.js';

const ME = 'inst-me';
const OTHER = 'inst-other';

function member(peerId: string, role: Role = 'peer', instanceId = OTHER, joinedAt = 1): Member {
  return { peerId, role, protocol: 'json', instanceId, joinedAt };
}

/** Replicas with a recording listener: the replica logic alone, no Redis. */
function setup() {
  const log: string[] = [];
  const replicas = new Replicas(ME, {
    joined: (room: Room, m: Member) => log.push(`joined ${room.id} ${m.peerId}`),
    left: (room: Room, m: Member, reason: LeaveReason) => log.push(`left ${room.id} ${m.peerId} ${reason}`),
    dropped: (roomId: string) => log.push(`dropped ${roomId}`),
  });
  return { replicas, log };
}

describe('Replicas (ordered room copies, without Redis)', () => {
  it('a snapshot builds the replica and announces only the newcomer', () => {
    const { replicas, log } = setup();
    replicas.beginJoin('r');
    replicas.startLoading('r');
    const me = member('a', 'peer', ME);
    const replica = replicas.finishLoading('r', 5, [member('b'), me], me);
    replicas.endJoin('r');
    expect(replica.room.size).toBe(2);
    expect(replica.local).toBe(1);
    expect(log).toEqual(['joined r a']);
  });

  it('notices that arrive while the snapshot loads wait for it and apply in version order', () => {
    const { replicas, log } = setup();
    replicas.beginJoin('r');
    replicas.startLoading('r');
    replicas.receive({ type: 'joined', room: 'r', v: 7, member: member('c') });
    replicas.receive({ type: 'joined', room: 'r', v: 4, member: member('old') }); // older than the snapshot: ignored
    expect(log).toEqual([]);
    const me = member('a', 'peer', ME);
    const replica = replicas.finishLoading('r', 5, [me], me);
    replicas.endJoin('r');
    expect(replica.room.get('c')).toBeDefined();
    expect(replica.room.get('old')).toBeUndefined();
    expect(log).toEqual(['joined r a', 'joined r c']);
  });

  it('a late or duplicated notice never undoes a newer change of the same member', () => {
    const { replicas, log } = setup();
    replicas.startLoading('r');
    const replica = replicas.finishLoading('r', 1, [member('a', 'peer', ME)]);
    replicas.receive({ type: 'joined', room: 'r', v: 3, member: member('b') });
    replicas.receive({ type: 'left', room: 'r', v: 4, members: [member('b')], reason: 'left' });
    replicas.receive({ type: 'joined', room: 'r', v: 3, member: member('b') }); // duplicate, late
    replicas.receive({ type: 'left', room: 'r', v: 4, members: [member('b')], reason: 'left' }); // duplicate
    expect(replica.room.get('b')).toBeUndefined();
    expect(log).toEqual(['joined r b', 'left r b left']);
  });

  it('a member moving instance with a resume is not announced, a re-announcement is not news', () => {
    const { replicas, log } = setup();
    replicas.startLoading('r');
    const replica = replicas.finishLoading('r', 1, [member('a', 'peer', ME), member('b', 'peer', OTHER, 9)]);
    replicas.receive({ type: 'joined', room: 'r', v: 2, member: member('b', 'peer', 'inst-third', 9), moved: true });
    replicas.receive({ type: 'joined', room: 'r', v: 3, member: member('b', 'peer', 'inst-third', 9) });
    expect(replica.room.get('b')?.instanceId).toBe('inst-third');
    expect(log).toEqual([]);
  });

  it('is dropped when its last local member leaves, but kept while a join is on its way', () => {
    const { replicas, log } = setup();
    replicas.startLoading('r');
    const replica = replicas.finishLoading('r', 1, [member('a', 'peer', ME), member('b')]);
    replicas.beginJoin('r');
    replicas.applyLeave(replica, member('a', 'peer', ME), 2, 'left');
    expect(replicas.get('r')).toBe(replica);
    replicas.endJoin('r');
    expect(replicas.get('r')).toBeUndefined();
    expect(log).toEqual(['left r a left', 'dropped r']);
  });

  it('rebase keeps newer changes, takes the snapshot otherwise, and removes absent remote members when asked', () => {
    const { replicas, log } = setup();
    replicas.startLoading('r');
    const replica = replicas.finishLoading('r', 1, [member('a', 'peer', ME), member('b'), member('c')]);
    replicas.receive({ type: 'joined', room: 'r', v: 10, member: member('d') });
    log.length = 0;
    // Snapshot at 8: d's join (v 10) is newer and stays; c is gone; e is new.
    replicas.rebase(replica, 8, [member('a', 'peer', ME), member('b'), member('e')], { removeMissing: true, restart: false });
    expect(replica.room.members().map((m) => m.peerId).sort()).toEqual(['a', 'b', 'd', 'e']);
    expect(log).toEqual(['left r c instance-lost', 'joined r e']);
  });

  it('rebase with removeMissing also lets go of a local member the directory lost, saying why', () => {
    const { replicas, log } = setup();
    replicas.startLoading('r');
    const replica = replicas.finishLoading('r', 1, [member('mine', 'broadcaster', ME), member('v', 'viewer', ME)]);
    log.length = 0;
    replicas.rebase(replica, 5, [member('v', 'viewer', ME), member('theirs', 'broadcaster')], { removeMissing: true, restart: false });
    expect(replica.room.broadcaster?.peerId).toBe('theirs');
    expect(log).toEqual(['left r mine conflict', 'joined r theirs']);
  });

  it('hold() keeps every notice until release(), then applies them in arrival order', () => {
    const { replicas, log } = setup();
    replicas.startLoading('r');
    const replica = replicas.finishLoading('r', 1, [member('a', 'peer', ME)]);
    replicas.hold();
    replicas.receive({ type: 'joined', room: 'r', v: 2, member: member('b') });
    expect(replica.room.get('b')).toBeUndefined();
    replicas.release();
    expect(replica.room.get('b')).toBeDefined();
    expect(log).toEqual(['joined r b']);
  });

  it('an offline leave takes a local member out of the replica and tells its room-mates', () => {
    const { replicas, log } = setup();
    replicas.startLoading('r');
    const replica = replicas.finishLoading('r', 3, [member('a', 'peer', ME), member('x', 'peer', ME)]);
    expect(replicas.removeOffline(replica, 'a', 'closed')?.peerId).toBe('a');
    expect(replicas.removeOffline(replica, 'nobody', 'closed')).toBeUndefined();
    expect(log).toEqual(['left r a closed']);
    expect(replica.local).toBe(1);
  });
});
