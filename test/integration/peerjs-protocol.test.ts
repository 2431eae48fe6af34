import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PeerJsSocket, TARGETS, type PeerJsTarget } from '../helpers/peerjs-targets.js';
import { TestSocket } from '../helpers/socket.js';

/**
 * The PeerJS server protocol, over real `ws` clients, against the reference server (the
 * `peer` package's PeerServer) and against Herald: every test passes on both.
 */

/** Generous: a loaded 2-core box must connect a late peer well within it. */
const EXPIRE_MS = 3000;
let seq = 0;
const uid = (p: string) => `${p}${++seq}x${Math.random().toString(36).slice(2, 8)}`;

describe.each(TARGETS)('PeerJS protocol on $name', ({ start }) => {
  let target: PeerJsTarget;
  const open: TestSocket[] = [];
  const connect = async (id: string, token?: string) => {
    const s = await PeerJsSocket.connect(target, id, token);
    open.push(s);
    return s;
  };

  beforeAll(async () => {
    target = await start({ expireMs: EXPIRE_MS });
  });
  afterAll(async () => {
    for (const s of open) s.ws.terminate();
    await target.stop();
  });

  it('GET /peerjs/id answers a fresh id as the plain body, with CORS', async () => {
    const res = await fetch(`${target.http}/peerjs/id?ts=1&version=1.5.5`, { headers: { origin: 'http://app.example' } });
    expect(res.status).toBe(200);
    expect(res.headers.get('access-control-allow-origin')).toBeTruthy();
    const a = await res.text();
    const b = await (await fetch(`${target.http}/peerjs/id`)).text();
    expect(a).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
    expect(b).not.toBe(a);
  });

  it('GET /peerjs/peers is 401 while discovery is off', async () => {
    const res = await fetch(`${target.http}/peerjs/peers`);
    expect(res.status).toBe(401);
  });

  it('a socket without id, token or key gets ERROR and is closed', async () => {
    for (const query of [{ token: 't', key: 'peerjs' }, { id: 'a', key: 'peerjs' }, { id: 'a', token: 't' }]) {
      const s = new TestSocket(target.socketUrl(query));
      const msg = await s.nextJson('ERROR');
      expect(msg.payload.msg).toBe('No id, token, or key supplied to websocket server');
      await s.closed;
    }
  });

  it('a wrong key gets ERROR "Invalid key provided" and is closed', async () => {
    const s = new TestSocket(target.socketUrl({ id: uid('k'), token: 't', key: 'nope' }));
    const msg = await s.nextJson('ERROR');
    expect(msg.payload.msg).toBe('Invalid key provided');
    await s.closed;
  });

  it('a free id gets {"type":"OPEN"} first', async () => {
    const s = new PeerJsSocket(target, uid('o'));
    open.push(s);
    expect(await s.next()).toBe('{"type":"OPEN"}');
  });

  it('OFFER, ANSWER, CANDIDATE, LEAVE and EXPIRE are relayed by dst with src set by the server and payload untouched', async () => {
    const a = await connect(uid('a'));
    const b = await connect(uid('b'));
    const payload = { sdp: { type: 'offer', sdp: 'v=0\r\n…' }, type: 'media', connectionId: 'mc_1', metadata: { n: [1, 2.5, null] }, browser: 'x' };
    for (const type of ['OFFER', 'ANSWER', 'CANDIDATE', 'LEAVE', 'EXPIRE']) {
      a.json({ type, src: 'forged', dst: b.id, payload });
      expect(await b.nextMessage()).toEqual({ type, src: a.id, dst: b.id, payload });
    }
    // No payload: none is invented.
    b.json({ type: 'LEAVE', dst: a.id });
    expect(await a.nextMessage()).toEqual({ type: 'LEAVE', src: b.id, dst: a.id });
  });

  it('other types and bad JSON are dropped without closing the socket', async () => {
    const a = await connect(uid('a'));
    const b = await connect(uid('b'));
    a.send('not json');
    a.send('[1,2]');
    a.json({ type: 'OPEN', dst: b.id });
    a.json({ type: 'ID-TAKEN', dst: b.id });
    a.json({ type: 'WHATEVER', dst: b.id, payload: 1 });
    a.json({ type: 'HEARTBEAT' });
    expect((await b.nextAfterMarker('m1')).payload).toEqual({ marker: 'm1' });
    expect((await a.nextAfterMarker('m2')).payload).toEqual({ marker: 'm2' });
    expect(a.ws.readyState).toBe(a.ws.OPEN);
  });

  it('HEARTBEAT is never answered', async () => {
    const a = await connect(uid('h'));
    a.heartbeat();
    a.heartbeat();
    expect((await a.nextAfterMarker('after-heartbeat')).payload).toEqual({ marker: 'after-heartbeat' });
  });

  it('an id held with another token gets ID-TAKEN and is closed; the holder is untouched', async () => {
    const id = uid('t');
    const holder = await connect(id, 'token-1');
    const thief = new PeerJsSocket(target, id, 'token-2');
    const msg = await thief.nextJson('ID-TAKEN');
    expect(msg.payload).toEqual({ msg: 'ID is taken' });
    await thief.closed;
    const other = await connect(uid('o'));
    other.json({ type: 'OFFER', dst: id, payload: { still: 'there' } });
    expect(await holder.nextMessage()).toEqual({ type: 'OFFER', src: other.id, dst: id, payload: { still: 'there' } });
  });

  it('a socket refused with ID-TAKEN cannot send as the id, even messages sent before the refusal', async () => {
    const id = uid('t');
    await connect(id, 'token-1');
    const victim = await connect(uid('v'));
    const thief = new PeerJsSocket(target, id, 'token-2');
    await thief.opened;
    thief.json({ type: 'OFFER', dst: victim.id, payload: 'forged' });
    await thief.nextJson('ID-TAKEN');
    await thief.closed;
    expect((await victim.nextAfterMarker('clean')).payload).toEqual({ marker: 'clean' });
  });

  it('an id held with the same token is taken over by the new socket (reconnect)', async () => {
    const id = uid('r');
    await connect(id, 'same');
    const again = new PeerJsSocket(target, id, 'same');
    open.push(again);
    await again.opened;
    const other = await connect(uid('o'));
    // Until the server has the new socket, a message may still reach the old one: wait for
    // a marker round trip on the new socket first.
    again.json({ type: 'OFFER', dst: id, payload: { marker: 'mine' } });
    await again.next((m) => m.includes('"mine"'));
    other.json({ type: 'CANDIDATE', dst: id, payload: { c: 1 } });
    expect(await again.next((m) => m.includes('CANDIDATE'))).toBe(JSON.stringify({ type: 'CANDIDATE', src: other.id, dst: id, payload: { c: 1 } }));
  });

  it('an id closed is free again for another token', async () => {
    const id = uid('f');
    const first = await connect(id, 'one');
    await first.close();
    // The server learns of the close a moment later; retry until the id is free.
    for (let attempt = 0; ; attempt++) {
      const s = new PeerJsSocket(target, id, 'two');
      const m = JSON.parse(await s.next());
      if (m.type === 'OPEN') {
        open.push(s);
        break;
      }
      expect(m.type).toBe('ID-TAKEN');
      await s.closed;
      expect(attempt).toBeLessThan(50);
      await new Promise((r) => setTimeout(r, 50));
    }
  });

  it('a message for an id that connects within the expiry waits for it and follows OPEN', { timeout: 60_000 }, async () => {
    const a = await connect(uid('a'));
    const later = uid('later');
    a.json({ type: 'OFFER', dst: later, payload: { n: 1 } });
    a.json({ type: 'CANDIDATE', dst: later, payload: { n: 2 } });
    // The queue is filled once the server has read both: a marker round trip proves it.
    expect((await a.nextAfterMarker('queued')).payload).toEqual({ marker: 'queued' });
    const b = new PeerJsSocket(target, later);
    open.push(b);
    expect(await b.nextMessage()).toEqual({ type: 'OPEN' });
    expect(await b.nextMessage()).toEqual({ type: 'OFFER', src: a.id, dst: later, payload: { n: 1 } });
    expect(await b.nextMessage()).toEqual({ type: 'CANDIDATE', src: a.id, dst: later, payload: { n: 2 } });
  });

  it('messages for an id that never connects expire: one EXPIRE per (sender, target) pair, src = the target', { timeout: 60_000 }, async () => {
    const a = await connect(uid('a'));
    const c = await connect(uid('c'));
    const ghost = uid('ghost');
    const ghost2 = uid('ghost');
    a.json({ type: 'OFFER', dst: ghost, payload: 1 });
    a.json({ type: 'CANDIDATE', dst: ghost, payload: 2 });
    a.json({ type: 'CANDIDATE', dst: ghost, payload: 3 });
    a.json({ type: 'OFFER', dst: ghost2, payload: 4 });
    c.json({ type: 'OFFER', dst: ghost, payload: 5 });
    const first = await a.nextMessage(EXPIRE_MS * 10);
    const second = await a.nextMessage(EXPIRE_MS * 10);
    expect([first, second].sort((x, y) => x.src.localeCompare(y.src))).toEqual(
      [{ type: 'EXPIRE', src: ghost, dst: a.id }, { type: 'EXPIRE', src: ghost2, dst: a.id }].sort((x, y) => x.src.localeCompare(y.src)),
    );
    expect(await c.nextMessage(EXPIRE_MS * 10)).toEqual({ type: 'EXPIRE', src: ghost, dst: c.id });
    // Never one per message: nothing else came before a marker sent after the EXPIREs.
    expect((await a.nextAfterMarker('done')).payload).toEqual({ marker: 'done' });
    // And expired messages are gone: the ghost connecting now gets OPEN and nothing else.
    const g = new PeerJsSocket(target, ghost);
    open.push(g);
    expect(await g.nextMessage()).toEqual({ type: 'OPEN' });
    expect((await g.nextAfterMarker('empty')).payload).toEqual({ marker: 'empty' });
  });

  it('LEAVE and EXPIRE for an id that is not connected are dropped, not queued', async () => {
    const a = await connect(uid('a'));
    const absent = uid('absent');
    a.json({ type: 'LEAVE', dst: absent });
    a.json({ type: 'EXPIRE', dst: absent });
    expect((await a.nextAfterMarker('sent')).payload).toEqual({ marker: 'sent' });
    const b = new PeerJsSocket(target, absent);
    open.push(b);
    expect(await b.nextMessage()).toEqual({ type: 'OPEN' });
    expect((await b.nextAfterMarker('nothing')).payload).toEqual({ marker: 'nothing' });
  });
});

