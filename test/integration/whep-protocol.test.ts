import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Tokens } from '../../src/auth/tokens.js';
import { startHerald, type Running } from '../helpers/herald.js';
import { waitFor } from '../helpers/instances.js';
import { JsonClient, uid } from '../helpers/json-client.js';
import { TestSocket } from '../helpers/socket.js';
import { tokenMinter } from '../helpers/tokens.js';
import { answerFor, answerNextOffer, OFFER, patchFrag, postOffer } from '../helpers/whep.js';

/**
 * WHEP (docs/whep.md) against a running server, every status of the resource: the
 * broadcaster is a JSON-protocol client that answers WHEP offers as the SDK does.
 */

const SECRET = 'whep-test-secret-0123456789';
const mint = tokenMinter(SECRET);
let open: Running;
let tokened: Running;
const clients: JsonClient[] = [];

beforeAll(async () => {
  open = await startHerald({
    maxPeersPerRoom: 3,
    iceServers: JSON.stringify([{ urls: ['stun:127.0.0.1:3478', 'stun:127.0.0.2:3478'] }]),
    turnSecret: 'turn-secret',
    turnUrls: 'turn:127.0.0.1:3478?transport=udp',
    allowedOrigins: 'http://player.test',
  });
  tokened = await startHerald({ secret: SECRET, whepMaxSessions: 2 });
});

afterAll(async () => {
  for (const c of clients) c.socket.ws.close();
  await Promise.all([open?.stop(), tokened?.stop()]);
});

async function broadcaster(server: Running, room: string): Promise<JsonClient> {
  const token = server === tokened ? `?token=${await mint(uid('b'), room, ['broadcaster'])}` : '';
  const c = new JsonClient(await TestSocket.open(`${server.ws}/ws${token}`));
  await c.hello();
  clients.push(c);
  await c.join(room, 'broadcaster');
  return c;
}

/** POSTs an offer, answers it as the broadcaster, and returns the 201 and the player's peer id. */
async function play(server: Running, room: string, b: JsonClient, headers: Record<string, string> = {}) {
  const tag = uid('t');
  const [res, { viewer }] = await Promise.all([postOffer(server.http, room, { headers }), answerNextOffer(b, room, tag)]);
  return { res, viewer, tag, url: `${server.http}${res.headers.get('location')}` };
}

