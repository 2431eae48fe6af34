import type { Browser, BrowserContext } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { broadcasterContext, launchBrowser, openPage, viewerContext, waitForFramesDecoded } from '../helpers/browser.js';
import { startInstances, type Instance } from '../helpers/instances.js';
import { TestRedis } from '../helpers/redis.js';
import { buildSdk } from '../helpers/sdk.js';
import { WATCH_PC } from './sdk-e2e.js';

/**
 * Three Herald processes sharing one redis-server (both started by the test): the broadcast
 * page on instance A, watch pages on B and C. Both watchers must decode growing video frames,
 * so every offer, answer and candidate crossed instances over Redis.
 */
describe('broadcast across instances over Redis, in Chromium', () => {
  let redis: TestRedis;
  let instances: Instance[];
  let browser: Browser;
  const contexts: BrowserContext[] = [];

  beforeAll(async () => {
    await buildSdk();
    redis = await TestRedis.start();
    [instances, browser] = await Promise.all([startInstances(3, { redisUrl: redis.url }), launchBrowser()]);
  });

  afterAll(async () => {
    await Promise.all(contexts.map((c) => c.close().catch(() => {})));
    await browser?.close().catch(() => {});
    await Promise.all((instances ?? []).map((i) => i.terminate().catch(() => {})));
    await redis?.stop();
  });

  it('broadcaster on A, watchers on B and C: both watchers decode frames', { timeout: 120_000 }, async () => {
    const [a, b, c] = instances;
    const room = `cluster-e2e-${process.pid}`;
    const camera = await broadcasterContext(browser);
    contexts.push(camera);
    const broadcast = await openPage(camera, `${a!.http}/broadcast.html?room=${room}`, 'broadcast@A');
    await broadcast.waitForFunction(() => (window as any).herald?.live === true, null, { polling: 50, timeout: 30_000 });

    const watchers = [];
    for (const [instance, label] of [[b!, 'watch@B'], [c!, 'watch@C']] as const) {
      const ctx = await viewerContext(browser);
      contexts.push(ctx);
      watchers.push(await openPage(ctx, `${instance.http}/watch.html?room=${room}`, label));
    }
    const frames = await Promise.all(watchers.map((w) => waitForFramesDecoded(w, WATCH_PC, { timeout: 60_000 })));
    for (const f of frames) expect(f.later[0]).toBeGreaterThan(f.first[0]!);

    // The broadcaster on A holds one connection per watcher, each to a viewer on another instance.
    const viewers = await broadcast.evaluate(() => (window as any).herald.broadcaster.viewerCount);
    expect(viewers).toBe(2);
    const members = await (await fetch(`${a!.http}/api/rooms/${room}`)).json();
    const instancesOf = new Set(members.members.map((m: { instance: string }) => m.instance));
    expect(instancesOf.size).toBe(3);
  });
});
