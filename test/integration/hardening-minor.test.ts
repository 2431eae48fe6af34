import { connect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHerald, type Running } from '../helpers/herald.js';
import { waitFor } from '../helpers/instances.js';
import { JsonClient, expectError, uid } from '../helpers/json-client.js';
import { TestSocket, type Closed } from '../helpers/socket.js';

/** The minor findings of the security probe, one test each. */

/** The close, or undefined if none came within `ms` (generous: the expected close comes far sooner). */
const closedWithin = (s: TestSocket, ms = 10_000) =>
  Promise.race([s.closed, new Promise<undefined>((r) => setTimeout(r, ms).unref())]) as Promise<Closed | undefined>;

/** A raw HTTP/1.1 exchange, for requests fetch() refuses to make. */
function rawHttp(port: number, request: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = connect(port, '127.0.0.1', () => s.write(request));
    let got = '';
    s.on('data', (d) => {
      got += d;
      if (got.includes('\r\n\r\n')) s.end();
    });
    s.on('close', () => resolve(got));
    s.on('error', reject);
  });
}

describe('join timeout after leaving', () => {
  let server: Running;
  beforeAll(async () => {
    server = await startHerald({ joinTimeoutMs: 400 });
  });
  afterAll(() => server.stop());

  it('json: a connection that joins and then leaves its last room is closed 4408 again', async () => {
    const c = await JsonClient.connect(server.ws);
    await c.join(uid('room'), 'peer');
    await c.leave((await c.join(uid('room2'), 'peer')).room);
    expect(c.socket.ws.readyState).toBe(c.socket.ws.OPEN); // still in the first room
    const first = JSON.parse(c.socket.received.find((m) => m.includes('"role":"peer"'))!).room;
    await c.leave(first);
    expect((await closedWithin(c.socket))?.code).toBe(4408);
  });

  it('seed: a reader unbound because its sender left is closed 4408 if it joins nothing else', async () => {
    const room = uid('room');
    const sender = await TestSocket.open(`${server.ws}/webrtc/sender/${room}`);
    const reader = await TestSocket.open(`${server.ws}/webrtc/reader/${uid('u')}`);
    reader.send(`join|${room}`);
    await sender.nextStarting('join|');
    sender.ws.close();
    expect(await reader.next()).toBe('leaveline');
    expect((await closedWithin(reader))?.code).toBe(4408);
  });
});

/** Drops `c`'s socket as a lost network would, and waits until the server has seen it. */
async function dropped(server: Running, c: JsonClient): Promise<void> {
  const before = server.herald.gateway.connectionCounts().json;
  c.socket.ws.terminate();
  await waitFor('the server to see the drop', () => server.herald.gateway.connectionCounts().json < before);
}

describe('notices queued for a detached peer', () => {
  let server: Running;
  beforeAll(async () => {
    server = await startHerald({ resumeQueueMax: 10, resumeGraceMs: 20_000, joinTimeoutMs: 0 });
  });
  afterAll(() => server.stop());

  it('past resumeQueueMax notices the resume is given up: the peer leaves its rooms, and its token is unknown', async () => {
    const room = uid('room');
    const b = await JsonClient.connect(server.ws);
    await b.join(room, 'broadcaster');
    await dropped(server, b);
    // Viewer churn: each join and leave is a notice for the absent broadcaster.
    for (let i = 0; i < 20; i++) {
      const v = await JsonClient.connect(server.ws);
      await v.join(room, 'viewer');
      await v.close(1000); // final: no resume grace for the viewer
    }
    const again = await JsonClient.open(server.ws);
    await expectError(again.hello({ resumeToken: b.resumeToken }), 'not-found');
    const v = await JsonClient.connect(server.ws);
    expect((await v.join(room, 'viewer')).members).toEqual([]);
    await v.close();
    again.socket.ws.close();
  });

  it('below the cap, a resume still gets every notice in order', async () => {
    const room = uid('room');
    const b = await JsonClient.connect(server.ws);
    await b.join(room, 'broadcaster');
    await dropped(server, b);
    const v = await JsonClient.connect(server.ws);
    await v.join(room, 'viewer');
    await v.close(1000);
    const again = await JsonClient.open(server.ws);
    expect((await again.hello({ resumeToken: b.resumeToken })).resumed).toBe(true);
    expect((await again.nextJson('peer-joined')).peer.id).toBe(v.peerId);
    expect((await again.nextJson('peer-left')).peer.id).toBe(v.peerId);
    await again.close();
  });
});

describe('HTTP edge', () => {
  let server: Running;
  let listed: Running;
  beforeAll(async () => {
    server = await startHerald();
    listed = await startHerald({ adminOrigins: 'http://console.example', trustProxy: 'true' });
  });
  afterAll(async () => {
    await server.stop();
    await listed.stop();
  });

  it('Host: [ gets 400, not a 500', async () => {
    const res = await rawHttp(server.port, 'GET /api/rooms HTTP/1.1\r\nHost: [\r\nConnection: close\r\n\r\n');
    expect(res).toMatch(/^HTTP\/1.1 400/);
    expect(await rawHttp(server.port, 'GET /healthz HTTP/1.1\r\nHost: [\r\nConnection: close\r\n\r\n')).toMatch(/^HTTP\/1.1 400/);
  });

  it('open mode: another site\'s page can neither list rooms nor kick; loopback tools and same-origin pages can', async () => {
    const room = uid('room');
    const p = await JsonClient.connect(server.ws);
    await p.join(room, 'peer');
    const evil = { Origin: 'http://evil.example' };
    expect((await fetch(`${server.http}/api/rooms`, { headers: evil })).status).toBe(403);
    expect((await fetch(`${server.http}/api/rooms/${room}/peers/${p.peerId}`, { method: 'DELETE', headers: evil })).status).toBe(403);
    expect(p.socket.ws.readyState).toBe(p.socket.ws.OPEN);
    expect((await fetch(`${server.http}/api/rooms`, { headers: { Origin: server.http } })).status).toBe(200);
    // Behind a trusted proxy, a page cannot pass for same-origin by adding X-Forwarded-Host.
    expect((await fetch(`${listed.http}/api/rooms`, { headers: { ...evil, 'X-Forwarded-Host': 'evil.example' } })).status).toBe(403);
    expect((await fetch(`${server.http}/api/rooms/${room}`)).status).toBe(200); // curl on the host itself
    // An origin the operator listed may.
    expect((await fetch(`${listed.http}/api/rooms`, { headers: { Origin: 'http://console.example' } })).status).toBe(200);
    expect((await fetch(`${listed.http}/api/rooms`, { headers: evil })).status).toBe(403);
    await p.close();
  });

  it('a duplicate "data" key is forwarded as the value that was validated (the last), so the depth cap holds', async () => {
    const room = uid('room');
    const a = await JsonClient.connect(server.ws);
    const b = await JsonClient.connect(server.ws);
    await a.join(room, 'peer');
    await b.join(room, 'peer');
    const deep = '['.repeat(5000) + ']'.repeat(5000);
    a.send(`{"type":"signal","room":${JSON.stringify(room)},"to":${JSON.stringify(b.peerId)},"data":${deep},"data":{"tag":"last"}}`);
    const got = await b.nextJson('signal');
    expect(got.data).toEqual({ tag: 'last' });
    await a.close();
    await b.close();
  });
});