describe('WHEP endpoint', () => {
  it('answers a preflight with Accept-Post and CORS headers, no token needed', async () => {
    for (const server of [open, tokened]) {
      const res = await fetch(`${server.http}/whep/room`, {
        method: 'OPTIONS',
        headers: { Origin: 'http://player.test', 'Access-Control-Request-Method': 'POST', 'Access-Control-Request-Headers': 'content-type, authorization' },
      });
      expect([200, 204]).toContain(res.status);
      expect(res.headers.get('accept-post')).toBe('application/sdp');
      expect(res.headers.get('access-control-allow-origin')).toBe('http://player.test');
      expect(res.headers.get('access-control-allow-methods')).toMatch(/POST/);
      expect(res.headers.get('access-control-allow-headers')).toMatch(/authorization/i);
      expect(res.headers.get('access-control-expose-headers')).toMatch(/Location.*ETag.*Link/);
    }
    // A plain OPTIONS (no preflight) on the session URL too.
    const plain = await fetch(`${open.http}/whep/room/whep-AAAAAAAAAAAAAAAAAAAAAA`, { method: 'OPTIONS' });
    expect([200, 204]).toContain(plain.status);
    expect(plain.headers.get('accept-post')).toBe('application/sdp');
  });

  it('POST: the broadcaster answers a marked WHEP viewer; 201 with the SDP, Location, ETag, one Link per ICE server', async () => {
    const room = uid('whep');
    const b = await broadcaster(open, room);
    const joined = b.nextWhere('peer-joined', (m) => m.room === room);
    const { res, viewer, tag } = await play(open, room, b, { Origin: 'http://player.test' });
    expect((await joined).peer).toEqual({ id: viewer, role: 'viewer', whep: true });
    expect(res.status).toBe(201);
    expect(res.headers.get('content-type')).toBe('application/sdp');
    expect(await res.text()).toBe(answerFor(tag));
    expect(res.headers.get('location')).toBe(`/whep/${room}/${viewer}`);
    expect(res.headers.get('etag')).toMatch(/^"[A-Za-z0-9_-]+"$/);
    expect(res.headers.get('access-control-allow-origin')).toBe('http://player.test');
    expect(res.headers.get('access-control-expose-headers')).toMatch(/Location.*ETag.*Link/);
    const links = res.headers.get('link')!.split(/,\s*(?=<)/);
    expect(links).toHaveLength(3);
    expect(links[0]).toBe('<stun:127.0.0.1:3478>; rel="ice-server"');
    expect(links[1]).toBe('<stun:127.0.0.2:3478>; rel="ice-server"');
    // TURN REST credentials, minted as for SDK clients: <expiry>:<identity>.
    expect(links[2]).toMatch(/^<turn:127\.0\.0\.1:3478\?transport=udp>; rel="ice-server"; username="\d+:anonymous"; credential="[A-Za-z0-9+/=]+"; credential-type="password"$/);
    // The session counts as a WHEP connection in /metrics.
    const metrics = await (await fetch(`${open.http}/metrics`)).text();
    expect(Number(/^herald_connections\{protocol="whep"\} (\d+)$/m.exec(metrics)?.[1])).toBeGreaterThanOrEqual(1);
  });

  it('the offer reaches the broadcaster as signal data marked whep, and candidates of a PATCH follow it', async () => {
    const room = uid('whep');
    const b = await broadcaster(open, room);
    const tag = uid('t');
    const [res, { viewer, data }] = await Promise.all([postOffer(open.http, room), answerNextOffer(b, room, tag)]);
    expect(data).toEqual({ description: { type: 'offer', sdp: OFFER }, whep: true });
    const url = `${open.http}${res.headers.get('location')}`;
    // whip-whep sends no If-Match: accepted.
    const patched = await patchFrag(url);
    expect(patched.status).toBe(204);
    expect(patched.headers.get('access-control-expose-headers')).toMatch(/Location.*ETag.*Link/);
    const cand = await b.nextWhere('signal', (m) => m.from === viewer && m.data?.candidate?.candidate?.startsWith('candidate:'));
    expect(cand.data).toEqual({ candidate: { candidate: 'candidate:1 1 udp 2113937151 127.0.0.1 50000 typ host', sdpMid: '0' }, whep: true });
    // The matching ETag is accepted; another one is 412; an ICE restart (If-Match: *) 422.
    expect((await patchFrag(url, { headers: { 'If-Match': res.headers.get('etag')! } })).status).toBe(204);
    expect((await patchFrag(url, { headers: { 'If-Match': '"other"' } })).status).toBe(412);
    expect((await patchFrag(url, { headers: { 'If-Match': '*' } })).status).toBe(422);
    // Another content type: 415; not a fragment: 400.
    expect((await patchFrag(url, { headers: { 'Content-Type': 'application/sdp' } })).status).toBe(415);
    expect((await patchFrag(url, { headers: { 'Content-Type': 'text/plain' } })).status).toBe(415);
    expect((await patchFrag(url, { body: 'hello there' })).status).toBe(400);
    // An unknown session: 404.
    expect((await patchFrag(`${open.http}/whep/${room}/whep-BBBBBBBBBBBBBBBBBBBBBB`)).status).toBe(404);
    expect((await patchFrag(`${open.http}/whep/${room}/not-a-session`)).status).toBe(404);
  });

  it('DELETE: 200 and the broadcaster hears the viewer leave; a second DELETE is 404', async () => {
    const room = uid('whep');
    const b = await broadcaster(open, room);
    const { viewer, url } = await play(open, room, b);
    const del = await fetch(url, { method: 'DELETE' });
    expect(del.status).toBe(200);
    expect(del.headers.get('access-control-expose-headers')).toMatch(/Location.*ETag.*Link/);
    const left = await b.nextWhere('peer-left', (m) => m.peer.id === viewer);
    expect(left).toMatchObject({ room, peer: { id: viewer, role: 'viewer', whep: true }, reason: 'left' });
    expect((await fetch(url, { method: 'DELETE' })).status).toBe(404);
    expect((await patchFrag(url)).status).toBe(404);
    // A DELETE cannot reach a member that is not a WHEP session (here: the broadcaster).
    expect((await fetch(`${open.http}/whep/${room}/${b.peerId}`, { method: 'DELETE' })).status).toBe(404);
  });

  it('the broadcaster leaving ends its WHEP sessions', async () => {
    const room = uid('whep');
    const b = await broadcaster(open, room);
    const { url } = await play(open, room, b);
    const before = open.herald.whep.size;
    await b.leave(room);
    await waitFor('the WHEP session to end', () => open.herald.whep.size === before - 1);
    expect((await fetch(url, { method: 'DELETE' })).status).toBe(404);
  });

  it('a broadcaster that drops the player ({whep: "end"}) ends its session', async () => {
    const room = uid('whep');
    const b = await broadcaster(open, room);
    const { viewer, url } = await play(open, room, b);
    b.signalNoAck(room, viewer, { whep: 'end' });
    await b.nextWhere('peer-left', (m) => m.peer.id === viewer);
    expect((await fetch(url, { method: 'DELETE' })).status).toBe(404);
  });

  it('a drain ends the WHEP sessions the instance holds', async () => {
    const server = await startHerald({ drainGraceMs: 0 });
    const room = uid('drain');
    const b = await broadcaster(server, room);
    const { viewer } = await play(server, room, b);
    expect(server.herald.whep.size).toBe(1);
    await server.stop();
    expect(server.herald.whep.size).toBe(0);
    expect(server.herald.hub.isHeld(viewer)).toBe(false);
  });
});

