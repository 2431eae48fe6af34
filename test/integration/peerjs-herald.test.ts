import { afterEach, describe, expect, it } from 'vitest';
import { Tokens } from '../../src/auth/tokens.js';
import { startHerald, type Running } from '../helpers/herald.js';
import { PeerJsSocket, instanceTarget } from '../helpers/peerjs-targets.js';
import { TestSocket, refusedStatus } from '../helpers/socket.js';

/**
 * What Herald promises on every protocol, applied to PeerJS sockets: tokens, origin
 * allow-list, per-IP cap, frame cap, rate limit, drain, metrics and the admin API.
 * (PeerJS behaviour itself is in peerjs-protocol.test.ts, checked against PeerServer too.)
 */

const SECRET = 'peerjs-test-secret-0123456789';
const running: Running[] = [];
const sockets: TestSocket[] = [];
let seq = 0;
const uid = (p: string) => `${p}${++seq}`;

async function herald(overrides: Record<string, unknown> = {}): Promise<Running> {
  const h = await startHerald(overrides);
  running.push(h);
  return h;
}

function raw(h: Running, query: Record<string, string>, headers: Record<string, string> = {}): TestSocket {
  const q = new URLSearchParams({ key: 'peerjs', ...query });
  const s = new TestSocket(`${h.ws}/peerjs?${q}`, { headers });
  sockets.push(s);
  return s;
}

async function connect(h: Running, id: string, token?: string): Promise<PeerJsSocket> {
  const s = await PeerJsSocket.connect(instanceTarget(h), id, token);
  sockets.push(s);
  return s;
}

afterEach(async () => {
  for (const s of sockets.splice(0)) s.ws.terminate();
  await Promise.all(running.splice(0).map((h) => h.stop()));
});

describe('PeerJS with HERALD_SECRET: the token option carries a Herald token', () => {
  const tokens = new Tokens(SECRET);

  it('a token whose sub is the peer id (role peer) opens; messages relay', async () => {
    const h = await herald({ secret: SECRET });
    const alice = await connect(h, 'alice', await tokens.mint({ sub: 'alice', room: '*', roles: ['peer'], ttl: 60 }));
    const bob = await connect(h, 'bob', await tokens.mint({ sub: 'bob', room: '*', roles: ['peer'], ttl: 60 }));
    alice.json({ type: 'OFFER', dst: 'bob', payload: { hi: 1 } });
    expect(await bob.nextMessage()).toEqual({ type: 'OFFER', src: 'alice', dst: 'bob', payload: { hi: 1 } });
  });

  it('a random PeerJS token, another sub, or no peer role gets ERROR and a close code', async () => {
    const h = await herald({ secret: SECRET });
    const cases: [string, number, RegExp][] = [
      ['not-a-jwt', 4401, /malformed/],
      [await tokens.mint({ sub: 'mallory', room: '*', roles: ['peer'], ttl: 60 }), 4403, /token is for peer mallory/],
      [await tokens.mint({ sub: 'alice', room: '*', roles: ['viewer'], ttl: 60 }), 4403, /peer role/],
    ];
    for (const [token, code, msg] of cases) {
      const s = raw(h, { id: 'alice', token });
      expect((await s.nextJson('ERROR')).payload.msg).toMatch(msg);
      expect((await s.closed).code).toBe(code);
    }
  });

  it('a socket is closed with 4401 when its token expires', async () => {
    const h = await herald({ secret: SECRET });
    const s = await connect(h, 'alice', await tokens.mint({ sub: 'alice', room: '*', roles: ['peer'], ttl: 1 }));
    expect((await s.closed).code).toBe(4401);
  });
});

