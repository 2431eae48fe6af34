import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startHerald, type Running } from '../helpers/herald.js';
import { TestSocket } from '../helpers/socket.js';

/**
 * The seed protocol (docs/protocol.md §1) over real sockets against an in-process server.
 * Every wait is on an event (a message or a close); a "received nothing" check is made only
 * after a later round trip on the same socket has proved the server already handled it.
 */

let seq = 0;
/** A fresh id per use, so tests on one server never share rooms or readers. */
const uid = (prefix: string) => `${prefix}${++seq}`;

describe('seed protocol', () => {
  let server: Running;
  const sockets: TestSocket[] = [];

  const open = async (path: string, options?: ConstructorParameters<typeof TestSocket>[1]) => {
    const s = new TestSocket(server.ws + path, options);
    sockets.push(s);
    await s.opened;
    return s;
  };
  const sender = (room: string) => open(`/webrtc/sender/${room}`);
  const reader = (user: string) => open(`/webrtc/reader/${user}`);

  /** A reader joined to `room`, whose sender has already seen the join. */
  const joinedReader = async (s: TestSocket, room: string, user: string) => {
    const r = await reader(user);
    r.send(`join|${room}`);
    expect(await s.next((m) => m === `join|${user}`)).toBe(`join|${user}`);
    return r;
  };

  /** Proves `from -> to` still relays (and that the server handled everything sent before). */
  const roundTrip = async (s: TestSocket, r: TestSocket, room: string, user: string) => {
    const tag = uid('t');
    s.send(`ping|${user}|${tag}`);
    expect(await r.next((m) => m === `ping|${room}|${tag}`)).toBe(`ping|${room}|${tag}`);
    r.send(`pong|${room}|${tag}`);
    expect(await s.next((m) => m === `pong|${user}|${tag}`)).toBe(`pong|${user}|${tag}`);
  };

  /** Resolves when the server has handled the close of a socket of `peerId` (hub.disconnect). */
  const disconnectWaiters = new Map<string, (() => void)[]>();
  const serverSawClose = (peerId: string) =>
    new Promise<void>((resolve) => {
      const list = disconnectWaiters.get(peerId) ?? [];
      list.push(resolve);
      disconnectWaiters.set(peerId, list);
    });

  beforeAll(async () => {
    server = await startHerald();
    const hub = server.herald.hub;
    const disconnect = hub.disconnect.bind(hub);
    hub.disconnect = (peerId, ...rest) => {
      disconnect(peerId, ...rest);
      const list = disconnectWaiters.get(peerId);
      disconnectWaiters.delete(peerId);
      for (const resolve of list ?? []) resolve();
    };
  });
  afterEach(async () => {
    const all = sockets.splice(0);
    await Promise.all(all.map((s) => (s.ws.readyState === s.ws.CLOSED ? s.closed : s.close())));
  });
  afterAll(async () => {
    await server.stop();
  });

  describe('relay', () => {
    it('carries join, offer, answer and candid both ways with the article rewrite', async () => {
      const room = uid('room');
      const user = uid('user');
      const s = await sender(room);
      const r = await reader(user);

      r.send(`join|${room}`);
      expect(await s.next()).toBe(`join|${user}`);

      s.send(`offer|${user}|v=0 sdp-offer`);
      expect(await r.next()).toBe(`offer|${room}|v=0 sdp-offer`);

      r.send(`answer|${room}|v=0 sdp-answer`);
      expect(await s.next()).toBe(`answer|${user}|v=0 sdp-answer`);

      const cand = JSON.stringify({ candidate: 'candidate:1 1 udp 1 10.0.0.1 5000 typ host', sdpMid: '0' });
      s.send(`candid|${user}|${cand}`);
      expect(await r.next()).toBe(`candid|${room}|${cand}`);
      r.send(`candid|${room}|${cand}`);
      expect(await s.next()).toBe(`candid|${user}|${cand}`);
    });

    it('splits on the first two bars only: a value containing | survives intact', async () => {
      const room = uid('room');
      const user = uid('user');
      const s = await sender(room);
      const r = await joinedReader(s, room, user);
      s.send(`offer|${user}|a|b||c|`);
      expect(await r.next()).toBe(`offer|${room}|a|b||c|`);
      r.send(`answer|${room}||x|y`);
      expect(await s.next()).toBe(`answer|${user}||x|y`);
    });

    it('relays any type, including an empty value', async () => {
      const room = uid('room');
      const user = uid('user');
      const s = await sender(room);
      const r = await joinedReader(s, room, user);
      s.send(`whatever-type|${user}|hello`);
      expect(await r.next()).toBe(`whatever-type|${room}|hello`);
      s.send(`bye|${user}|`);
      expect(await r.next()).toBe(`bye|${room}|`);
      r.send(`custom|${room}|42`);
      expect(await s.next()).toBe(`custom|${user}|42`);
    });

    it('relays a frame of exactly the default 64 KiB limit', async () => {
      const room = uid('room');
      const user = uid('user');
      const s = await sender(room);
      const r = await joinedReader(s, room, user);
      const head = `big|${user}|`;
      const value = 'x'.repeat(65536 - head.length);
      s.send(head + value);
      const got = await r.nextStarting(`big|${room}|`);
      expect(got.length).toBe(`big|${room}|`.length + value.length);
      expect(s.ws.readyState).toBe(s.ws.OPEN);
    });

    it('keeps each reader in a room separate', async () => {
      const room = uid('room');
      const u1 = uid('user');
      const u2 = uid('user');
      const s = await sender(room);
      const r1 = await joinedReader(s, room, u1);
      const r2 = await joinedReader(s, room, u2);
      s.send(`offer|${u2}|for-two`);
      expect(await r2.next()).toBe(`offer|${room}|for-two`);
      await roundTrip(s, r1, room, u1);
      expect(r1.received.some((m) => m.includes('for-two'))).toBe(false);
    });
  });

  describe('waiting readers', () => {
    it('announces readers who joined before the sender existed', async () => {
      const room = uid('room');
      const users = [uid('user'), uid('user'), uid('user')];
      const readers: TestSocket[] = [];
      for (const user of users) {
        const r = await reader(user);
        readers.push(r);
        r.send(`join|${room}`);
      }
      // Prove every join was handled before the sender arrives: each gets no-sender back.
      for (const r of readers) {
        r.send(`answer|${room}|early`);
        expect(await r.nextStarting('error|')).toMatch(/^error\|no-sender\|/);
      }
      const s = await sender(room);
      const announced = [await s.next(), await s.next(), await s.next()];
      expect(announced.sort()).toEqual(users.map((u) => `join|${u}`).sort());
      for (let i = 0; i < users.length; i++) await roundTrip(s, readers[i]!, room, users[i]!);
    });
  });

  describe('replace on reconnect', () => {
    it('closes the old sender with 4000 "replaced" and re-announces the bound readers to the new one', async () => {
      const room = uid('room');
      const u1 = uid('user');
      const u2 = uid('user');
      const s1 = await sender(room);
      const r1 = await joinedReader(s1, room, u1);
      const r2 = await joinedReader(s1, room, u2);

      const s2 = await sender(room);
      expect(await s1.closed).toEqual({ code: 4000, reason: 'replaced' });
      const announced = [await s2.next(), await s2.next()];
      expect(announced.sort()).toEqual([`join|${u1}`, `join|${u2}`].sort());

      await roundTrip(s2, r1, room, u1);
      await roundTrip(s2, r2, room, u2);
      // The readers were never unbound by the replacement.
      expect(r1.received).not.toContain('leaveline');
      expect(r2.received).not.toContain('leaveline');
    });

    it('closes the old reader with 4000 "replaced"; the new one keeps its binding', async () => {
      const room = uid('room');
      const user = uid('user');
      const s = await sender(room);
      const r1 = await joinedReader(s, room, user);

      const oldClosed = serverSawClose(user);
      const r2 = await reader(user);
      expect(await r1.closed).toEqual({ code: 4000, reason: 'replaced' });
      await oldClosed;
      // No new join: the new socket is already bound to the room.
      r2.send(`answer|${room}|from-new`);
      expect(await s.next()).toBe(`answer|${user}|from-new`);
      s.send(`offer|${user}|to-new`);
      expect(await r2.next()).toBe(`offer|${room}|to-new`);
      // The old socket's close did not count as the reader leaving.
      await roundTrip(s, r2, room, user);
      expect(s.received.some((m) => m.startsWith('leave|'))).toBe(false);
    });
  });

  describe('leaving', () => {
    it('sender close: every bound reader gets leaveline and is unbound', async () => {
      const room = uid('room');
      const u1 = uid('user');
      const u2 = uid('user');
      const s = await sender(room);
      const r1 = await joinedReader(s, room, u1);
      const r2 = await joinedReader(s, room, u2);

      await s.close();
      expect(await r1.next()).toBe('leaveline');
      expect(await r2.next()).toBe('leaveline');

      r1.send(`answer|${room}|late`);
      expect(await r1.nextStarting('error|')).toMatch(/^error\|not-joined\|/);

      // A new sender of the room does not see the unbound readers.
      const s2 = await sender(room);
      r2.send(`join|${room}`);
      expect(await s2.next()).toBe(`join|${u2}`);
      expect(s2.received).toEqual([`join|${u2}`]);
    });

    it('reader close: the sender gets leave|<userId>', async () => {
      const room = uid('room');
      const user = uid('user');
      const s = await sender(room);
      const r = await joinedReader(s, room, user);
      await r.close();
      expect(await s.next()).toBe(`leave|${user}`);
      s.send(`offer|${user}|gone`);
      expect(await s.nextStarting('error|')).toMatch(/^error\|no-such-peer\|/);
    });

    it('a reader switching rooms leaves the first one', async () => {
      const roomA = uid('room');
      const roomB = uid('room');
      const user = uid('user');
      const sA = await sender(roomA);
      const sB = await sender(roomB);
      const r = await joinedReader(sA, roomA, user);
      r.send(`join|${roomB}`);
      expect(await sA.next()).toBe(`leave|${user}`);
      expect(await sB.next()).toBe(`join|${user}`);
      r.send(`answer|${roomA}|x`);
      expect(await r.nextStarting('error|')).toMatch(/^error\|not-joined\|/);
      await roundTrip(sB, r, roomB, user);
    });

    it('a reader that connects and vanishes without joining leaves nothing behind', async () => {
      // A server of its own, so that no other test's peers or rooms are counted.
      const own = await startHerald();
      try {
        const user = uid('user');
        const gone = new Promise<void>((resolve) => {
          const disconnect = own.herald.hub.disconnect.bind(own.herald.hub);
          own.herald.hub.disconnect = (...args) => {
            disconnect(...args);
            resolve();
          };
        });
        const r = await TestSocket.open(`${own.ws}/webrtc/reader/${user}`);
        expect(own.herald.hub.peerCount).toBe(1);
        await r.close();
        await gone;
        expect(own.herald.hub.peerCount).toBe(0);
        expect(await own.herald.cluster.listRooms()).toEqual([]);
      } finally {
        await own.stop();
      }
    });

    it('a waiting reader that closes removes the room it created', async () => {
      const room = uid('room');
      const user = uid('user');
      const r = await reader(user);
      r.send(`join|${room}`);
      r.send(`answer|${room}|x`);
      expect(await r.next()).toMatch(/^error\|no-sender\|/);
      expect((await server.herald.cluster.listRooms()).find((x) => x.id === room)).toEqual({
        id: room,
        members: 1,
        broadcaster: null,
      });
      const gone = serverSawClose(user);
      await r.close();
      await gone;
      expect((await server.herald.cluster.listRooms()).find((x) => x.id === room)).toBeUndefined();
    });
  });

  describe('isolation', () => {
    it('a sender cannot reach a reader of another room', async () => {
      const roomA = uid('room');
      const roomB = uid('room');
      const userB = uid('user');
      const sA = await sender(roomA);
      const sB = await sender(roomB);
      const rB = await joinedReader(sB, roomB, userB);

      sA.send(`offer|${userB}|hijack`);
      expect(await sA.next()).toMatch(/^error\|no-such-peer\|/);
      await roundTrip(sB, rB, roomB, userB);
      expect(rB.received.some((m) => m.includes('hijack'))).toBe(false);
    });

    it('a sender cannot address another sender or itself', async () => {
      const roomA = uid('room');
      const roomB = uid('room');
      const sA = await sender(roomA);
      const sB = await sender(roomB);
      sA.send(`offer|sender/${roomB}|x`);
      expect(await sA.next()).toMatch(/^error\|no-such-peer\|/);
      sA.send(`offer|sender/${roomA}|x`);
      expect(await sA.next()).toMatch(/^error\|/);
      const user = uid('user');
      const r = await joinedReader(sB, roomB, user);
      await roundTrip(sB, r, roomB, user);
      expect(sB.received.some((m) => m.startsWith('offer|'))).toBe(false);
    });

    it('a reader id cannot impersonate a sender (sender%2F<room>)', async () => {
      const room = uid('room');
      const s = await sender(room);
      const evil = new TestSocket(`${server.ws}/webrtc/reader/sender%2F${room}`);
      evil.opened.catch(() => {});
      sockets.push(evil);
      const closed = await evil.closed;
      expect(closed.code).toBe(1008);
      expect(closed.reason).not.toBe('');
      // The real sender was not replaced and still works.
      const user = uid('user');
      const r = await joinedReader(s, room, user);
      await roundTrip(s, r, room, user);
      expect(s.ws.readyState).toBe(s.ws.OPEN);
    });
  });

  describe('errors keep the socket open', () => {
    const senderCases: [string, (user: string) => string, string][] = [
      ['no bar', () => 'garbage', 'bad-frame'],
      ['empty frame', () => '', 'bad-frame'],
      ['empty type', (user) => `|${user}|x`, 'bad-frame'],
      ['empty target', () => 'offer||x', 'bad-frame'],
      ['missing value part', (user) => `offer|${user}`, 'bad-frame'],
      ['unknown reader', () => `offer|${uid('nobody')}|x`, 'no-such-peer'],
    ];
    for (const [name, frame, code] of senderCases) {
      it(`sender: ${name} -> error|${code}`, async () => {
        const room = uid('room');
        const user = uid('user');
        const s = await sender(room);
        const r = await joinedReader(s, room, user);
        s.send(frame(user));
        const err = await s.next();
        expect(err.startsWith(`error|${code}|`)).toBe(true);
        expect(err.length).toBeGreaterThan(`error|${code}|`.length);
        await roundTrip(s, r, room, user);
        expect(r.received.filter((m) => !m.startsWith('ping|'))).toEqual([]);
        expect(s.received.filter((m) => m.startsWith('error|'))).toEqual([err]);
      });
    }

    const readerCases: [string, (room: string) => string, string][] = [
      ['no bar', () => 'garbage', 'bad-frame'],
      ['join without bar', () => 'join', 'bad-frame'],
      ['empty type', (room) => `|${room}|x`, 'bad-frame'],
      ['empty target', () => 'answer||x', 'bad-frame'],
      ['empty join target', () => 'join|', 'bad-frame'],
      ['missing value part', (room) => `answer|${room}`, 'bad-frame'],
      ['a room it did not join', () => `answer|${uid('other')}|x`, 'not-joined'],
    ['a join to a room id over 128 characters', () => `join|${'r'.repeat(129)}`, 'bad-frame'],
    ];
    for (const [name, frame, code] of readerCases) {
      it(`reader: ${name} -> error|${code}`, async () => {
        const room = uid('room');
        const user = uid('user');
        const s = await sender(room);
        const r = await joinedReader(s, room, user);
        r.send(frame(room));
        const err = await r.next();
        expect(err.startsWith(`error|${code}|`)).toBe(true);
        await roundTrip(s, r, room, user);
        expect(s.received.filter((m) => !m.startsWith('pong|'))).toEqual([`join|${user}`]);
        expect(r.received.filter((m) => m.startsWith('error|'))).toEqual([err]);
      });
    }

    it('reader: a room without a sender -> error|no-sender, and the reader stays usable', async () => {
      const room = uid('room');
      const user = uid('user');
      const r = await reader(user);
      r.send(`join|${room}`);
      r.send(`answer|${room}|x`);
      expect(await r.next()).toMatch(/^error\|no-sender\|/);
      const s = await sender(room);
      expect(await s.next()).toBe(`join|${user}`);
      await roundTrip(s, r, room, user);
      expect(s.received).not.toContain(`answer|${user}|x`);
    });
  });

  describe('closing frames and paths', () => {
    it('a binary frame closes the socket with 1003', async () => {
      const room = uid('room');
      const user = uid('user');
      const s = await sender(room);
      const r = await joinedReader(s, room, user);
      r.send(Buffer.from(`answer|${room}|x`));
      const closed = await r.closed;
      expect(closed.code).toBe(1003);
      expect(await s.next()).toBe(`leave|${user}`);
      expect(s.received).not.toContain(`answer|${user}|x`);
    });

    it('a frame over 64 KiB closes the socket with 1009', async () => {
      const room = uid('room');
      const user = uid('user');
      const s = await sender(room);
      const r = await joinedReader(s, room, user);
      s.send(`offer|${user}|${'x'.repeat(65536)}`);
      expect((await s.closed).code).toBe(1009);
      expect(await r.next()).toBe('leaveline');
      expect(r.received).toEqual(['leaveline']);
    });

    const badPaths = [
      '/',
      '/foo',
      '/webrtc',
      '/webrtc/sender',
      '/webrtc/sender/',
      '/webrtc/reader/',
      '/webrtc/admin/x',
      '/webrtc/sender/a/b',
      '/other/sender/a',
      '/webrtc/reader/%E0%A4%A',
      `/webrtc/sender/${'r'.repeat(129)}`,
      `/webrtc/${'x'.repeat(300)}/u`,
      `/webrtc/reader/a%2Fb`,
    ];
    for (const path of badPaths) {
      it(`path ${path.length > 40 ? path.slice(0, 40) + '…' : path} is closed with 1008 and a reason`, async () => {
        const s = new TestSocket(server.ws + path);
        s.opened.catch(() => {});
        sockets.push(s);
        const closed = await s.closed;
        expect(closed.code).toBe(1008);
        expect(closed.reason.length).toBeGreaterThan(0);
        expect(Buffer.byteLength(closed.reason)).toBeLessThanOrEqual(123);
      });
    }

    it('a close reason longer than a close frame allows is cut, not thrown (both protocols)', async () => {
      const own = await startHerald();
      try {
        const s = await TestSocket.open(`${own.ws}/webrtc/sender/${uid('room')}`);
        const r = await TestSocket.open(`${own.ws}/webrtc/reader/${uid('user')}`);
        const j = await TestSocket.open(`${own.ws}/ws`);
        const stopping = own.herald.stop('é'.repeat(100), 0);
        const closes = [await s.closed, await r.closed, await j.closed];
        expect(closes.map((c) => c.code)).toEqual([1001, 1001, 1012]);
        for (const closed of closes) {
          expect(closed.reason.startsWith('éé')).toBe(true);
          expect(Buffer.byteLength(closed.reason)).toBeLessThanOrEqual(123);
        }
        await stopping;
      } finally {
        await own.stop();
      }
    });

    it('the server still serves after refusing bad paths', async () => {
      const room = uid('room');
      const user = uid('user');
      const s = await sender(room);
      const r = await joinedReader(s, room, user);
      await roundTrip(s, r, room, user);
    });

    it('a query string is allowed on both roles', async () => {
      const room = uid('room');
      const user = uid('user');
      const s = await open(`/webrtc/sender/${room}?x=1`);
      const r = await open(`/webrtc/reader/${user}?token=abc&y=2`);
      r.send(`join|${room}`);
      expect(await s.next()).toBe(`join|${user}`);
      await roundTrip(s, r, room, user);
    });

    it('percent-encoded ids are decoded', async () => {
      const s = await open(`/webrtc/sender/${encodeURIComponent('my room')}`);
      const r = await open(`/webrtc/reader/${encodeURIComponent('u@ser:1')}`);
      r.send('join|my room');
      expect(await s.next()).toBe('join|u@ser:1');
      s.send('offer|u@ser:1|x');
      expect(await r.next()).toBe('offer|my room|x');
    });
  });
});