describe('WHEP errors (the server keeps serving after each)', () => {
  it('409 with Retry-After when the room has no broadcaster', async () => {
    const res = await postOffer(open.http, uid('empty'));
    expect(res.status).toBe(409);
    expect(Number(res.headers.get('retry-after'))).toBeGreaterThan(0);
    expect(res.headers.get('access-control-expose-headers')).toMatch(/Location.*ETag.*Link/);
    expect((await res.json()).error).toBe('no-broadcaster');
  });

  it('409 at once when the broadcaster is a seed-protocol sender, which cannot answer a player', async () => {
    const room = uid('seed');
    const sender = await TestSocket.open(`${open.ws}/webrtc/sender/${room}`);
    try {
      await waitFor('the seed sender to be the broadcaster', () => open.herald.cluster.room(room)?.broadcaster !== undefined);
      const res = await postOffer(open.http, room);
      expect(res.status).toBe(409);
      expect((await res.json()).message).toMatch(/seed protocol/);
    } finally {
      sender.ws.close();
    }
  });

  it('415 for another content type, 400 for a body that is not SDP, 413 past 64 KiB', async () => {
    const room = uid('whep');
    await broadcaster(open, room);
    expect((await postOffer(open.http, room, { headers: { 'Content-Type': 'application/json' }, body: '{}' })).status).toBe(415);
    expect((await postOffer(open.http, room, { headers: { 'Content-Type': 'text/plain' } })).status).toBe(415);
    expect((await postOffer(open.http, room, { body: '' })).status).toBe(400);
    expect((await postOffer(open.http, room, { body: 'not sdp at all' })).status).toBe(400);
    // SDP without an audio or video section is no offer to play.
    expect((await postOffer(open.http, room, { body: 'v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n' })).status).toBe(400);
    const big = OFFER + `a=x-pad:${'x'.repeat(64 * 1024)}\r\n`;
    expect((await postOffer(open.http, room, { body: big })).status).toBe(413);
    expect(open.herald.hub.isHeld('whep')).toBe(false);
  });

  it('503 with Retry-After over the viewer cap (HERALD_MAX_PEERS_PER_ROOM), then plays again when a place is free', async () => {
    const room = uid('cap');
    const b = await broadcaster(open, room); // cap 3: the broadcaster and two viewers
    const first = await play(open, room, b);
    const second = await play(open, room, b);
    expect([first.res.status, second.res.status]).toEqual([201, 201]);
    const full = await postOffer(open.http, room);
    expect(full.status).toBe(503);
    expect(Number(full.headers.get('retry-after'))).toBeGreaterThan(0);
    expect((await full.json()).error).toBe('room-full');
    expect((await fetch(first.url, { method: 'DELETE' })).status).toBe(200);
    expect((await play(open, room, b)).res.status).toBe(201);
  });

  it('504 when the broadcaster does not answer in time; the viewer is gone again', async () => {
    // Its own server with a short wait: the others' broadcasters answer within the default 10 s.
    const server = await startHerald({ whepAnswerTimeoutMs: 1000 });
    try {
      const room = uid('mute');
      const b = await broadcaster(server, room);
      const res = await postOffer(server.http, room);
      expect(res.status).toBe(504);
      expect((await res.json()).error).toBe('timeout');
      const offer = await b.nextWhere('signal', (m) => m.data?.whep === true);
      await b.nextWhere('peer-left', (m) => m.peer.id === offer.from);
      // It still serves: the next offer is answered.
      const tag = uid('t');
      const [again] = await Promise.all([postOffer(server.http, room), answerNextOffer(b, room, tag)]);
      expect(again.status).toBe(201);
    } finally {
      await server.stop();
    }
  });

  it('a player that closes its POST before the answer ends its session: the broadcaster hears it leave', async () => {
    const room = uid('abort');
    const b = await broadcaster(open, room);
    const hangUp = new AbortController();
    const post = fetch(`${open.http}/whep/${room}`, { method: 'POST', headers: { 'Content-Type': 'application/sdp' }, body: OFFER, signal: hangUp.signal });
    const offer = await b.nextWhere('signal', (m) => m.data?.whep === true);
    hangUp.abort();
    await expect(post).rejects.toThrow();
    await b.nextWhere('peer-left', (m) => m.peer.id === offer.from);
    expect(open.herald.hub.isHeld(offer.from)).toBe(false);
  });

  it('400 for a malformed room, 404 for a session of another room, 413 for a PATCH of more than 64 candidates', async () => {
    expect((await postOffer(open.http, 'x'.repeat(200))).status).toBe(400);
    const room = uid('whep');
    const b = await broadcaster(open, room);
    const { viewer, url } = await play(open, room, b);
    expect((await patchFrag(`${open.http}/whep/${uid('other')}/${viewer}`)).status).toBe(404);
    expect((await fetch(`${open.http}/whep/${uid('other')}/${viewer}`, { method: 'DELETE' })).status).toBe(404);
    const many = 'm=video 9 UDP/TLS/RTP/SAVPF 0\r\na=mid:0\r\n' + Array.from({ length: 65 }, (_, i) => `a=candidate:${i} 1 udp 1 127.0.0.1 ${5000 + i} typ host\r\n`).join('');
    expect((await patchFrag(url, { body: many })).status).toBe(413);
    expect((await fetch(url, { method: 'DELETE' })).status).toBe(200);
  });

  it('origins follow HERALD_ALLOWED_ORIGINS: another origin gets 403 and no CORS headers', async () => {
    const room = uid('whep');
    await broadcaster(open, room);
    const res = await postOffer(open.http, room, { headers: { Origin: 'http://evil.test' } });
    expect(res.status).toBe(403);
    expect(res.headers.get('access-control-allow-origin')).toBeNull();
    const pre = await fetch(`${open.http}/whep/${room}`, { method: 'OPTIONS', headers: { Origin: 'http://evil.test', 'Access-Control-Request-Method': 'POST' } });
    expect(pre.headers.get('access-control-allow-origin')).toBeNull();
  });
});

