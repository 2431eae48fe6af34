import { describe, expect, it } from 'vitest';
import { MemoryCluster } from '../../src/cluster/memory.js';
import { Hub } from '../../src/core/hub.js';
import { Room } from '../../src/core/room.js';
import type { Member, PeerEvent, Protocol, Session } from '../../src/core/types.js';

/** The core's room fan-out (core/fanout.ts) without sockets: MemoryCluster and fake sessions. */

class FakeSession implements Session {
  readonly events: PeerEvent[] = [];
  constructor(readonly protocol: Protocol = 'ywebrtc') {}
  deliver(event: PeerEvent): void {
    this.events.push(event);
  }
  close(): void {}
  fanouts(): string[] {
    return this.events.flatMap((e) => (e.type === 'fanout' && e.payload.kind === 'ywebrtc' ? [e.payload.text] : []));
  }
}

async function hub() {
  const cluster = new MemoryCluster();
  const h = new Hub(cluster, { maxPeersPerRoom: 0, maxRoomsPerPeer: 0, resumeGraceMs: 1000, resumeQueueMax: 4 });
  await cluster.start(h);
  return h;
}

const member = (peerId: string, instanceId: string): Member => ({ peerId, role: 'peer', protocol: 'ywebrtc', instanceId, joinedAt: 1 });

describe('room fan-out', () => {
  it('reaches every member once, the sender included, rendered once with the room size', async () => {
    const h = await hub();
    const sessions = ['a', 'b', 'c'].map((id) => {
      const s = new FakeSession();
      h.connectAnonymous(id, s);
      return s;
    });
    for (const id of ['a', 'b', 'c']) await h.join(id, 'topic', 'peer');
    let renders = 0;
    expect(h.publish('b', 'topic', (n) => (renders++, { kind: 'ywebrtc', text: `n=${n}` }))).toBe(true);
    expect(renders).toBe(1);
    for (const s of sessions) expect(s.fanouts()).toEqual(['n=3']);
  });

  it('a non-member publishes nothing; members of other rooms hear nothing', async () => {
    const h = await hub();
    const inRoom = new FakeSession();
    const outside = new FakeSession();
    h.connectAnonymous('in', inRoom);
    h.connectAnonymous('out', outside);
    await h.join('in', 'topic', 'peer');
    await h.join('out', 'elsewhere', 'peer');
    expect(h.publish('out', 'topic', () => ({ kind: 'ywebrtc', text: 'x' }))).toBe(false);
    expect(h.publish('out', 'nowhere', () => ({ kind: 'ywebrtc', text: 'x' }))).toBe(false);
    expect(inRoom.fanouts()).toEqual([]);
    h.publish('in', 'topic', () => ({ kind: 'ywebrtc', text: 'y' }));
    expect(outside.fanouts()).toEqual([]);
  });

  it('a detached (resuming) member of a mixed room does not queue publishes: they are for who is there now', async () => {
    const h = await hub();
    const json = new FakeSession('json');
    const { resumeToken } = await h.connect('j', json);
    await h.join('j', 'topic', 'peer');
    h.disconnect('j', json, true);
    const y = new FakeSession();
    h.connectAnonymous('y', y);
    await h.join('y', 'topic', 'peer');
    for (let i = 0; i < 10; i++) h.publish('y', 'topic', () => ({ kind: 'ywebrtc', text: `${i}` }));
    // Past resumeQueueMax (4) queued notices a resume is given up: ten publishes must not count.
    await new Promise((r) => setImmediate(r));
    const back = new FakeSession('json');
    const resumed = h.resume(resumeToken, back);
    expect(resumed?.rooms.has('topic')).toBe(true);
    expect(back.events.filter((e) => e.type === 'fanout')).toEqual([]);
  });

  it('Room.instanceIds lists each holding instance once, as members come and go', () => {
    const room = new Room('r');
    room.put(member('a', 'i1'));
    room.put(member('b', 'i1'));
    room.put(member('c', 'i2'));
    expect([...room.instanceIds()].sort()).toEqual(['i1', 'i2']);
    room.put(member('c', 'i1')); // moved instance
    expect([...room.instanceIds()]).toEqual(['i1']);
    room.remove('a');
    room.remove('b');
    expect([...room.instanceIds()]).toEqual(['i1']);
    room.remove('c');
    expect([...room.instanceIds()]).toEqual([]);
  });
});
