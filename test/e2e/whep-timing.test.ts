import { writeFileSync } from 'node:fs';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { broadcasterContext, launchBrowser, openPage, viewerContext, waitForFramesDecoded } from '../helpers/browser.js';
import { startHerald, type Running } from '../helpers/herald.js';
import { buildSdk } from '../helpers/sdk.js';
import { median } from './sdk-e2e.js';
import { PLAYER_PCS, PlayerSite, posts } from './whep-players.js';

/**
 * WHEP timings (docs/whep.md "Timings"; `node bench/whep.mjs` runs this file and prints them):
 * from each player's POST to its 201, and from its POST to its first decoded frame, with one
 * WHEP viewer at a time and with 8 at once (4 of each player). Only that they play is asserted;
 * the times are printed (and written to $WHEP_TIMINGS_OUT when set), never asserted.
 */

let server: Running;
let browser: Browser;
let site: PlayerSite;
const contexts: BrowserContext[] = [];
const results: Record<string, { post201: number[]; postFrame: number[] }> = {};

beforeAll(async () => {
  await buildSdk();
  [server, browser, site] = await Promise.all([startHerald(), launchBrowser(), PlayerSite.start()]);
});

afterAll(async () => {
  for (const [name, r] of Object.entries(results)) {
    console.log(`WHEP ${name}: POST→201 median ${median(r.post201)} ms (max ${Math.max(...r.post201)}), POST→first frame median ${median(r.postFrame)} ms (max ${Math.max(...r.postFrame)}) over ${r.post201.length}`);
  }
  if (process.env.WHEP_TIMINGS_OUT) writeFileSync(process.env.WHEP_TIMINGS_OUT, JSON.stringify(results, null, 2));
  await Promise.all(contexts.map((c) => c.close().catch(() => {})));
  await browser?.close().catch(() => {});
  await Promise.all([site?.stop(), server?.stop()]);
});

async function broadcast(room: string): Promise<Page> {
  const ctx = await broadcasterContext(browser);
  contexts.push(ctx);
  const page = await openPage(ctx, `${server.http}/broadcast.html?room=${room}`, 'broadcast');
  await page.waitForFunction(() => (window as any).herald?.live === true, null, { polling: 50, timeout: 20_000 });
  return page;
}

/** Starts `players` at once on a fresh page, waits until all decode growing frames, and records the times. */
async function measure(name: string, room: string, players: ('whipWhep' | 'eyevinn')[]): Promise<void> {
  const ctx = await viewerContext(browser);
  contexts.push(ctx);
  const page = await site.open(ctx);
  await page.evaluate(() => (window as any).watchFirstFrames());
  const url = `${server.http}/whep/${room}`;
  await page.evaluate(([u, list]) => Promise.all((list as string[]).map((p, i) => (window as any).players[p](u, undefined, String(i)))), [url, players] as const);
  await page.waitForFunction((n) => (window as any).pcs.length === n, players.length, { polling: 50, timeout: 10_000 });
  const f = await waitForFramesDecoded(page, PLAYER_PCS, { timeout: 60_000 });
  f.later.forEach((n, i) => expect(n).toBeGreaterThan(f.first[i]!));
  await page.waitForFunction((n) => Object.keys((window as any).firstFrames).length === n, players.length, { polling: 50, timeout: 10_000 });
  const frames: Record<string, number> = await page.evaluate(() => (window as any).firstFrames);
  const r = (results[name] ??= { post201: [], postFrame: [] });
  for (const post of await posts(page)) {
    expect(post.status).toBe(201);
    r.post201.push(post.answeredAt - post.postAt);
    r.postFrame.push(frames[post.id!]! - post.postAt);
  }
  await page.evaluate(() => (window as any).players.stopAll());
  await ctx.close();
}

describe('WHEP timings', () => {
  it('one WHEP viewer at a time (3 of each player)', { timeout: 120_000 }, async () => {
    const room = `whep-timing-${process.pid}-1`;
    await broadcast(room);
    for (let i = 0; i < 3; i++) {
      await measure('1 viewer', room, ['whipWhep']);
      await measure('1 viewer', room, ['eyevinn']);
    }
    expect(results['1 viewer']!.post201).toHaveLength(6);
  });

  it('8 WHEP viewers at once (4 of each player)', { timeout: 120_000 }, async () => {
    const room = `whep-timing-${process.pid}-8`;
    await broadcast(room);
    await measure('8 viewers', room, ['whipWhep', 'eyevinn', 'whipWhep', 'eyevinn', 'whipWhep', 'eyevinn', 'whipWhep', 'eyevinn']);
    expect(results['8 viewers']!.post201).toHaveLength(8);
  });
});