describe('WHEP with tokens (HERALD_SECRET)', () => {
  it('401 with WWW-Authenticate: Bearer without a token or with a bad one; 403 for another room or no viewer role', async () => {
    const room = uid('tok');
    await broadcaster(tokened, room);
    const none = await postOffer(tokened.http, room);
    expect(none.status).toBe(401);
    expect(none.headers.get('www-authenticate')).toMatch(/^Bearer/);
    const forged = await postOffer(tokened.http, room, { headers: { Authorization: `Bearer ${await mint('v', room, ['viewer'], 'another-secret-0123456789')}` } });
    expect(forged.status).toBe(401);
    expect(forged.headers.get('www-authenticate')).toMatch(/^Bearer/);
    expect((await postOffer(tokened.http, room, { headers: { Authorization: 'Bearer nonsense' } })).status).toBe(401);
    const otherRoom = await postOffer(tokened.http, room, { headers: { Authorization: `Bearer ${await mint('v', 'elsewhere', ['viewer'])}` } });
    expect(otherRoom.status).toBe(403);
    const noViewer = await postOffer(tokened.http, room, { headers: { Authorization: `Bearer ${await mint('v', room, ['broadcaster'])}` } });
    expect(noViewer.status).toBe(403);
  }, 30_000);

  it('plays with a viewer token; PATCH and DELETE need it too; the TURN identity is the token sub', async () => {
    const room = uid('tok');
    const b = await broadcaster(tokened, room);
    const auth = { Authorization: `Bearer ${await mint('carol', room, ['viewer'])}` };
    const { res, viewer, url } = await play(tokened, room, b, auth);
    expect(res.status).toBe(201);
    expect(viewer).toMatch(/^carol~whep-/);
    expect((await patchFrag(url)).status).toBe(401);
    expect((await patchFrag(url, { headers: auth })).status).toBe(204);
    expect((await fetch(url, { method: 'DELETE' })).status).toBe(401);
    expect((await fetch(url, { method: 'DELETE', headers: { Authorization: `Bearer ${await mint('carol', 'elsewhere', ['viewer'])}` } })).status).toBe(403);
    expect((await fetch(url, { method: 'DELETE', headers: auth })).status).toBe(200);
    expect((await fetch(url, { method: 'DELETE', headers: auth })).status).toBe(404);
  });

  it('a session ends when its token expires, as a WebSocket does', async () => {
    const room = uid('tok');
    const b = await broadcaster(tokened, room);
    const short = await new Tokens(SECRET).mint({ sub: 'erin', room, roles: ['viewer'], ttl: 2 });
    const { viewer, url } = await play(tokened, room, b, { Authorization: `Bearer ${short}` });
    const left = await b.nextWhere('peer-left', (m) => m.peer.id === viewer, 10_000);
    expect(left.reason).toBe('revoked');
    expect((await fetch(url, { method: 'DELETE', headers: { Authorization: `Bearer ${await mint('erin', room, ['viewer'])}` } })).status).toBe(404);
  });

  it('503 with Retry-After past HERALD_WHEP_MAX_SESSIONS on the instance (here 2)', async () => {
    const room = uid('tok');
    const b = await broadcaster(tokened, room);
    const auth = { Authorization: `Bearer ${await mint('dave', room, ['viewer'])}` };
    const held = [await play(tokened, room, b, auth), await play(tokened, room, b, auth)];
    const over = await postOffer(tokened.http, room, { headers: auth });
    expect(over.status).toBe(503);
    expect(Number(over.headers.get('retry-after'))).toBeGreaterThan(0);
    for (const { url } of held) expect((await fetch(url, { method: 'DELETE', headers: auth })).status).toBe(200);
    expect((await play(tokened, room, b, auth)).res.status).toBe(201);
  });
});
