import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { Tokens } from '../../src/auth/tokens.js';
import { Signaling } from '../../client/signaling.js';
import { startHerald, type Running } from '../helpers/herald.js';
import { JsonClient } from '../helpers/json-client.js';
import { BlackHoleProxy } from '../helpers/proxy.js';

/**
 * A network that dies silently (no FIN, no RST) is invisible to a browser's WebSocket for
 * minutes. The SDK pings at the application level and reconnects + resumes when a ping goes
 * unanswered. Here the SDK's Signaling runs in Node over `ws`, through a TCP proxy the test
 * can turn into a black hole for the connections it already carries.
 */
describe('SDK liveness ping', () => {
  let server: Running;
  let proxy: BlackHoleProxy;
  beforeAll(async () => {
    (globalThis as any).WebSocket = WebSocket;
    // The server's own heartbeat is far away, so only the client's ping can notice the drop.
    server = await startHerald({ heartbeatMs: 60_000, resumeGraceMs: 30_000 });
    proxy = await BlackHoleProxy.start(server.port);
  });
  afterAll(async () => {
    await proxy.stop();
    await server.stop();
  });

  it('a silently dead connection is noticed by the ping, and the session resumes with its room', async () => {
    const signaling = new Signaling({ url: `ws://127.0.0.1:${proxy.port}/ws`, pingIntervalMs: 300, backoff: { initialMs: 50, maxMs: 200 } });
    const first = await signaling.connect();
    await signaling.join('liveness', 'viewer');
    const broadcaster = await JsonClient.connect(server.ws);
    await broadcaster.join('liveness', 'broadcaster');

    const states: string[] = [];
    signaling.on('state', (s) => states.push(s));
    const resumed = signaling.once('welcome');
    expect(proxy.blackHole()).toBe(1);

    const welcome = await resumed;
    expect(welcome.resumed).toBe(true);
    expect(welcome.peerId).toBe(first.peerId);
    expect(welcome.rooms).toEqual([{ room: 'liveness', role: 'viewer' }]);
    expect(states).toEqual(['reconnecting', 'open']);

    // Signalling works over the new socket, and the broadcaster never saw the viewer leave.
    const got = signaling.once('signal');
    await broadcaster.signal('liveness', first.peerId, { after: 'resume' });
    expect((await got).data).toEqual({ after: 'resume' });
    expect(broadcaster.pendingJson().filter((m) => m.type === 'peer-left')).toEqual([]);
    signaling.close();
    await broadcaster.close();
  });

  it('the server answers ping at any time, even before hello', async () => {
    const c = await JsonClient.open(server.ws);
    expect(await c.request({ type: 'ping' })).toEqual({ type: 'ack', id: 1 });
    await c.close();
  });
});

describe('SDK token refresh', () => {
  const SECRET = '0123456789abcdef0123';
  let server: Running;
  beforeAll(async () => {
    (globalThis as any).WebSocket = WebSocket;
    server = await startHerald({ secret: SECRET });
  });
  afterAll(() => server.stop());

  it('a connection closed because its token expired comes back with a fresh token and resumes', async () => {
    const tokens = new Tokens(SECRET);
    let minted = 0;
    // Each token lives 2 s (exp has 1 s resolution); the provider is asked on every connect.
    const token = () => {
      minted++;
      return tokens.mint({ sub: 'refresher', room: 'refresh', roles: ['viewer'], ttl: 2 });
    };
    const signaling = new Signaling({ url: `ws://127.0.0.1:${server.port}/ws`, token, pingIntervalMs: 0 });
    const first = await signaling.connect();
    await signaling.join('refresh', 'viewer');
    const states: string[] = [];
    signaling.on('state', (s) => states.push(s));
    const errors: unknown[] = [];
    signaling.on('error', (e) => errors.push(e));

    const again = await signaling.once('welcome');
    expect(again.resumed).toBe(true);
    expect(again.peerId).toBe(first.peerId);
    expect(again.rooms).toEqual([{ room: 'refresh', role: 'viewer' }]);
    expect(states).toEqual(['reconnecting', 'open']);
    expect(minted).toBe(2);
    expect(errors).toEqual([]);
    signaling.close();
  });

  it('with a fixed token, expiry is final: the state is closed and an unauthorized error is raised', async () => {
    const fixed = await new Tokens(SECRET).mint({ sub: 'fixed', room: 'refresh', roles: ['viewer'], ttl: 2 });
    const signaling = new Signaling({ url: `ws://127.0.0.1:${server.port}/ws`, token: fixed, pingIntervalMs: 0 });
    await signaling.connect();
    const error = await signaling.once('error');
    expect(error.code).toBe('unauthorized');
    expect(signaling.state).toBe('closed');
  });
});
