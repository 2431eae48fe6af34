import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { broadcasterContext, launchBrowser, openPage, timeToFirstFrame, viewerContext, waitForFramesDecoded } from '../helpers/browser.js';
import { startHerald, type Running } from '../helpers/herald.js';

/**
 * The article's sender/reader pages (public/seed/) in headless Chromium against an
 * in-process Herald: every reader must decode a growing number of video frames.
 * Set E2E_SCREENSHOTS=<dir> to save a screenshot of each page.
 */

const READER_PC = 'window.herald && window.herald.pc';
const SENDER_PCS = 'window.herald ? [...window.herald.pcs.values()] : []';
const shots = process.env.E2E_SCREENSHOTS;

let server: Running;
let browser: Browser;
/** Contexts opened by the current test; closed after it so the next test has the CPU. */
let contexts: BrowserContext[] = [];
let seq = 0;

const room = () => `seed-e2e-${process.pid}-${++seq}`;

async function openSender(roomId: string): Promise<Page> {
  const ctx = await broadcasterContext(browser);
  contexts.push(ctx);
  const page = await openPage(ctx, `${server.http}/seed/sender.html?room=${encodeURIComponent(roomId)}`, `sender ${roomId}`);
  await page.waitForFunction(() => (window as any).herald?.state === 'open', null, { polling: 50, timeout: 20_000 });
  return page;
}

async function openReader(roomId: string, user: string): Promise<Page> {
  const ctx = await viewerContext(browser);
  contexts.push(ctx);
  const url = `${server.http}/seed/reader.html?room=${encodeURIComponent(roomId)}&user=${encodeURIComponent(user)}`;
  return openPage(ctx, url, `reader ${user}`);
}

async function screenshot(page: Page, name: string): Promise<void> {
  if (shots) await page.screenshot({ path: `${shots}/${name}.png` });
}

beforeAll(async () => {
  [server, browser] = await Promise.all([startHerald(), launchBrowser()]);
});

afterEach(async () => {
  await Promise.all(contexts.map((c) => c.close().catch(() => {})));
  contexts = [];
});

afterAll(async () => {
  await Promise.all(contexts.map((c) => c.close().catch(() => {})));
  await browser?.close();
  await server?.stop();
});

describe('seed pages in Chromium', () => {
  it('one sender, three readers: every reader decodes growing frames', { timeout: 60_000 }, async () => {
    const roomId = room();
    const sender = await openSender(roomId);

    const readers = await Promise.all(
      ['alice', 'bob', 'carol'].map(async (user) => {
        const started = Date.now();
        const page = await openReader(roomId, user);
        const loaded = Date.now() - started;
        const ttff = await timeToFirstFrame(page, READER_PC, started);
        return { user, page, loaded, ttff };
      }),
    );
    // ttff counts from opening the reader's context; "loaded" is the part spent creating it and loading the page.
    console.log(
      `time to first frame (3 readers joining at once): ${readers.map((r) => `${r.user} ${r.ttff} ms (page loaded at ${r.loaded} ms)`).join(', ')}`,
    );

    const frames = await Promise.all(readers.map((r) => waitForFramesDecoded(r.page, READER_PC)));
    for (const f of frames) expect(f.later[0]).toBeGreaterThan(f.first[0]!);

    // The sender holds one connection per reader, all connected, and says so on the page.
    await sender.waitForFunction(() => (window as any).herald.connected === 3, null, { polling: 100, timeout: 15_000 });
    expect([...(await sender.evaluate(() => [...(window as any).herald.pcs.keys()]))].sort()).toEqual(['alice', 'bob', 'carol']);
    await expect.poll(() => sender.textContent('#count')).toBe('3');
    for (const r of readers) expect(await r.page.evaluate(() => (window as any).herald.media)).toBe('playing');

    await screenshot(sender, 'seed-sender');
    await screenshot(readers[0]!.page, 'seed-reader');
  });

  it('a reader who opens before the sender starts playing when the sender goes live', { timeout: 60_000 }, async () => {
    const roomId = room();
    const reader = await openReader(roomId, 'early');
    await reader.waitForFunction(() => (window as any).herald?.state === 'open' && (window as any).herald.media === 'waiting', null, {
      polling: 50,
      timeout: 15_000,
    });
    await screenshot(reader, 'seed-reader-waiting');

    const started = Date.now();
    await openSender(roomId);
    const ttff = await timeToFirstFrame(reader, READER_PC, started);
    console.log(`time to first frame (reader waiting, sender opens): ${ttff} ms`);
    const f = await waitForFramesDecoded(reader, READER_PC);
    expect(f.later[0]).toBeGreaterThan(f.first[0]!);
  });

  it('a reader that reloads its page plays again', { timeout: 60_000 }, async () => {
    const roomId = room();
    const sender = await openSender(roomId);
    const reader = await openReader(roomId, 'reloader');
    await waitForFramesDecoded(reader, READER_PC);

    const started = Date.now();
    await reader.reload();
    const ttff = await timeToFirstFrame(reader, READER_PC, started);
    console.log(`time to first frame after a reader reload: ${ttff} ms`);
    const f = await waitForFramesDecoded(reader, READER_PC);
    expect(f.later[0]).toBeGreaterThan(f.first[0]!);

    // The sender replaced the old connection: one connection, for the same user, connected.
    await sender.waitForFunction(() => (window as any).herald.pcs.size === 1 && (window as any).herald.connected === 1, null, {
      polling: 100,
      timeout: 15_000,
    });
    expect(await sender.evaluate(() => [...(window as any).herald.pcs.keys()])).toEqual(['reloader']);
    // The sender sees no inbound video (it only sends), so its own pcs report nothing decoded.
    expect(await sender.evaluate(`(${SENDER_PCS}).length`)).toBe(1);
  });

  it('a sender that reloads its page: readers get leaveline, re-join and play again', { timeout: 60_000 }, async () => {
    const roomId = room();
    const sender = await openSender(roomId);
    const reader = await openReader(roomId, 'faithful');
    await waitForFramesDecoded(reader, READER_PC);
    const firstPc = await reader.evaluateHandle(() => (window as any).herald.pc);

    const started = Date.now();
    await sender.reload();
    // The reader must end up on a new connection (the old one was closed), decoding again.
    await reader.waitForFunction((old) => (window as any).herald.pc && (window as any).herald.pc !== old, firstPc, {
      polling: 50,
      timeout: 20_000,
    });
    const ttff = await timeToFirstFrame(reader, READER_PC, started);
    console.log(`time to first frame after a sender reload: ${ttff} ms`);
    const f = await waitForFramesDecoded(reader, READER_PC);
    expect(f.later[0]).toBeGreaterThan(f.first[0]!);
    await firstPc.dispose();
  });
});