describe('PeerJS sockets under Herald limits', () => {
  it('a disallowed origin gets ERROR and 4403; an allowed one opens', async () => {
    const h = await herald({ allowedOrigins: 'http://app.example' });
    const bad = raw(h, { id: uid('o'), token: 't' }, { origin: 'http://evil.example' });
    expect((await bad.nextJson('ERROR')).payload.msg).toMatch(/origin/);
    expect((await bad.closed).code).toBe(4403);
    const good = raw(h, { id: uid('o'), token: 't' }, { origin: 'http://app.example' });
    expect(await good.next()).toBe('{"type":"OPEN"}');
  });

  it('past the per-IP cap a socket is refused with 429 at accept', async () => {
    const h = await herald({ maxConnectionsPerIp: 2 });
    await connect(h, uid('ip'));
    await connect(h, uid('ip'));
    expect(await refusedStatus(`${h.ws}/peerjs?${new URLSearchParams({ key: 'peerjs', id: uid('ip'), token: 't' })}`)).toBe(429);
  });

  it('past the per-IP cap behind a trusted proxy (counted at the upgrade) a socket gets ERROR and 4429', async () => {
    const h = await herald({ maxConnectionsPerIp: 2, trustProxy: 'true' });
    const from = { 'X-Forwarded-For': '203.0.113.7' };
    for (let i = 0; i < 2; i++) expect(await raw(h, { id: uid('ip'), token: 't' }, from).next()).toBe('{"type":"OPEN"}');
    const third = raw(h, { id: uid('ip'), token: 't' }, from);
    expect((await third.nextJson('ERROR')).payload.msg).toMatch(/connections per client address/);
    expect((await third.closed).code).toBe(4429);
  });

  it('a frame over the cap closes with 1009; others are unaffected', async () => {
    const h = await herald({ maxFrameBytes: 1024 });
    const a = await connect(h, uid('big'));
    const b = await connect(h, uid('other'));
    a.json({ type: 'OFFER', dst: b.id, payload: 'x'.repeat(2000) });
    expect((await a.closed).code).toBe(1009);
    expect((await b.nextAfterMarker('fine')).payload).toEqual({ marker: 'fine' });
  });

  it('messages over the rate are dropped; a flood closes with 4429', async () => {
    const h = await herald({ rateBurst: 5, ratePerSecond: 1 });
    const a = await connect(h, uid('flood'));
    const b = await connect(h, uid('target'));
    for (let i = 0; i < 30; i++) a.json({ type: 'CANDIDATE', dst: b.id, payload: i });
    expect((await a.closed).code).toBe(4429);
    // The first five went through, in order; the rest were refused.
    for (let i = 0; i < 5; i++) expect((await b.nextMessage()).payload).toBe(i);
    expect((await b.nextAfterMarker('after')).payload).toEqual({ marker: 'after' });
  });

  it('binary frames are dropped without closing the socket', async () => {
    const h = await herald();
    const a = await connect(h, uid('bin'));
    a.send(Buffer.from([1, 2, 3]));
    expect((await a.nextAfterMarker('still-open')).payload).toEqual({ marker: 'still-open' });
  });

  it('an id longer than 256 characters gets ERROR and 4400', async () => {
    const h = await herald();
    const s = raw(h, { id: 'x'.repeat(257), token: 't' });
    expect((await s.nextJson('ERROR')).payload.msg).toMatch(/longer than 256/);
    expect((await s.closed).code).toBe(4400);
  });

  it('a drain closes PeerJS sockets with 1001 (the client reports a network error and may reconnect)', async () => {
    const h = await startHerald({ drainGraceMs: 0 });
    const a = await connect(h, uid('drain'));
    const stopping = h.stop();
    expect((await a.closed).code).toBe(1001);
    await stopping;
  });
});

describe('PeerJS liveness after an event-loop stall', () => {
  it('a HEARTBEAT that arrived during a stall longer than the timeout is read before the peer is judged', async () => {
    const ALIVE_MS = 1000; // the smallest the setting takes
    const h = await herald({ peerjsAliveTimeoutMs: ALIVE_MS });
    const beating = await connect(h, uid('stalled'));
    const silent = await connect(h, uid('silent'));
    // Block this process (server and client alike) well past the timeout, as a long GC or a
    // busy handler would; the client's HEARTBEAT is written just before the loop resumes, so
    // the liveness sweep's timer and the unread HEARTBEAT are both due at once.
    const until = performance.now() + ALIVE_MS * 1.5;
    while (performance.now() < until) {
      // busy: nothing runs meanwhile
    }
    beating.heartbeat();
    // The silent one goes (it sent nothing); the one whose HEARTBEAT was waiting stays.
    await silent.closed;
    expect(beating.ws.readyState).toBe(beating.ws.OPEN);
    expect((await beating.nextAfterMarker('alive')).payload).toEqual({ marker: 'alive' });
  });
});

describe('PeerJS in metrics and the admin API', () => {
  it('counts PeerJS connections and errors with protocol="peerjs", and lists PeerJS peers', async () => {
    const h = await herald();
    const a = await connect(h, uid('m'));
    raw(h, { id: 'x'.repeat(300), token: 't' });
    const taken = raw(h, { id: a.id, token: 'another' });
    await taken.nextJson('ID-TAKEN');
    const metrics = await (await fetch(`${h.http}/metrics`)).text();
    expect(metrics).toMatch(/herald_connections\{protocol="peerjs"\} [12]/);
    expect(metrics).toMatch(/herald_errors_total\{code="conflict",protocol="peerjs"\} 1/);
    const listed = await (await fetch(`${h.http}/api/peerjs/peers`)).json();
    expect(listed.peers).toContain(a.id);
    expect(listed.instance).toBe(h.herald.hub.instanceId);
  });
});
