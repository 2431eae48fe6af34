import { SignJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHerald, type Running } from '../helpers/herald.js';
import { JsonClient, expectError, uid } from '../helpers/json-client.js';
import { TestSocket, refusedStatus } from '../helpers/socket.js';

/**
 * Findings 5-7 of the security probe: a session kept the rights of its first token, peer
 * ids were first come first served, and a `|` in a seed reader id forged frames.
 */

const SECRET = '0123456789abcdef0123';
type Role = 'broadcaster' | 'viewer' | 'peer' | 'admin';
function mint(sub: string, room: string, roles: Role[], exp = Math.floor(Date.now() / 1000) + 600): Promise<string> {
  return new SignJWT({ room, roles }).setProtectedHeader({ alg: 'HS256' }).setSubject(sub).setExpirationTime(exp).sign(new TextEncoder().encode(SECRET));
}

let server: Running;
let open: Running;
beforeAll(async () => {
  server = await startHerald({ secret: SECRET, resumeGraceMs: 10_000 });
  open = await startHerald({});
});
afterAll(async () => {
  await server.stop();
  await open.stop();
});

async function client(token: string, hello: Record<string, unknown> = {}): Promise<JsonClient> {
  const c = await JsonClient.open(server.ws, { headers: { Authorization: `Bearer ${token}` } });
  await c.hello(hello);
  return c;
}

describe('the grant in force is the current token (finding 5)', () => {
  it('resume with a narrower token: rooms it does not allow are left with removed {revoked}; a broadcaster join elsewhere is forbidden', async () => {
    const [a, b, c] = [uid('ra'), uid('rb'), uid('rc')];
    const wide = await client(await mint('eve', '*', ['broadcaster', 'viewer']));
    await wide.join(a, 'viewer');
    await wide.join(b, 'broadcaster');
    const watcher = await client(await mint('wat', b, ['viewer']));
    await watcher.join(b, 'viewer');
    wide.socket.ws.terminate(); // dropped, as when the token ran out (4401) or the network went
    const narrow = await JsonClient.open(server.ws, { headers: { Authorization: `Bearer ${await mint('eve', a, ['viewer'])}` } });
    const welcome = await narrow.hello({ resumeToken: wide.resumeToken });
    expect(welcome.resumed).toBe(true);
    expect(welcome.rooms).toEqual([{ room: a, role: 'viewer' }]);
    expect(await narrow.nextJson('removed')).toEqual({ type: 'removed', room: b, reason: 'revoked' });
    // The room it kept its broadcaster in has none now; its viewers were told.
    expect((await watcher.nextJson('peer-left')).peer).toEqual({ id: wide.peerId, role: 'broadcaster' });
    await expectError(narrow.join(c, 'broadcaster'), 'forbidden');
    await expectError(narrow.join(b, 'broadcaster'), 'forbidden');
    await narrow.close();
    await watcher.close();
  });

  it('replace (same id, new socket) with a narrower token: the same', async () => {
    const [a, b] = [uid('ra'), uid('rb')];
    const id = `eve~${uid('p')}`;
    const wide = await client(await mint('eve', '*', ['broadcaster', 'viewer']), { peerId: id });
    await wide.join(a, 'viewer');
    await wide.join(b, 'broadcaster');
    const narrow = await client(await mint('eve', a, ['viewer']), { peerId: id });
    expect((await wide.socket.closed).code).toBe(4000);
    expect(await narrow.nextJson('removed')).toEqual({ type: 'removed', room: b, reason: 'revoked' });
    await expectError(narrow.join(uid('rc'), 'broadcaster'), 'forbidden');
    await narrow.close();
  });
});

describe('peer ids belong to identities (finding 6)', () => {
  it("another identity can take neither carol's id nor an id in her id space, on either protocol; carol is never locked out", async () => {
    const room = uid('room');
    const mallory = await mint('mallory', room, ['viewer', 'peer']);
    expect(await refusedStatus(`${server.ws}/webrtc/reader/carol?token=${mallory}`)).toBe(403);
    expect(await refusedStatus(`${server.ws}/webrtc/reader/carol~phone?token=${mallory}`)).toBe(403);
    const m = await JsonClient.open(server.ws, { headers: { Authorization: `Bearer ${mallory}` } });
    await expectError(m.hello({ peerId: 'carol' }), 'forbidden');
    await expectError(m.hello({ peerId: 'carol~laptop' }), 'forbidden');
    // Carol gets her ids on both protocols.
    const carol = await client(await mint('carol', room, ['peer']), { peerId: 'carol' });
    expect(carol.peerId).toBe('carol');
    const reader = await TestSocket.open(`${server.ws}/webrtc/reader/carol~phone?token=${await mint('carol', room, ['viewer'])}`);
    reader.send(`join|${room}`);
    await carol.join(room, 'peer');
    m.socket.ws.close();
    reader.ws.close();
    await carol.close();
  });

  it('an id the server picks lies in the identity\'s own id space, also for a sub that is no valid id', async () => {
    const dave = await client(await mint('dave', '*', ['peer']));
    expect(dave.peerId).toMatch(/^dave~[A-Za-z0-9_-]{16}$/);
    const odd = await client(await mint('auth0|12345', '*', ['peer']));
    expect(odd.peerId).toMatch(/^~[A-Za-z0-9_-]{16}~[A-Za-z0-9_-]{16}$/);
    // ...and that identity may reconnect under it.
    const again = await client(await mint('auth0|12345', '*', ['peer']), { peerId: odd.peerId });
    expect(again.peerId).toBe(odd.peerId);
    expect((await odd.socket.closed).code).toBe(4000);
    await dave.close();
    await again.close();
  });
});

describe('seed ids (finding 7)', () => {
  it("a reader id with '|' or a control character is closed with 1008 and a reason; the sender never sees it", async () => {
    const room = uid('room');
    const sender = await TestSocket.open(`${open.ws}/webrtc/sender/${room}`);
    const alice = await TestSocket.open(`${open.ws}/webrtc/reader/alice-${room}`);
    alice.send(`join|${room}`);
    expect(await sender.nextStarting('join|')).toBe(`join|alice-${room}`);
    for (const bad of [`alice-${room}|x`, 'a\u0000b', 'a\rb', 'a\nb']) {
      const s = new TestSocket(`${open.ws}/webrtc/reader/${encodeURIComponent(bad)}`);
      const closed = await s.closed;
      expect(closed.code).toBe(1008);
      expect(closed.reason).toMatch(/reader id/);
    }
    // A room id with '|' on the sender path, or in a reader's join, is refused too.
    expect((await new TestSocket(`${open.ws}/webrtc/sender/${encodeURIComponent('r|x')}`).closed).code).toBe(1008);
    alice.send('join|r\u0001x');
    expect(await alice.nextStarting('error|')).toMatch(/^error\|bad-frame\|room id may not contain control characters/);
    // Alice is still alice to the sender: nobody forged a leave for her.
    sender.send(`offer|alice-${room}|still`);
    expect(await alice.next((m) => m.endsWith('|still'))).toBe(`offer|${room}|still`);
    expect(sender.received.filter((m) => m.startsWith('leave|'))).toEqual([]);
    sender.ws.close();
    alice.ws.close();
  });
});
