import { execFile } from 'node:child_process';
import { createHmac } from 'node:crypto';
import { existsSync } from 'node:fs';
import { Writable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { SignJWT } from 'jose';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Tokens } from '../../src/auth/tokens.js';
import { loadConfig } from '../../src/config.js';
import { Herald } from '../../src/server.js';
import { startHerald, type Running } from '../helpers/herald.js';
import { JsonClient, expectError, uid } from '../helpers/json-client.js';
import { TestSocket, refusedStatus } from '../helpers/socket.js';

const SECRET = '0123456789abcdef0123';
const KEY = new TextEncoder().encode(SECRET);
type Role = 'broadcaster' | 'viewer' | 'peer' | 'admin';

/** Mints with jose directly (not Tokens.mint), so the server is checked against the JWT spec. */
function mint(sub: string, room: string, roles: Role[], opts: { exp?: number; key?: Uint8Array } = {}): Promise<string> {
  return new SignJWT({ room, roles })
    .setProtectedHeader({ alg: 'HS256' })
    .setSubject(sub)
    .setExpirationTime(opts.exp ?? Math.floor(Date.now() / 1000) + 600)
    .sign(opts.key ?? KEY);
}
const expired = (sub: string, room: string, roles: Role[]) => mint(sub, room, roles, { exp: Math.floor(Date.now() / 1000) - 60 });
const forged = (sub: string, room: string, roles: Role[]) => mint(sub, room, roles, { key: new TextEncoder().encode('not-the-secret-at-all') });


/** A /ws socket that must be refused with a typed error and then a close code. */
async function jsonRefusal(base: string, query = '', headers: Record<string, string> = {}) {
  const s = await TestSocket.open(`${base}/ws${query}`, { headers });
  const error = await s.nextJson('error');
  const closed = await s.closed;
  return { error, closed };
}

