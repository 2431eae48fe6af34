import type { Browser, BrowserContext, Page } from 'playwright-core';
import { broadcasterContext, launchBrowser, openPage, viewerContext } from '../helpers/browser.js';
import { startHerald, type Running } from '../helpers/herald.js';
import { buildSdk } from '../helpers/sdk.js';

/**
 * Shared set-up for the e2e tests of the SDK demo pages (public/{broadcast,watch,call}.html):
 * a fresh SDK bundle, an in-process Herald, one Chromium per test file, and a context per page.
 * Not a test file itself (no .test.ts suffix).
 */

/** The watch page's one connection to the broadcaster. */
export const WATCH_PC = 'window.herald && window.herald.viewer && window.herald.viewer.link && window.herald.viewer.link.pc';
/** The call page's connections, one per other participant. */
export const CALL_PCS = 'window.herald && window.herald.call ? [...window.herald.call.links.values()].map((l) => l.pc) : []';

export const shots = process.env.E2E_SCREENSHOTS ?? '/tmp';

export interface E2E {
  server: Running;
  browser: Browser;
  contexts: BrowserContext[];
  room(): string;
  open(path: string, label: string, kind: 'camera' | 'viewer'): Promise<Page>;
  closeContexts(): Promise<void>;
  stop(): Promise<void>;
}

export async function setUp(prefix: string): Promise<E2E> {
  await buildSdk();
  const [server, browser] = await Promise.all([startHerald(), launchBrowser()]);
  let seq = 0;
  const e2e: E2E = {
    server,
    browser,
    contexts: [],
    room: () => `${prefix}-${process.pid}-${++seq}`,
    async open(path, label, kind) {
      const ctx = kind === 'camera' ? await broadcasterContext(browser) : await viewerContext(browser);
      e2e.contexts.push(ctx);
      return openPage(ctx, `${server.http}${path}`, label);
    },
    async closeContexts() {
      const open = e2e.contexts.splice(0);
      await Promise.all(open.map((c) => c.close().catch(() => {})));
    },
    async stop() {
      await e2e.closeContexts();
      await browser.close().catch(() => {});
      await server.stop();
    },
  };
  return e2e;
}

/** Waits until the page's signaling connection is open (the demo pages expose `window.herald.state`). */
export function signalingOpen(page: Page, timeout = 20_000): Promise<unknown> {
  return page.waitForFunction(() => (window as any).herald?.state === 'open', null, { polling: 50, timeout });
}

export function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid]! : Math.round((sorted[mid - 1]! + sorted[mid]!) / 2);
}

export async function screenshot(page: Page, name: string): Promise<void> {
  await page.screenshot({ path: `${shots}/${name}.png` });
}
