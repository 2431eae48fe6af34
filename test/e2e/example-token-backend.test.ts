import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Tokens } from '../../src/auth/tokens.js';
import { launchBrowser, openPage, viewerContext } from '../helpers/browser.js';
import { startHerald, type Running } from '../helpers/herald.js';
import { buildSdk } from '../helpers/sdk.js';
// The example imports 'herald' (the package's own name, resolved to dist/): build first.
// @ts-expect-error a plain .mjs example, no types
import { startBackend } from '../../examples/token-backend/server.mjs';

/**
 * examples/token-backend in headless Chromium: a Koa backend signs users in and mints Herald
 * tokens; its page gives the SDK a token provider. Herald (with a secret, and the backend's
 * origin as the only one allowed) lets the signed-in users in under their own names, and two
 * of them exchange a message over the data channel. A visitor who did not sign in gets no token.
 */

const SECRET = 'example-backend-secret-42';
let herald: Running;
let backend: { origin: string; close(): Promise<void> };
let browser: Awaited<ReturnType<typeof launchBrowser>>;

beforeAll(async () => {
  await buildSdk();
  backend = await startBackend({ secret: SECRET, port: 0, heraldWs: () => `${herald.ws}/ws` });
  [herald, browser] = await Promise.all([startHerald({ secret: SECRET, allowedOrigins: backend.origin }), launchBrowser()]);
});

afterAll(async () => {
  await browser?.close().catch(() => {});
  await herald?.stop();
  await backend?.close();
});

async function signIn(name: string): Promise<Page> {
  const page = await openPage(await viewerContext(browser), `${backend.origin}/`, name);
  await page.fill('#name', name);
  await page.click('#login button');
  await page.waitForFunction(() => (window as any).app.state === 'open', null, { polling: 50, timeout: 30_000 });
  return page;
}

describe('examples/token-backend', () => {
  it('the backend mints tokens only for signed-in users', async () => {
    expect((await fetch(`${backend.origin}/herald-token`)).status).toBe(401);
    const login = await fetch(`${backend.origin}/login?name=carol`, { method: 'POST' });
    const cookie = login.headers.get('set-cookie')!.split(';')[0]!;
    const token = await (await fetch(`${backend.origin}/herald-token`, { headers: { cookie } })).text();
    const grant = await new Tokens(SECRET).verify(token);
    expect(grant).toMatchObject({ sub: 'carol', room: 'lobby' });
    expect([...grant.roles]).toEqual(['peer']);
  });

  it('two signed-in users join through the token provider and talk over the data channel', { timeout: 150_000 }, async () => {
    const alice = await signIn('alice');
    const bob = await signIn('bob');
    for (const page of [alice, bob]) expect(await page.evaluate(() => (window as any).app.tokensFetched)).toBeGreaterThanOrEqual(1);

    // Herald knows them by the names their tokens carry.
    const admin = await new Tokens(SECRET).mint({ sub: 'ops', room: 'lobby', roles: ['admin'], ttl: '5m' });
    const room = await (await fetch(`${herald.http}/api/rooms/lobby`, { headers: { authorization: `Bearer ${admin}` } })).json();
    expect(room.members.map((m: any) => m.identity).sort()).toEqual(['alice', 'bob']);

    await alice.waitForFunction(() => (window as any).app.call.links.size === 1 && [...(window as any).app.call.links.values()][0].channel?.readyState === 'open', null, { polling: 50, timeout: 30_000 });
    await alice.fill('#text', 'hello bob');
    await alice.click('#say button');
    await bob.waitForFunction(() => (window as any).app.got.length >= 1, null, { polling: 50, timeout: 30_000 });
    const got = await bob.evaluate(() => (window as any).app.got);
    const alicePeer = await alice.evaluate(() => (window as any).app.call.signaling.peerId);
    expect(got).toEqual([{ peerId: alicePeer, data: 'hello bob' }]);
  });
});