describe('tokens on both protocols', () => {
  let server: Running;
  beforeAll(async () => {
    server = await startHerald({ secret: SECRET });
  });
  afterAll(() => server.stop());

  /** A seed sender and reader with valid tokens, joined; returns both after a round trip. */
  async function seedPair(room = uid('room'), user = uid('u')) {
    const sender = await TestSocket.open(`${server.ws}/webrtc/sender/${room}?token=${await mint(`s-${room}`, room, ['broadcaster'])}`);
    const reader = await TestSocket.open(`${server.ws}/webrtc/reader/${user}?token=${await mint(user, room, ['viewer'])}`);
    reader.send(`join|${room}`);
    expect(await sender.nextStarting('join|')).toBe(`join|${user}`);
    sender.send(`offer|${user}|sdp-1`);
    expect(await reader.next()).toBe(`offer|${room}|sdp-1`);
    reader.send(`answer|${room}|sdp-2`);
    expect(await sender.next()).toBe(`answer|${user}|sdp-2`);
    return { sender, reader, room, user };
  }

  it('a connection is closed with 4401 when its token expires, on both protocols; others stay', async () => {
    const room = uid('exp');
    const soon = Math.floor(Date.now() / 1000) + 5; // room for a loaded box to connect all four first
    const reader = await TestSocket.open(`${server.ws}/webrtc/reader/short-r~${uid('u')}?token=${await mint('short-r', room, ['viewer'], { exp: soon })}`);
    const viewer = new JsonClient(await TestSocket.open(`${server.ws}/ws?token=${await mint('short-j', room, ['viewer'], { exp: soon })}`));
    await viewer.hello();
    await viewer.join(room, 'viewer');
    const { sender, reader: longReader, room: longRoom, user } = await seedPair();
    const [seedClosed, jsonClosed] = await Promise.all([reader.closed, viewer.closed]);
    expect(seedClosed).toEqual({ code: 4401, reason: 'token expired' });
    expect(jsonClosed).toEqual({ code: 4401, reason: 'token expired' });
    // A pair whose tokens are still good keeps relaying.
    sender.send(`offer|${user}|after`);
    expect(await longReader.next()).toBe(`offer|${longRoom}|after`);
    sender.ws.close();
    longReader.ws.close();
  });

  describe('seed protocol', () => {
    it('valid tokens (?token=) connect and relay both ways', async () => {
      const { sender, reader } = await seedPair();
      sender.ws.close();
      reader.ws.close();
    });

    it('a token in Authorization: Bearer works too', async () => {
      const room = uid('room');
      const sender = await TestSocket.open(`${server.ws}/webrtc/sender/${room}`, {
        headers: { Authorization: `Bearer ${await mint('s', room, ['broadcaster'])}` },
      });
      const reader = await TestSocket.open(`${server.ws}/webrtc/reader/r~${uid('u')}`, {
        headers: { Authorization: `Bearer ${await mint('r', room, ['viewer'])}` },
      });
      reader.send(`join|${room}`);
      await sender.nextStarting('join|');
      sender.ws.close();
      reader.ws.close();
    });

    it('no token: 401 at the upgrade, for sender and reader', async () => {
      expect(await refusedStatus(`${server.ws}/webrtc/sender/${uid('room')}`)).toBe(401);
      expect(await refusedStatus(`${server.ws}/webrtc/reader/${uid('u')}`)).toBe(401);
    });

    it('an expired token: 401', async () => {
      const room = uid('room');
      expect(await refusedStatus(`${server.ws}/webrtc/sender/${room}?token=${await expired('s', room, ['broadcaster'])}`)).toBe(401);
      expect(await refusedStatus(`${server.ws}/webrtc/reader/${uid('u')}?token=${await expired('r', room, ['viewer'])}`)).toBe(401);
    });

    it('a bad signature: 401 (query or header)', async () => {
      const room = uid('room');
      expect(await refusedStatus(`${server.ws}/webrtc/sender/${room}?token=${await forged('s', room, ['broadcaster'])}`)).toBe(401);
      expect(
        await refusedStatus(`${server.ws}/webrtc/reader/${uid('u')}`, { Authorization: `Bearer ${await forged('r', room, ['viewer'])}` }),
      ).toBe(401);
    });

    it("a sender whose token is for another room is refused at the upgrade with 403", async () => {
      const room = uid('room');
      expect(await refusedStatus(`${server.ws}/webrtc/sender/${room}?token=${await mint('s', 'elsewhere', ['broadcaster'])}`)).toBe(403);
      // ...and the room was not taken: the rightful sender gets it.
      const { sender } = await seedPair(room);
      sender.ws.close();
    });

    it('the wrong role is refused at the upgrade with 403: a sender needs broadcaster, a reader needs viewer', async () => {
      const room = uid('room');
      expect(await refusedStatus(`${server.ws}/webrtc/sender/${room}?token=${await mint('s', room, ['viewer', 'peer', 'admin'])}`)).toBe(403);
      expect(await refusedStatus(`${server.ws}/webrtc/reader/${uid('u')}?token=${await mint('r', room, ['broadcaster', 'peer'])}`)).toBe(403);
    });

    it("a reader joining a room its token is not for gets error|forbidden, stays open, and can join its own room", async () => {
      const room = uid('room');
      const user = uid('u');
      const sender = await TestSocket.open(`${server.ws}/webrtc/sender/${room}?token=${await mint('s', room, ['broadcaster'])}`);
      const other = await TestSocket.open(`${server.ws}/webrtc/sender/elsewhere-${room}?token=${await mint('s2', `elsewhere-${room}`, ['broadcaster'])}`);
      const reader = await TestSocket.open(`${server.ws}/webrtc/reader/${user}?token=${await mint(user, room, ['viewer'])}`);
      reader.send(`join|elsewhere-${room}`);
      expect(await reader.next()).toMatch(/^error\|forbidden\|/);
      reader.send(`join|${room}`);
      expect(await sender.nextStarting('join|')).toBe(`join|${user}`);
      sender.send(`offer|${user}|x`);
      expect(await reader.next()).toBe(`offer|${room}|x`);
      // The other room's sender never heard of the reader.
      other.send(`offer|${user}|y`);
      expect(await other.next()).toMatch(/^error\|no-such-peer\|/);
      expect(other.received.filter((m) => m.startsWith('join|'))).toEqual([]);
      for (const s of [sender, other, reader]) s.ws.close();
    });

    it('another identity cannot take a seed reader id: the upgrade is refused with 403; the holder keeps relaying', async () => {
      const { sender, reader, room, user } = await seedPair();
      expect(await refusedStatus(`${server.ws}/webrtc/reader/${user}?token=${await mint('mallory', room, ['viewer'])}`)).toBe(403);
      sender.send(`offer|${user}|still-mine`);
      expect(await reader.next()).toBe(`offer|${room}|still-mine`);
      reader.send(`answer|${room}|ok`);
      expect(await sender.next()).toBe(`answer|${user}|ok`);
      expect(sender.received.some((m) => m.startsWith('leave|'))).toBe(false);
      sender.ws.close();
      reader.ws.close();
    });

    it('another identity cannot take a room from its sender: error|conflict and 4009', async () => {
      const { sender, reader, room, user } = await seedPair();
      const thief = new TestSocket(`${server.ws}/webrtc/sender/${room}?token=${await mint('mallory', room, ['broadcaster'])}`);
      expect(await thief.next()).toMatch(/^error\|conflict\|/);
      expect((await thief.closed).code).toBe(4009);
      sender.send(`offer|${user}|still-mine`);
      expect(await reader.next()).toBe(`offer|${room}|still-mine`);
      expect(reader.received).not.toContain('leaveline');
      sender.ws.close();
      reader.ws.close();
    });

    it('the same identity replaces its reader (page refresh): the old socket is closed 4000 and the new one relays', async () => {
      const { sender, reader, room, user } = await seedPair();
      const again = await TestSocket.open(`${server.ws}/webrtc/reader/${user}?token=${await mint(user, room, ['viewer'])}`);
      expect((await reader.closed).code).toBe(4000);
      sender.send(`offer|${user}|to-new`);
      expect(await again.next()).toBe(`offer|${room}|to-new`);
      sender.ws.close();
      again.ws.close();
    });
  });

  describe('JSON protocol (/ws)', () => {
    async function client(sub: string, room: string, roles: Role[], hello: Record<string, unknown> = {}) {
      const c = await JsonClient.open(server.ws, { headers: { Authorization: `Bearer ${await mint(sub, room, roles)}` } });
      await c.hello(hello);
      return c;
    }

    /** A broadcaster and a viewer joined to `room`, after a signal round trip. */
    async function jsonPair(room = uid('room')) {
      const b = await client(uid('b'), room, ['broadcaster']);
      await b.join(room, 'broadcaster');
      const v = await client(uid('v'), room, ['viewer']);
      await v.join(room, 'viewer');
      await b.signal(room, v.peerId, { tag: 'o' });
      expect((await v.nextSignal('o')).from).toBe(b.peerId);
      await v.signal(room, b.peerId, { tag: 'a' });
      expect((await b.nextSignal('a')).from).toBe(v.peerId);
      return { b, v, room };
    }

    it('valid tokens (Bearer or ?token=) connect, join and relay', async () => {
      const { b, v, room } = await jsonPair();
      const q = new JsonClient(await TestSocket.open(`${server.ws}/ws?token=${await mint('q', room, ['viewer'])}`));
      await q.hello();
      await q.join(room, 'viewer');
      await q.signal(room, b.peerId, { tag: 'q' });
      expect((await b.nextSignal('q')).from).toBe(q.peerId);
      for (const c of [b, v, q]) await c.close();
    });

    it('no token: a typed unauthorized error, then close 4401', async () => {
      const { error, closed } = await jsonRefusal(server.ws);
      expect(error).toMatchObject({ type: 'error', code: 'unauthorized' });
      expect(closed.code).toBe(4401);
    });

    it('an expired token: unauthorized, 4401', async () => {
      const { error, closed } = await jsonRefusal(server.ws, `?token=${await expired('x', '*', ['peer'])}`);
      expect(error.code).toBe('unauthorized');
      expect(error.message).toMatch(/expired/);
      expect(closed.code).toBe(4401);
    });

    it('a bad signature: unauthorized, 4401 (header or query)', async () => {
      const viaHeader = await jsonRefusal(server.ws, '', { Authorization: `Bearer ${await forged('x', '*', ['peer'])}` });
      expect(viaHeader.error.code).toBe('unauthorized');
      expect(viaHeader.closed.code).toBe(4401);
      const viaQuery = await jsonRefusal(server.ws, `?token=${await forged('x', '*', ['peer'])}`);
      expect(viaQuery.error.code).toBe('unauthorized');
      expect(viaQuery.closed.code).toBe(4401);
    });

    it('the wrong room: join answers forbidden, the socket stays open, the right room works', async () => {
      const { b, v, room } = await jsonPair();
      const c = await client('carol', room, ['viewer']);
      await expectError(c.join(`other-${room}`, 'viewer'), 'forbidden');
      await c.join(room, 'viewer');
      await c.signal(room, b.peerId, { tag: 'c' });
      expect((await b.nextSignal('c')).from).toBe(c.peerId);
      for (const x of [b, v, c]) await x.close();
    });

    it('the wrong role: join answers forbidden; the existing broadcaster is not displaced', async () => {
      const { b, v, room } = await jsonPair();
      const c = await client('carol', room, ['viewer', 'admin']);
      await expectError(c.join(room, 'broadcaster'), 'forbidden');
      await expectError(c.join(room, 'peer'), 'forbidden');
      await b.signal(room, v.peerId, { tag: 'after' });
      expect((await v.nextSignal('after')).from).toBe(b.peerId);
      expect(v.pendingJson().filter((m) => m.type === 'peer-left')).toEqual([]);
      for (const x of [b, v, c]) await x.close();
    });

    it("another identity cannot take a peer id: hello answers forbidden; the holder keeps relaying", async () => {
      const room = uid('room');
      const id = `alice~${uid('peer')}`;
      const alice = await client('alice', room, ['peer'], { peerId: id });
      await alice.join(room, 'peer');
      const bob = await client('bob', room, ['peer']);
      await bob.join(room, 'peer');
      const mallory = await JsonClient.open(server.ws, { headers: { Authorization: `Bearer ${await mint('mallory', room, ['peer'])}` } });
      await expectError(mallory.hello({ peerId: id }), 'forbidden');
      // Nor through alice's resume token.
      await expectError(mallory.hello({ resumeToken: alice.resumeToken }), 'not-found');
      await bob.signal(room, id, { tag: 'to-alice' });
      expect((await alice.nextSignal('to-alice')).from).toBe(bob.peerId);
      await alice.signal(room, bob.peerId, { tag: 'to-bob' });
      expect((await bob.nextSignal('to-bob')).from).toBe(id);
      expect(mallory.pendingJson().filter((m) => m.type === 'signal')).toEqual([]);
      for (const x of [alice, bob, mallory]) await x.close();
    });

    it('the same identity takes its peer id over: the old socket is closed 4000 and the rooms carry over', async () => {
      const room = uid('room');
      const id = `alice~${uid('peer')}`;
      const alice = await client('alice', room, ['peer'], { peerId: id });
      await alice.join(room, 'peer');
      const bob = await client('bob', room, ['peer']);
      await bob.join(room, 'peer');
      const again = await client('alice', room, ['peer'], { peerId: id });
      expect((await alice.closed).code).toBe(4000);
      await bob.signal(room, id, { tag: 'to-new' });
      expect((await again.nextSignal('to-new')).from).toBe(bob.peerId);
      for (const x of [bob, again]) await x.close();
    });
  });
});

