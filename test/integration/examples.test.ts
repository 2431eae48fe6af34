import { afterEach, describe, expect, it } from 'vitest';
import { JsonClient } from '../helpers/json-client.js';
import { TestSocket } from '../helpers/socket.js';
// The example imports 'herald' (the package's own name, resolved to dist/): build first.
// @ts-expect-error a plain .mjs example, no types
import { startApp } from '../../examples/koa-attach/server.mjs';

/**
 * examples/koa-attach: Herald attached to an existing Koa app's http.Server. One port serves
 * the app's routes and its own WebSocket unchanged, Herald's /ws, and Herald's HTTP routes
 * mounted under /herald; stopping Herald drains its clients and leaves the app serving.
 */

let running: { port: number; herald: any; server: any; close(): Promise<void> } | undefined;

afterEach(async () => {
  await running?.close().catch(() => {});
  running = undefined;
});

describe('examples/koa-attach', () => {
  it('one port: the app’s routes and WebSocket untouched, Herald’s /ws relays, its HTTP under /herald', async () => {
    running = await startApp({ port: 0, host: '127.0.0.1', heraldSettings: { logLevel: 'silent' } });
    const base = `http://127.0.0.1:${running.port}`;

    // The app's own routes answer as before, and its 404 stays its own (not Herald's JSON one).
    expect(await (await fetch(`${base}/api/hello`)).json()).toEqual({ hello: 'world' });
    expect(await (await fetch(`${base}/`)).text()).toContain('My app');
    const missing = await fetch(`${base}/no-such-page`);
    expect(missing.status).toBe(404);
    expect(await missing.text()).toBe('Not Found');
    // The app's own WebSocket still works beside Herald's.
    const echo = await TestSocket.open(`ws://127.0.0.1:${running.port}/app/echo`);
    echo.send('ping');
    expect(await echo.next()).toBe('echo: ping');
    await echo.close();

    // Herald's HTTP routes under the mount prefix.
    expect((await fetch(`${base}/herald/readyz`)).status).toBe(200);
    const sdk = await fetch(`${base}/herald/sdk/herald.js`);
    expect(sdk.status).toBe(200);
    expect(await sdk.text()).toMatch(/\bSignaling = class\b/);

    // Herald's JSON protocol on /ws of the same port: two peers, a signal between them.
    const a = await JsonClient.connect(`ws://127.0.0.1:${running.port}`);
    const b = await JsonClient.connect(`ws://127.0.0.1:${running.port}`);
    await a.request({ type: 'join', room: 'attached', role: 'peer' });
    await b.request({ type: 'join', room: 'attached', role: 'peer' });
    a.socket.send(JSON.stringify({ type: 'signal', room: 'attached', to: b.peerId, data: { hello: 'b' } }));
    const signal = await b.socket.nextJson('signal');
    expect(signal).toMatchObject({ from: a.peerId, data: { hello: 'b' } });
    expect(running.herald.port).toBe(running.port);

    // Stopping Herald: its clients get bye; the app keeps serving on the same server.
    await running.herald.stop();
    expect((await a.socket.nextJson('bye')).reconnect).toBe(true);
    expect((await a.socket.closed).code).toBe(1012);
    expect(await (await fetch(`${base}/api/hello`)).json()).toEqual({ hello: 'world' });
    const echoAgain = await TestSocket.open(`ws://127.0.0.1:${running.port}/app/echo`);
    echoAgain.send('still here');
    expect(await echoAgain.next()).toBe('echo: still here');
    await echoAgain.close();
  });

  it('a Herald attaches once: a second start or attach of the same instance is refused', async () => {
    running = await startApp({ port: 0, host: '127.0.0.1', heraldSettings: { logLevel: 'silent' } });
    await expect(running.herald.start()).rejects.toThrow(/already started/);
    await expect(running.herald.attach(running.server)).rejects.toThrow(/already started/);
    // The first attach still serves.
    const c = await JsonClient.connect(`ws://127.0.0.1:${running.port}`);
    expect(c.peerId).toBeTruthy();
    await c.socket.close();
});
});