describe('seed protocol heartbeat', () => {
  let server: Running;
  const sockets: TestSocket[] = [];
  beforeAll(async () => {
    server = await startHerald({ heartbeatMs: 200 });
  });
  afterEach(async () => {
    const all = sockets.splice(0);
    await Promise.all(all.map((s) => (s.ws.readyState === s.ws.CLOSED ? s.closed : s.close())));
  });
  afterAll(async () => {
    await server.stop();
  });

  const open = async (path: string, options?: ConstructorParameters<typeof TestSocket>[1]) => {
    const s = new TestSocket(server.ws + path, options);
    sockets.push(s);
    await s.opened;
    return s;
  };

  it('terminates a joined reader that stops answering pings; the sender gets leave|<userId>', async () => {
    const room = uid('hb-room');
    const user = uid('hb-user');
    const s = await open(`/webrtc/sender/${room}`);
    const r = await open(`/webrtc/reader/${user}`, { autoPong: false });
    let pings = 0;
    r.ws.on('ping', () => pings++);
    r.send(`join|${room}`);
    expect(await s.next()).toBe(`join|${user}`);
    const closed = await r.closed;
    expect(closed.code).toBe(1006);
    expect(pings).toBeGreaterThanOrEqual(1);
    expect(await s.next()).toBe(`leave|${user}`);
    expect(server.herald.hub.peerCount).toBe(1);
  });

  it('keeps a client that answers pings connected across several intervals', async () => {
    const room = uid('hb-room');
    const user = uid('hb-user');
    const s = await open(`/webrtc/sender/${room}`);
    const r = await open(`/webrtc/reader/${user}`);
    r.send(`join|${room}`);
    expect(await s.next()).toBe(`join|${user}`);
    await new Promise<void>((resolve) => {
      let pings = 0;
      r.ws.on('ping', () => {
        if (++pings === 4) resolve();
      });
    });
    expect(r.ws.readyState).toBe(r.ws.OPEN);
    s.send(`offer|${user}|still-here`);
    expect(await r.next()).toBe(`offer|${room}|still-here`);
    expect(s.received).toEqual([`join|${user}`]);
  });
});