describe('ICE servers with TURN credentials', () => {
  let server: Running;
  const TURN_SECRET = 'coturn-static-auth-secret';
  beforeAll(async () => {
    server = await startHerald({
      secret: SECRET,
      iceServers: JSON.stringify([{ urls: 'stun:stun.example.org:3478' }]),
      turnSecret: TURN_SECRET,
      turnUrls: 'turn:turn.example.org:3478',
      turnTtlSeconds: 3600,
    });
  });
  afterAll(() => server.stop());

  function checkTurn(servers: any[], sub: string, before: number, after: number) {
    expect(servers[0]).toEqual({ urls: 'stun:stun.example.org:3478' });
    const turn = servers[1];
    expect(turn.urls).toEqual(['turn:turn.example.org:3478']);
    const [expiry, who, ...rest] = turn.username.split(':');
    expect(rest).toEqual([]);
    expect(who).toBe(sub);
    expect(Number(expiry)).toBeGreaterThanOrEqual(Math.floor(before / 1000) + 3600);
    expect(Number(expiry)).toBeLessThanOrEqual(Math.floor(after / 1000) + 3600);
    // Computed independently here: base64(HMAC-SHA1(TURN_SECRET, username)).
    expect(turn.credential).toBe(createHmac('sha1', TURN_SECRET).update(turn.username).digest('base64'));
  }

  it('GET /api/ice-servers needs a token when a secret is set', async () => {
    expect((await fetch(`${server.http}/api/ice-servers`)).status).toBe(401);
    const bad = await fetch(`${server.http}/api/ice-servers`, { headers: { Authorization: `Bearer ${await forged('a', '*', ['viewer'])}` } });
    expect(bad.status).toBe(401);
    const old = await fetch(`${server.http}/api/ice-servers?token=${await expired('a', '*', ['viewer'])}`);
    expect(old.status).toBe(401);
  });

  it("GET /api/ice-servers returns the static list plus TURN credentials for the token's sub", async () => {
    const before = Date.now();
    const res = await fetch(`${server.http}/api/ice-servers`, { headers: { Authorization: `Bearer ${await mint('alice', 'R', ['viewer'])}` } });
    const after = Date.now();
    expect(res.status).toBe(200);
    expect(res.headers.get('cache-control')).toBe('no-store');
    const body = await res.json();
    expect(Object.keys(body)).toEqual(['iceServers']);
    expect(body.iceServers).toHaveLength(2);
    checkTurn(body.iceServers, 'alice', before, after);
  });

  it('the JSON welcome carries the same shape, for the socket token sub', async () => {
    const before = Date.now();
    const c = new JsonClient(await TestSocket.open(`${server.ws}/ws?token=${await mint('bob', 'R', ['peer'])}`));
    const welcome = await c.hello();
    const after = Date.now();
    expect(welcome.iceServers).toHaveLength(2);
    checkTurn(welcome.iceServers, 'bob', before, after);
    await c.close();
  });
});

