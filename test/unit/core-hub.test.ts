import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { MemoryCluster } from '../../src/cluster/memory.js';
import { HeraldError } from '../../src/core/errors.js';
import type { Grant } from '../../src/core/grant.js';
import { Hub, type HubObserver, type HubOptions } from '../../src/core/hub.js';
import type { LeaveReason, Member, Payload, PeerEvent, Protocol, Role, Session } from '../../src/core/types.js';

/** A session that records what the core pushes to it. No sockets. */
class FakeSession implements Session {
  readonly events: PeerEvent[] = [];
  closedWith: { code: number; reason: string } | undefined;
  constructor(readonly protocol: Protocol = 'json') {}
  deliver(event: PeerEvent): void {
    this.events.push(event);
  }
  close(code: number, reason: string): void {
    this.closedWith = { code, reason };
  }
  /** Events of one type, consumed. */
  take<T extends PeerEvent['type']>(type: T): Extract<PeerEvent, { type: T }>[] {
    const hit = this.events.filter((e) => e.type === type) as Extract<PeerEvent, { type: T }>[];
    for (const e of hit) this.events.splice(this.events.indexOf(e), 1);
    return hit;
  }
}

const DEFAULTS: HubOptions = { maxPeersPerRoom: 0, maxRoomsPerPeer: 0, resumeGraceMs: 0, resumeQueueMax: 4 };
const seed = (value: string): Payload => ({ kind: 'seed', type: 'offer', value });
const json = (data: unknown): Payload => ({ kind: 'json', data });
const grant = (sub: string): Grant => ({ sub, room: '*', roles: new Set(['broadcaster', 'viewer', 'peer']) });

async function rejects(work: Promise<unknown> | (() => unknown)): Promise<string> {
  try {
    await (typeof work === 'function' ? work() : work);
  } catch (err) {
    expect(err).toBeInstanceOf(HeraldError);
    return (err as HeraldError).code;
  }
  throw new Error('expected a HeraldError');
}