describe.each(TARGETS)('PeerJS liveness on $name', ({ start }) => {
  const ALIVE_MS = 1500;
  let target: PeerJsTarget;
  beforeAll(async () => {
    target = await start({ aliveMs: ALIVE_MS });
  });
  afterAll(() => target.stop());

  it('a silent client is dropped after the alive timeout; one that heartbeats is never dropped', async () => {
    const beating = await PeerJsSocket.connect(target, uid('beat'));
    const timer = setInterval(() => beating.heartbeat(), ALIVE_MS / 5);
    try {
      const silent = await PeerJsSocket.connect(target, uid('quiet'));
      await silent.closed;
      // A second silent client, opened after the first was dropped, is dropped too: by then
      // the heartbeating one has lived through two timeouts.
      const silent2 = await PeerJsSocket.connect(target, uid('quiet'));
      await silent2.closed;
      expect(beating.ws.readyState).toBe(beating.ws.OPEN);
      expect((await beating.nextAfterMarker('alive')).payload).toEqual({ marker: 'alive' });
    } finally {
      clearInterval(timer);
      beating.ws.terminate();
    }
  });
});

describe.each(TARGETS)('PeerJS mounted at /myapp with discovery on, on $name', ({ start }) => {
  let target: PeerJsTarget;
  beforeAll(async () => {
    target = await start({ path: '/myapp', discovery: true, key: 'k1' });
  });
  afterAll(() => target.stop());

  it('GET of the mount describes the server; id, peers and the socket live under it', async () => {
    const about = await fetch(`${target.http}/myapp`);
    expect(about.status).toBe(200);
    expect(await about.json()).toMatchObject({ name: 'PeerJS Server' });
    const id = await (await fetch(`${target.http}/myapp/k1/id`)).text();
    expect(id).toMatch(/^[0-9a-f-]{36}$/);
    const s = new TestSocket(target.socketUrl({ id, token: 't', key: 'k1' }));
    expect(await s.next()).toBe('{"type":"OPEN"}');
    const peers = await (await fetch(`${target.http}/myapp/k1/peers`)).json();
    expect(peers).toContain(id);
    s.ws.terminate();
  });
});