describe('logs never carry tokens or SDP at info level', () => {
  it('refusals, connections, relays, errors and admin calls log ids, not tokens or SDP bodies', async () => {
    let text = '';
    const sink = new Writable({
      write(chunk, _enc, done) {
        text += chunk.toString();
        done();
      },
    });
    const herald = new Herald(loadConfig({ port: 0, host: '127.0.0.1', secret: SECRET, drainGraceMs: 0, drainDeadlineMs: 2000 }, {}), pino({ level: 'info' }, sink));
    const port = await herald.start();
    const ws = `ws://127.0.0.1:${port}`;
    const SDP = 'v=0\\r\\no=- 4611731400430051336 2 IN IP4 127.0.0.1\\r\\ns=SECRET-SDP-BODY';
    const room = 'logroom';
    const tokens = {
      sender: await mint('s', room, ['broadcaster']),
      reader: await mint('u1', room, ['viewer']),
      json: await mint('j', room, ['viewer']),
      expired: await expired('e', room, ['viewer']),
      forged: await forged('f', room, ['viewer']),
      admin: await mint('op', '*', ['admin']),
      wrongRole: await mint('w', room, ['peer']),
    };
    try {
      const sender = await TestSocket.open(`${ws}/webrtc/sender/${room}?token=${tokens.sender}`);
      const reader = await TestSocket.open(`${ws}/webrtc/reader/u1?token=${tokens.reader}`);
      reader.send(`join|${room}`);
      await sender.nextStarting('join|u1');
      sender.send(`offer|u1|${SDP}`);
      expect(await reader.next()).toBe(`offer|${room}|${SDP}`);
      sender.send(`offer|nobody|${SDP}`);
      expect(await sender.next()).toMatch(/^error\|no-such-peer\|/);
      const j = new JsonClient(await TestSocket.open(`${ws}/ws`, { headers: { Authorization: `Bearer ${tokens.json}` } }));
      await j.hello();
      await j.join(room, 'viewer');
      await j.signal(room, 'sender/' + room, { description: { type: 'answer', sdp: SDP } });
      await sender.next((m) => m.startsWith('answer|'));
      await expectError(j.signal(room, 'nobody', { description: { type: 'offer', sdp: SDP } }), 'not-found');
      await expectError(j.join(`x${room}`, 'viewer'), 'forbidden');
      expect(await refusedStatus(`${ws}/webrtc/reader/u2?token=${tokens.expired}`)).toBe(401);
      expect(await refusedStatus(`${ws}/webrtc/reader/u3?token=${tokens.forged}`)).toBe(401);
      expect(await refusedStatus(`${ws}/webrtc/reader/u4?token=${tokens.wrongRole}`)).toBe(403);
      expect((await jsonRefusal(ws, `?token=${tokens.forged}`)).closed.code).toBe(4401);
      const admin = await fetch(`http://127.0.0.1:${port}/api/rooms?token=${tokens.admin}`);
      expect(admin.status).toBe(200);
      expect((await fetch(`http://127.0.0.1:${port}/api/rooms`, { headers: { Authorization: `Bearer ${tokens.forged}` } })).status).toBe(401);
      await j.close();
      await sender.close();
      expect(await reader.next()).toBe('leaveline');
      await reader.close();
    } finally {
      await herald.stop(undefined, 0);
    }
    // The logs said something about all of this (so the absence checks below mean something)...
    const lines = text.trim().split('\n').map((l) => JSON.parse(l));
    expect(lines.filter((l) => l.msg === 'upgrade refused').length).toBeGreaterThanOrEqual(4);
    expect(lines.some((l) => l.msg === 'connected' && l.peer === 'u1')).toBe(true);
    expect(lines.every((l) => l.level >= 30)).toBe(true);
    // ...and none of it carries a token (nor its signature part) or an SDP body.
    for (const [name, token] of Object.entries(tokens)) {
      expect(text, name).not.toContain(token);
      expect(text, name).not.toContain(token.split('.')[2]!);
    }
    expect(text).not.toContain('SECRET-SDP-BODY');
    expect(text).not.toContain('v=0');
  });
});

