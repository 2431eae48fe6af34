import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { launchBrowser, openPage } from '../helpers/browser.js';
import { startHerald, type Running } from '../helpers/herald.js';
import { Instance, startInstances } from '../helpers/instances.js';
import { TestRedis } from '../helpers/redis.js';
import { tokenMinter } from '../helpers/tokens.js';
import { PEERJS_BROWSER_ARGS } from './peerjs-app.js';

/**
 * The real yjs + y-webrtc in Chromium, as their users run them: the /collab.html demo page
 * (dist/sdk/collab.js bundles yjs and y-webrtc; run `npm run build` first), served by two
 * small app servers of its own on two loopback ports, so the two pages have different
 * origins and y-webrtc's same-origin BroadcastChannel cannot carry the sync: the text must
 * travel over a WebRTC data channel that Herald's /y-webrtc introduced. With a password
 * (y-webrtc encrypts its signaling) and peerOpts {config:{iceServers:[]}}.
 */

const ROOT = new URL('../../', import.meta.url);
const FILES: Record<string, [string, string]> = {
  '/collab.html': ['public/collab.html', 'text/html'],
  '/demo.css': ['public/demo.css', 'text/css'],
  '/sdk/collab.js': ['dist/sdk/collab.js', 'text/javascript'],
};

/** A static server for the demo page: another origin than Herald's. */
async function appServer(): Promise<{ server: Server; origin: string }> {
  const server = createServer((req, res) => {
    const file = FILES[new URL(req.url ?? '/', 'http://x').pathname];
    if (!file) return res.writeHead(404).end();
    res.writeHead(200, { 'content-type': file[1] }).end(readFileSync(fileURLToPath(new URL(file[0], ROOT))));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { server, origin: `http://127.0.0.1:${(server.address() as AddressInfo).port}` };
}

let browser: Browser;
const contexts: BrowserContext[] = [];
const apps: Server[] = [];
let origins: string[];
let seq = 0;
const room = () => `doc-${process.pid}-${++seq}`;

beforeAll(async () => {
  const [one, two] = await Promise.all([appServer(), appServer()]);
  apps.push(one.server, two.server);
  origins = [one.origin, two.origin];
  browser = await launchBrowser({ smallVideo: false, args: PEERJS_BROWSER_ARGS });
}, 60_000);

/** Pages go before their servers (or y-webrtc keeps reconnecting to a server that is gone). */
async function closePages(): Promise<void> {
  for (const c of contexts.splice(0)) await c.close().catch(() => {});
}

afterAll(async () => {
  await closePages();
  await browser?.close().catch(() => {});
  for (const s of apps) s.close();
});

async function editor(origin: string, params: Record<string, string>, label: string): Promise<Page> {
  const context = await browser.newContext();
  contexts.push(context);
  const page = await openPage(context, `${origin}/collab.html?${new URLSearchParams(params)}`, label);
  await page.waitForFunction(() => (window as any).session !== undefined);
  return page;
}

/** Types into one page's editor and waits for the text to show in the other's. */
async function typedArrives(from: Page, to: Page, words: string): Promise<void> {
  // Both see each other (the badge the demo shows), then the keystrokes go.
  for (const p of [from, to]) await p.waitForFunction(() => document.getElementById('peers')!.textContent === '1 peer', undefined, { timeout: 30_000 });
  await from.locator('#text').click();
  await from.keyboard.type(words);
  await to.waitForFunction((w) => (document.getElementById('text') as HTMLTextAreaElement).value.includes(w), words, { timeout: 30_000 });
  // The Y.Text itself holds it, and it came over WebRTC, not a BroadcastChannel.
  expect(await to.evaluate(() => (window as any).session.text.toString())).toContain(words);
  const conns = await to.evaluate(() => {
    const room = (window as any).session.provider.room;
    return { webrtc: room.webrtcConns.size, bc: room.bcConns.size };
  });
  expect(conns).toEqual({ webrtc: 1, bc: 0 });
}

describe('yjs + y-webrtc in Chromium, signaling through Herald', () => {
  let herald: Running;
  beforeAll(async () => {
    herald = await startHerald();
  });
  afterAll(async () => {
    await closePages();
    await herald?.stop();
  });

  it('two pages on different origins, password set: text typed on one appears on the other, both ways', { timeout: 90_000 }, async () => {
    const params = { room: room(), password: 'sesame', signaling: `${herald.ws}/y-webrtc` };
    const a = await editor(origins[0]!, params, 'collab-a');
    const b = await editor(origins[1]!, params, 'collab-b');
    await typedArrives(a, b, 'hello from a');
    await typedArrives(b, a, ' and b');
    expect(await a.evaluate(() => (window as any).session.text.toString())).toBe('hello from a and b');
  });
});

describe('yjs + y-webrtc in Chromium across two Herald instances over Redis, with tokens', () => {
  const SECRET = 'collab-e2e-secret-0123456789abcdef';
  let redis: TestRedis;
  let A: Instance;
  let B: Instance;
  beforeAll(async () => {
    redis = await TestRedis.start();
    [A, B] = await startInstances(2, { redisUrl: redis.url, env: { HERALD_SECRET: SECRET } });
  }, 60_000);
  afterAll(async () => {
    await closePages();
    await Promise.all([A?.kill(), B?.kill()]);
    await redis?.stop();
  });

  it('one page on each instance, each with its own token for the room: the text arrives', { timeout: 90_000 }, async () => {
    const mint = tokenMinter(SECRET);
    const id = room();
    const a = await editor(origins[0]!, { room: id, password: 'pw', signaling: `${A.ws}/y-webrtc`, token: await mint('alice', id, ['peer']) }, 'redis-a');
    const b = await editor(origins[1]!, { room: id, password: 'pw', signaling: `${B.ws}/y-webrtc`, token: await mint('bob', id, ['peer']) }, 'redis-b');
    await typedArrives(a, b, 'across instances');
    await typedArrives(b, a, '!');
  });
});
