import type { Browser, BrowserContext } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { broadcasterContext, launchBrowser } from '../helpers/browser.js';
import { Instance, startInstances } from '../helpers/instances.js';
import { TestRedis } from '../helpers/redis.js';
import { PEERJS_BROWSER_ARGS, PeerJsApp, dataBothWays, inbox, mediaBothWays, sentBy, started } from './peerjs-app.js';

/**
 * The real `peerjs` client on two Herald processes sharing a private redis-server, and on a
 * Herald process started with no PeerJS setting at all (what `npm start` runs).
 */

let redis: TestRedis;
let A: Instance;
let B: Instance;
let plain: Instance;
let app: PeerJsApp;
let browser: Browser;
let context: BrowserContext;
let n = 0;
const uid = (p: string) => `${p}${process.pid}x${++n}`;

// One process at a time: three Herald processes and Chromium starting at once can starve
// each other on a loaded 2-core machine.
beforeAll(async () => {
  redis = await TestRedis.start();
  [A, B] = await startInstances(2, { redisUrl: redis.url, env: { HERALD_PEERJS_EXPIRE_MS: '2000' } });
  plain = await Instance.start({ name: 'herald-defaults' });
  app = await PeerJsApp.start();
  browser = await launchBrowser({ args: PEERJS_BROWSER_ARGS });
  context = await broadcasterContext(browser);
}, 180_000);

afterAll(async () => {
  await context?.close().catch(() => {});
  await browser?.close().catch(() => {});
  await app?.stop();
  await Promise.all([A, B, plain].map((i) => i?.kill()));
  await redis?.stop();
});

describe('the real peerjs client across two Herald processes and Redis', () => {
  it('a DataConnection from a peer on A to a peer on B carries data both ways', { timeout: 60_000 }, async () => {
    const a = await app.open(context, A.port, 'data@A');
    const b = await app.open(context, B.port, 'data@B');
    await started(a);
    await dataBothWays(a, b, await started(b));
    await Promise.all([a.close(), b.close()]);
  });

  it('a MediaConnection between A and B: framesDecoded grows on both sides', { timeout: 120_000 }, async () => {
    const a = await app.open(context, A.port, 'call@A');
    const b = await app.open(context, B.port, 'call@B');
    await started(a);
    const [fa, fb] = await mediaBothWays(a, b, await started(b));
    expect(fa.later[0]).toBeGreaterThan(fa.first[0]!);
    expect(fb.later[0]).toBeGreaterThan(fb.first[0]!);
    await Promise.all([a.close(), b.close()]);
  });

  it('an id held on A is refused on B (unavailable-id)', { timeout: 60_000 }, async () => {
    const id = uid('held');
    const a = await app.open(context, A.port, 'holder@A');
    await started(a, id);
    const b = await app.open(context, B.port, 'thief@B');
    expect(await b.evaluate((pid) => (window as any).app.start(pid), id)).toEqual({ error: 'unavailable-id' });
    expect(await a.evaluate(() => (window as any).app.peer.open)).toBe(true);
    await Promise.all([a.close(), b.close()]);
  });

  it('an unknown id, from A, gives peer-unavailable', { timeout: 60_000 }, async () => {
    const a = await app.open(context, A.port, 'unknown@A');
    await started(a);
    expect(await a.evaluate((id) => (window as any).app.connect(id), uid('nobody'))).toBe('error:peer-unavailable');
    await a.close();
  });
});

describe('new Peer(id, { host, port, path: "/", key: "peerjs" }) against a Herald with default settings', () => {
  it('opens and carries data, with no other client option', { timeout: 60_000 }, async () => {
    // `ice=default`: the page passes nothing but host, port, path and key to Peer.
    const a = await app.open(context, plain.port, 'defaults-a', 'default');
    const b = await app.open(context, plain.port, 'defaults-b', 'default');
    const bId = uid('plain');
    await started(a, uid('plainA'));
    expect(await started(b, bId)).toBe(bId);
    expect(await a.evaluate((id) => (window as any).app.connect(id), bId)).toBe('open');
    await a.evaluate(() => (window as any).app.sendAll('a'));
    expect(await inbox(b, 3)).toEqual(sentBy('a'));
    await Promise.all([a.close(), b.close()]);
  });
});