describe('herald token (CLI)', () => {
  const CLI = fileURLToPath(new URL('../../dist/cli.js', import.meta.url));
  it('prints a token that verifies with HERALD_SECRET and carries the asked-for claims', async () => {
    expect(existsSync(CLI), 'build first: npx tsc -p tsconfig.json').toBe(true);
    const { stdout } = await promisify(execFile)(process.execPath, [CLI, 'token', '--sub', 'alice', '--room', 'R', '--role', 'viewer', '--ttl', '1h'], {
      env: { ...process.env, HERALD_SECRET: SECRET },
    });
    const jwt = stdout.trim();
    expect(jwt.split('.')).toHaveLength(3);
    const grant = await new Tokens(SECRET).verify(jwt);
    expect(grant.sub).toBe('alice');
    expect(grant.room).toBe('R');
    expect([...grant.roles]).toEqual(['viewer']);
    const exp = JSON.parse(Buffer.from(jwt.split('.')[1]!, 'base64url').toString()).exp;
    expect(exp - Date.now() / 1000).toBeGreaterThan(3500);
    expect(exp - Date.now() / 1000).toBeLessThanOrEqual(3600);
    // It does not verify under another secret.
    await expect(new Tokens('some-other-secret-123').verify(jwt)).rejects.toMatchObject({ code: 'unauthorized' });
  });

  it('fails with one clear line without a secret', async () => {
    const env = { ...process.env };
    delete env.HERALD_SECRET;
    const err: any = await promisify(execFile)(process.execPath, [CLI, 'token', '--sub', 'alice'], { env }).then(
      () => new Error('expected failure'),
      (e) => e,
    );
    expect(err.code).toBe(1);
    expect(err.stderr.trim()).toMatch(/^herald: .*HERALD_SECRET/);
    expect(err.stderr.trim().split('\n')).toHaveLength(1);
  });
});
