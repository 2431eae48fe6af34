import { describe, expect, it } from 'vitest';
import { MemoryCluster } from '../../src/cluster/memory.js';
import type { DirectMail } from '../../src/core/direct.js';
import { HeraldError } from '../../src/core/errors.js';
import { Hub } from '../../src/core/hub.js';
import type { Payload, PeerEvent, Session } from '../../src/core/types.js';

/** Room-less (direct) addressing in the core, over the in-memory cluster. No sockets. */

class FakeSession implements Session {
  readonly protocol = 'peerjs' as const;
  readonly events: PeerEvent[] = [];
  closed: number | undefined;
  deliver(event: PeerEvent): void {
    this.events.push(event);
  }
  close(code: number): void {
    this.closed = code;
  }
}

const msg = (type: string, payload?: unknown): Payload => ({ kind: 'peerjs', type, payload: payload === undefined ? undefined : JSON.stringify(payload) });

async function hub(ttl = 100, max = 8) {
  const cluster = new MemoryCluster();
  const h = new Hub(cluster, { maxPeersPerRoom: 0, maxRoomsPerPeer: 0, resumeGraceMs: 0, resumeQueueMax: 4, directTtlMs: ttl, directQueueMax: max });
  await cluster.start(h);
  return h;
}

async function until(what: string, probe: () => boolean, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!probe()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

describe('Hub: direct addressing', () => {
  it('connecting 10,000 direct peers creates no room and tells nobody', async () => {
    const h = await hub();
    const sessions = Array.from({ length: 10_000 }, () => new FakeSession());
    await Promise.all(sessions.map((s, i) => h.connectDirect(`p${i}`, s, 'id')));
    expect(h.peerCount).toBe(10_000);
    expect(h.roomCount).toBe(0);
    expect(sessions.every((s) => s.events.length === 0)).toBe(true);
    h.sendDirect('p1', 'p9999', msg('OFFER', { n: 1 }));
    expect(sessions[9999]!.events).toEqual([{ type: 'direct', from: 'p1', payload: msg('OFFER', { n: 1 }) }]);
    expect(sessions.filter((s) => s.events.length > 0)).toHaveLength(1);
    h.stop();
  });

  it('a room-less peer cannot join a room (forbidden); rooms and other room-less peers are untouched', async () => {
    const h = await hub();
    const a = new FakeSession();
    const b = new FakeSession();
    await h.connectDirect('a', a, 'id');
    await h.connectDirect('b', b, 'id');
    await expect(h.join('a', 'r', 'peer')).rejects.toMatchObject({ code: 'forbidden' });
    expect(h.roomCount).toBe(0);
    expect(h.roomsHeld('a')).toBe(0);
    expect(h.roomsHeld('b')).toBe(0);
    h.sendDirect('a', 'b', msg('OFFER', 1));
    expect(b.events).toHaveLength(1);
    h.stop();
  });

  it('another identity cannot take a held id; the same identity takes it over', async () => {
    const h = await hub();
    const first = new FakeSession();
    await h.connectDirect('x', first, 'token-1');
    await expect(h.connectDirect('x', new FakeSession(), 'token-2')).rejects.toMatchObject({ code: 'conflict' });
    const second = new FakeSession();
    await h.connectDirect('x', second, 'token-1');
    expect(first.closed).toBe(4000);
    h.sendDirect('y', 'x', msg('CANDIDATE', 1));
    expect(second.events).toHaveLength(1);
    h.stop();
  });

  it('messages for an absent id wait for it and come back on connect, oldest first', async () => {
    const h = await hub(10_000);
    h.sendDirect('a', 'late', msg('OFFER', 1));
    h.sendDirect('a', 'late', msg('CANDIDATE', 2));
    await new Promise((r) => setImmediate(r));
    const waiting = await h.connectDirect('late', new FakeSession(), 'id');
    expect(waiting.map((e) => e.type === 'direct' && e.payload)).toEqual([msg('OFFER', 1), msg('CANDIDATE', 2)]);
    h.stop();
  });

  it('expiry tells each sender once per target, however many messages it sent', async () => {
    const h = await hub(50);
    const a = new FakeSession();
    const b = new FakeSession();
    await h.connectDirect('a', a, 'id');
    await h.connectDirect('b', b, 'id');
    for (let i = 0; i < 5; i++) h.sendDirect('a', 'ghost', msg('CANDIDATE', i));
    h.sendDirect('a', 'ghost2', msg('OFFER'));
    h.sendDirect('b', 'ghost', msg('OFFER'));
    await until('three expiries', () => a.events.length + b.events.length >= 3);
    // Let any stray timer fire before counting.
    await new Promise((r) => setTimeout(r, 150));
    expect(a.events.sort((x, y) => JSON.stringify(x).localeCompare(JSON.stringify(y)))).toEqual([
      { type: 'direct-expired', to: 'ghost' },
      { type: 'direct-expired', to: 'ghost2' },
    ]);
    expect(b.events).toEqual([{ type: 'direct-expired', to: 'ghost' }]);
    // Nothing is left for the ghost.
    expect(await h.connectDirect('ghost', new FakeSession(), 'id')).toEqual([]);
    h.stop();
  });

  it('when the cluster cannot take messages (Redis away), a sender is told at once, once per pair, and again after the expiry', async () => {
    const refusing: DirectMail = {
      post: () => Promise.reject(new HeraldError('unavailable', 'the cluster is unreachable')),
      collect: async () => [],
      expire: async () => 0,
    };
    class RefusingCluster extends MemoryCluster {
      override readonly direct = refusing;
    }
    const cluster = new RefusingCluster();
    const h = new Hub(cluster, { maxPeersPerRoom: 0, maxRoomsPerPeer: 0, resumeGraceMs: 0, resumeQueueMax: 4, directTtlMs: 50, directQueueMax: 8 });
    await cluster.start(h);
    const a = new FakeSession();
    await h.connectDirect('a', a, 'id');
    h.sendDirect('a', 'elsewhere', msg('LEAVE'), false); // must not wait: no answer, and no pair remembered
    for (let i = 0; i < 5; i++) h.sendDirect('a', 'elsewhere', msg('CANDIDATE', i));
    h.sendDirect('a', 'other', msg('OFFER'));
    await new Promise((r) => setImmediate(r)); // every refusal has settled
    expect(a.events).toEqual([
      { type: 'direct-expired', to: 'elsewhere' },
      { type: 'direct-expired', to: 'other' },
    ]);
    // Past the expiry, a new refusal for the pair is told again.
    const until = performance.now() + 60;
    while (performance.now() < until) await new Promise((r) => setTimeout(r, 10));
    h.sendDirect('a', 'elsewhere', msg('OFFER'));
    await new Promise((r) => setImmediate(r));
    expect(a.events).toHaveLength(3);
    h.stop();
  });

  it('past a full queue a sender is told once; messages that must not wait are dropped silently', async () => {
    const h = await hub(200, 2);
    const a = new FakeSession();
    const c = new FakeSession();
    await h.connectDirect('a', a, 'id');
    await h.connectDirect('c', c, 'id');
    h.sendDirect('a', 'absent', msg('OFFER'));
    h.sendDirect('a', 'absent', msg('CANDIDATE'));
    // Over the cap: `a` will hear when its queued ones expire; `c`, with none queued, hears now.
    h.sendDirect('a', 'absent', msg('CANDIDATE'));
    h.sendDirect('c', 'absent', msg('OFFER'));
    await until('c told', () => c.events.length > 0);
    expect(c.events).toEqual([{ type: 'direct-expired', to: 'absent' }]);
    await until('a told', () => a.events.length > 0);
    await new Promise((r) => setTimeout(r, 100));
    expect(a.events).toEqual([{ type: 'direct-expired', to: 'absent' }]);
    h.sendDirect('a', 'nobody', msg('LEAVE'), false);
    await new Promise((r) => setImmediate(r));
    expect(a.events).toHaveLength(1);
    expect(await h.connectDirect('nobody', new FakeSession(), 'id')).toEqual([]);
    h.stop();
  });
});