describe('Hub', () => {
  let cluster: MemoryCluster;
  let hub: Hub;
  let observer: Required<HubObserver> & { log: string[] };

  const make = async (options: Partial<HubOptions> = {}) => {
    cluster = new MemoryCluster();
    observer = {
      log: [],
      joined: (m: Member) => observer.log.push(`joined ${m.peerId}`),
      left: (m: Member, r: LeaveReason) => observer.log.push(`left ${m.peerId} ${r}`),
      relayed: () => observer.log.push('relayed'),
    };
    hub = new Hub(cluster, { ...DEFAULTS, ...options }, observer);
    await cluster.start(hub);
  };

  /** Connects `peerId` and joins it to `roomId` as `role`. */
  const enter = async (peerId: string, roomId: string, role: Role, session = new FakeSession()) => {
    await hub.connect(peerId, session);
    await hub.join(peerId, roomId, role);
    return session;
  };

  beforeEach(() => make());
  afterEach(() => {
    vi.useRealTimers();
  });

  describe('connect', () => {
    it('registers a peer with a resume token and no rooms', async () => {
      const c = await hub.connect('a', new FakeSession());
      expect(c.peerId).toBe('a');
      expect(c.resumeToken).toMatch(/^[\w-]{16,}$/);
      expect(c.rooms.size).toBe(0);
      expect(hub.peerCount).toBe(1);
      const d = await hub.connect('b', new FakeSession());
      expect(d.resumeToken).not.toBe(c.resumeToken);
      expect(hub.peerCount).toBe(2);
    });

    it('replace-on-reconnect: the old session is closed with 4000 and the rooms carry over', async () => {
      const b = await enter('b', 'r', 'broadcaster');
      const old = await enter('v', 'r', 'viewer');
      b.events.length = 0;
      const fresh = new FakeSession();
      const c = await hub.connect('v', fresh);
      expect(old.closedWith).toEqual({ code: 4000, reason: 'replaced' });
      expect([...c.rooms]).toEqual([['r', 'viewer']]);
      expect(hub.peerCount).toBe(2);

      hub.signal('b', 'r', 'v', seed('x'));
      expect(fresh.take('signal')).toHaveLength(1);
      expect(old.events).toEqual([]);

      // The old session's close arrives late: it must not take the peer out of the room.
      hub.disconnect('v', old, false);
      expect(hub.peerCount).toBe(2);
      expect(cluster.room('r')?.get('v')).toBeDefined();
      expect(b.events).toEqual([]);
    });

    it('another identity may not take a held peer id; the same identity may', async () => {
      const alice = grant('alice');
      const first = new FakeSession();
      await hub.connect('p', first, alice);
      expect(await rejects(hub.connect('p', new FakeSession(), grant('mallory')))).toBe('conflict');
      expect(await rejects(hub.connect('p', new FakeSession()))).toBe('conflict');
      expect(first.closedWith).toBeUndefined();
      const second = new FakeSession();
      await hub.connect('p', second, alice);
      expect(first.closedWith?.code).toBe(4000);
    });

    it('an open-mode peer id cannot be taken by an authenticated identity', async () => {
      const first = new FakeSession();
      await hub.connect('p', first);
      expect(await rejects(hub.connect('p', new FakeSession(), grant('alice')))).toBe('conflict');
      expect(first.closedWith).toBeUndefined();
    });
  });

  describe('join and leave', () => {
    it('a viewer joining is announced to the broadcaster only', async () => {
      const b = await enter('b', 'r', 'broadcaster');
      const v1 = await enter('v1', 'r', 'viewer');
      const v2 = await enter('v2', 'r', 'viewer');
      expect(b.take('peer-joined').map((e) => [e.room, e.member.peerId, e.member.role])).toEqual([
        ['r', 'v1', 'viewer'],
        ['r', 'v2', 'viewer'],
      ]);
      expect(v1.events).toEqual([]);
      expect(v2.events).toEqual([]);
      expect(observer.log).toEqual(['joined b', 'joined v1', 'joined v2']);
    });

    it('a broadcaster arriving after its viewers is announced to each of them', async () => {
      const v1 = await enter('v1', 'r', 'viewer');
      const v2 = await enter('v2', 'r', 'viewer');
      const b = await enter('b', 'r', 'broadcaster');
      for (const v of [v1, v2]) {
        expect(v.take('peer-joined').map((e) => e.member.peerId)).toEqual(['b']);
      }
      expect(b.events).toEqual([]);
      const room = cluster.room('r')!;
      expect([...room.viewers.keys()].sort()).toEqual(['v1', 'v2']);
    });

    it('mesh peers hear each other', async () => {
      const a = await enter('a', 'm', 'peer');
      const b = await enter('b', 'm', 'peer');
      const c = await enter('c', 'm', 'peer');
      expect(a.take('peer-joined').map((e) => e.member.peerId)).toEqual(['b', 'c']);
      expect(b.take('peer-joined').map((e) => e.member.peerId)).toEqual(['c']);
      expect(c.events).toEqual([]);
    });

    it('a join storm costs one notice per viewer, all to the broadcaster', async () => {
      const b = await enter('b', 'r', 'broadcaster');
      const viewers: FakeSession[] = [];
      for (let i = 0; i < 200; i++) viewers.push(await enter(`v${i}`, 'r', 'viewer'));
      expect(b.take('peer-joined')).toHaveLength(200);
      expect(viewers.every((v) => v.events.length === 0)).toBe(true);
    });

    it('refuses a second broadcaster with conflict, and lets the first join again', async () => {
      await enter('b', 'r', 'broadcaster');
      await hub.connect('b2', new FakeSession());
      expect(await rejects(hub.join('b2', 'r', 'broadcaster'))).toBe('conflict');
      expect(cluster.room('r')?.get('b2')).toBeUndefined();
      await hub.join('b', 'r', 'broadcaster');
      expect(cluster.room('r')?.broadcaster?.peerId).toBe('b');
    });

    it('caps members per room with room-full', async () => {
      await make({ maxPeersPerRoom: 2 });
      await enter('a', 'r', 'peer');
      await enter('b', 'r', 'peer');
      await hub.connect('c', new FakeSession());
      expect(await rejects(hub.join('c', 'r', 'peer'))).toBe('room-full');
      await hub.join('a', 'r', 'peer'); // a member may join again at the cap
      expect(cluster.room('r')?.size).toBe(2);
    });

    it('caps rooms per peer with forbidden', async () => {
      await make({ maxRoomsPerPeer: 2 });
      await enter('a', 'r1', 'peer');
      await hub.join('a', 'r2', 'peer');
      expect(await rejects(hub.join('a', 'r3', 'peer'))).toBe('forbidden');
      await hub.join('a', 'r2', 'peer');
      await hub.leave('a', 'r1');
      await hub.join('a', 'r3', 'peer');
      expect(cluster.room('r3')?.get('a')).toBeDefined();
    });

    it('refuses to join a peer that is not connected', async () => {
      expect(await rejects(hub.join('ghost', 'r', 'viewer'))).toBe('not-found');
      expect(cluster.room('r')).toBeUndefined();
    });

    it('leave tells the listeners with reason "left" and empties the room', async () => {
      const b = await enter('b', 'r', 'broadcaster');
      const v = await enter('v', 'r', 'viewer');
      b.events.length = 0;
      expect(await hub.leave('v', 'r')).toBe(true);
      expect(b.take('peer-left').map((e) => [e.member.peerId, e.reason])).toEqual([['v', 'left']]);
      expect(v.events).toEqual([]); // it asked: no 'removed' notice
      expect(await hub.leave('v', 'r')).toBe(false);
      expect(await hub.leave('nobody', 'r')).toBe(false);
      await hub.leave('b', 'r');
      expect(cluster.room('r')).toBeUndefined();
      expect(await cluster.listRooms()).toEqual([]);
    });

    it('a join that races with the peer going away is undone', async () => {
      const b = await enter('b', 'r', 'broadcaster');
      let open!: () => void;
      const gate = new Promise<void>((resolve) => (open = resolve));
      const join = cluster.join.bind(cluster);
      cluster.join = async (...args) => {
        await gate;
        return join(...args);
      };
      const session = new FakeSession();
      await hub.connect('v', session);
      const joining = hub.join('v', 'r', 'viewer');
      hub.disconnect('v', session, false);
      open();
      expect(await rejects(joining)).toBe('not-found');
      expect(cluster.room('r')?.get('v')).toBeUndefined();
      expect(cluster.room('r')?.size).toBe(1);
      expect(hub.peerCount).toBe(1);
      // The broadcaster may have seen it come and go, but is left with no such viewer.
      const joined = b.take('peer-joined').length;
      expect(b.take('peer-left').length).toBe(joined);
    });
  });

  describe('signal', () => {
    it('relays broadcaster -> viewer and viewer -> broadcaster with room, sender and role', async () => {
      const b = await enter('b', 'r', 'broadcaster');
      const v = await enter('v', 'r', 'viewer');
      b.events.length = 0;
      hub.signal('b', 'r', 'v', seed('sdp'));
      expect(v.events).toEqual([{ type: 'signal', room: 'r', from: 'b', fromRole: 'broadcaster', payload: seed('sdp') }]);
      hub.signalBroadcaster('v', 'r', json({ answer: 1 }));
      expect(b.events).toEqual([{ type: 'signal', room: 'r', from: 'v', fromRole: 'viewer', payload: json({ answer: 1 }) }]);
      expect(observer.log.filter((l) => l === 'relayed')).toHaveLength(2);
    });

    it('enforces who may signal whom', async () => {
      await enter('b', 'r', 'broadcaster');
      const v1 = await enter('v1', 'r', 'viewer');
      const v2 = await enter('v2', 'r', 'viewer');
      const p = await enter('p', 'r', 'peer');
      expect(await rejects(() => hub.signal('v1', 'r', 'v2', seed('x')))).toBe('forbidden');
      expect(await rejects(() => hub.signal('p', 'r', 'v1', seed('x')))).toBe('forbidden');
      expect(await rejects(() => hub.signal('b', 'r', 'p', seed('x')))).toBe('forbidden');
      expect(await rejects(() => hub.signal('b', 'r', 'b', seed('x')))).toBe('forbidden');
      expect(v1.take('signal')).toEqual([]);
      expect(v2.take('signal')).toEqual([]);
      expect(p.take('signal')).toEqual([]);
      expect(observer.log).not.toContain('relayed');
    });

    it('refuses a sender that is not in the room, and an unknown target', async () => {
      await enter('b', 'r', 'broadcaster');
      const v = await enter('v', 'other', 'viewer');
      expect(await rejects(() => hub.signal('b', 'r', 'v', seed('x')))).toBe('not-found');
      expect(await rejects(() => hub.signal('v', 'r', 'b', seed('x')))).toBe('forbidden');
      expect(await rejects(() => hub.signal('b', 'nowhere', 'v', seed('x')))).toBe('forbidden');
      expect(v.events).toEqual([]);
    });

    it('signalBroadcaster without a broadcaster is not-found', async () => {
      const v = await enter('v', 'r', 'viewer');
      expect(await rejects(() => hub.signalBroadcaster('v', 'r', seed('x')))).toBe('not-found');
      expect(v.events).toEqual([]);
    });
  });

  describe('disconnect', () => {
    it('without resume: leaves every room at once, listeners get peer-left "closed"', async () => {
      const b = await enter('b', 'r', 'broadcaster');
      const v = await enter('v', 'r', 'viewer');
      const p1 = await enter('p1', 'm', 'peer');
      await hub.join('v', 'm', 'peer');
      b.events.length = 0;
      p1.events.length = 0;
      hub.disconnect('v', v, false);
      expect(hub.peerCount).toBe(2);
      expect(b.take('peer-left').map((e) => [e.room, e.member.peerId, e.reason])).toEqual([['r', 'v', 'closed']]);
      expect(p1.take('peer-left').map((e) => [e.room, e.member.peerId, e.reason])).toEqual([['m', 'v', 'closed']]);
      expect(observer.log).toContain('left v closed');
    });

    it('a broadcaster leaving is told to every viewer', async () => {
      const b = await enter('b', 'r', 'broadcaster');
      const viewers = [await enter('v1', 'r', 'viewer'), await enter('v2', 'r', 'viewer')];
      hub.disconnect('b', b, false);
      for (const v of viewers) {
        expect(v.take('peer-left').map((e) => [e.member.peerId, e.member.role, e.reason])).toEqual([
          ['b', 'broadcaster', 'closed'],
        ]);
      }
      expect(cluster.room('r')?.broadcaster).toBeUndefined();
    });

    it('a peer with no rooms leaves nothing behind', async () => {
      const s = new FakeSession();
      await hub.connect('x', s);
      hub.disconnect('x', s, true);
      expect(hub.peerCount).toBe(0);
      expect(await cluster.listRooms()).toEqual([]);
    });

    it('an unknown or stale session is ignored', async () => {
      const s = await enter('x', 'r', 'peer');
      hub.disconnect('x', new FakeSession(), false);
      hub.disconnect('nobody', s, false);
      expect(hub.peerCount).toBe(1);
      expect(cluster.room('r')?.get('x')).toBeDefined();
    });
  });

  describe('resume', () => {
    beforeEach(() => make({ resumeGraceMs: 1000, resumeQueueMax: 3 }));

    it('a resumable peer keeps its rooms, and gets what was sent meanwhile in order', async () => {
      const b = await enter('b', 'r', 'broadcaster');
      const v = new FakeSession();
      const { resumeToken } = await hub.connect('v', v);
      await hub.join('v', 'r', 'viewer');
      b.events.length = 0;
      hub.disconnect('v', v, true);
      expect(b.events).toEqual([]); // nobody is told yet
      expect(cluster.room('r')?.get('v')).toBeDefined();
      hub.signal('b', 'r', 'v', seed('1'));
      hub.signal('b', 'r', 'v', seed('2'));
      expect(v.events).toEqual([]);

      const back = new FakeSession();
      const c = hub.resume(resumeToken, back);
      expect(c?.peerId).toBe('v');
      expect([...c!.rooms.keys()]).toEqual(['r']);
      expect(back.take('signal').map((e) => (e.payload as { value: string }).value)).toEqual(['1', '2']);
      hub.signal('b', 'r', 'v', seed('3'));
      expect(back.take('signal')).toHaveLength(1);
      expect(b.events).toEqual([]);
    });

    it('an unknown token, or another identity, does not resume', async () => {
      const alice = grant('alice');
      const s = new FakeSession();
      const { resumeToken } = await hub.connect('v', s, alice);
      await hub.join('v', 'r', 'viewer');
      hub.disconnect('v', s, true);
      expect(hub.resume('nope', new FakeSession())).toBeUndefined();
      expect(hub.resume(resumeToken, new FakeSession(), grant('mallory'))).toBeUndefined();
      expect(hub.resume(resumeToken, new FakeSession())).toBeUndefined();
      expect(hub.resume(resumeToken, new FakeSession(), alice)?.peerId).toBe('v');
    });

    it('a full queue bounces further signals to their sender as expired', async () => {
      const b = await enter('b', 'r', 'broadcaster');
      const v = await enter('v', 'r', 'viewer');
      b.events.length = 0;
      hub.disconnect('v', v, true);
      for (let i = 0; i < 4; i++) hub.signal('b', 'r', 'v', seed(String(i)));
      expect(b.take('expired')).toEqual([{ type: 'expired', room: 'r', to: 'v' }]);
    });

    it('many overflowing signals tell their sender once, and membership notices are never dropped', async () => {
      const b = await enter('b', 'r', 'broadcaster');
      const v = new FakeSession();
      const { resumeToken } = await hub.connect('v', v);
      await hub.join('v', 'r', 'viewer');
      b.events.length = 0;
      hub.disconnect('v', v, true);
      for (let i = 0; i < 20; i++) hub.signal('b', 'r', 'v', seed(String(i)));
      expect(b.take('expired')).toEqual([{ type: 'expired', room: 'r', to: 'v' }]);
      // The broadcaster leaves and comes back while v is away: v must hear both on resume.
      await hub.leave('b', 'r');
      await hub.join('b', 'r', 'broadcaster');
      const back = new FakeSession();
      hub.resume(resumeToken, back);
      expect(back.take('signal')).toHaveLength(3); // resumeQueueMax in this block
      expect(back.take('peer-left').map((e) => e.member.peerId)).toEqual(['b']);
      expect(back.take('peer-joined').map((e) => e.member.peerId)).toEqual(['b']);
    });

    it('when the grace runs out the peer leaves with "timeout" and senders of queued signals are told once', async () => {
      vi.useFakeTimers();
      const b = await enter('b', 'r', 'broadcaster');
      const v = await enter('v', 'r', 'viewer');
      b.events.length = 0;
      hub.disconnect('v', v, true);
      hub.signal('b', 'r', 'v', seed('1'));
      hub.signal('b', 'r', 'v', seed('2'));
      await vi.advanceTimersByTimeAsync(999);
      expect(hub.peerCount).toBe(2);
      expect(b.events).toEqual([]);
      await vi.advanceTimersByTimeAsync(1);
      expect(b.take('expired')).toEqual([{ type: 'expired', room: 'r', to: 'v' }]);
      expect(b.take('peer-left').map((e) => [e.member.peerId, e.reason])).toEqual([['v', 'timeout']]);
      expect(hub.peerCount).toBe(1);
    });

    it('a resume before the grace runs out cancels the timeout', async () => {
      vi.useFakeTimers();
      const b = await enter('b', 'r', 'broadcaster');
      const v = new FakeSession();
      const { resumeToken } = await hub.connect('v', v);
      await hub.join('v', 'r', 'viewer');
      b.events.length = 0;
      hub.disconnect('v', v, true);
      await vi.advanceTimersByTimeAsync(500);
      expect(hub.resume(resumeToken, new FakeSession())).toBeDefined();
      await vi.advanceTimersByTimeAsync(5000);
      expect(b.events).toEqual([]);
      expect(hub.peerCount).toBe(2);
    });

    it('a plain reconnect (no token) of a detached peer keeps its rooms but expires its queue', async () => {
      const b = await enter('b', 'r', 'broadcaster');
      const v = await enter('v', 'r', 'viewer');
      b.events.length = 0;
      hub.disconnect('v', v, true);
      hub.signal('b', 'r', 'v', seed('lost'));
      const fresh = new FakeSession();
      const c = await hub.connect('v', fresh);
      expect([...c.rooms.keys()]).toEqual(['r']);
      expect(fresh.events).toEqual([]);
      expect(b.take('expired')).toEqual([{ type: 'expired', room: 'r', to: 'v' }]);
    });
  });

  describe('operator and cluster actions', () => {
    it('kick removes the peer, tells it "removed" and tells the listeners "kicked"', async () => {
      const b = await enter('b', 'r', 'broadcaster');
      const v = await enter('v', 'r', 'viewer');
      b.events.length = 0;
      expect(await hub.kick('r', 'v')).toBe(true);
      expect(v.take('removed')).toEqual([{ type: 'removed', room: 'r', reason: 'kicked' }]);
      expect(b.take('peer-left').map((e) => [e.member.peerId, e.reason])).toEqual([['v', 'kicked']]);
      expect(await hub.kick('r', 'v')).toBe(false);
      // It is no longer in the room: leaving again is a no-op.
      expect(await hub.leave('v', 'r')).toBe(false);
      expect(hub.peerCount).toBe(2);
    });

    it('peerTaken closes the local session with 4000 and forgets the peer', async () => {
      const s = await enter('v', 'r', 'viewer');
      hub.peerTaken('v');
      expect(s.closedWith).toEqual({ code: 4000, reason: 'replaced' });
      expect(hub.peerCount).toBe(0);
      hub.peerTaken('nobody'); // no throw
    });

    it('deliver to an unknown peer is dropped', () => {
      expect(() => hub.deliver('nobody', { type: 'expired', room: 'r', to: 'x' })).not.toThrow();
    });
  });
});
