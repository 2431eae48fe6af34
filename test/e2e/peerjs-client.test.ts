import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { broadcasterContext, launchBrowser } from '../helpers/browser.js';
import { startHerald, type Running } from '../helpers/herald.js';
import { PeerJsSocket, instanceTarget } from '../helpers/peerjs-targets.js';
import { PEERJS_BROWSER_ARGS, PeerJsApp, dataBothWays, inbox, mediaBothWays, sentBy, started } from './peerjs-app.js';

/**
 * The real `peerjs` client (1.5.x browser bundle) in Chromium, on a page served from another
 * origin, against one Herald. Data must really arrive and video must really decode.
 */

const ALIVE_MS = 6000;
/** Generous, so that a loaded machine opens the late page well within it. */
const EXPIRE_MS = 8000;
let herald: Running;
let app: PeerJsApp;
let browser: Browser;
let context: BrowserContext;
let n = 0;
/** PeerJS ids are alphanumeric with single inner '-', '_' or ' '. */
const uid = (p: string) => `${p}${process.pid}x${++n}`;

beforeAll(async () => {
  [herald, app, browser] = await Promise.all([
    startHerald({ peerjsExpireMs: EXPIRE_MS, peerjsAliveTimeoutMs: ALIVE_MS, heartbeatMs: 1000 }),
    PeerJsApp.start(),
    launchBrowser({ args: PEERJS_BROWSER_ARGS }),
  ]);
  context = await broadcasterContext(browser);
});

afterAll(async () => {
  await context?.close().catch(() => {});
  await browser?.close().catch(() => {});
  await app?.stop();
  await herald?.stop();
});

async function page(label: string): Promise<Page> {
  return app.open(context, herald.port, label);
}

describe('the real peerjs client against Herald, in Chromium', () => {
  it('gets an id from the server, and opens with a fixed id', { timeout: 60_000 }, async () => {
    const a = await page('server-id');
    expect(await started(a)).toMatch(/^[0-9a-f-]{36}$/);
    const b = await page('fixed-id');
    const id = uid('fixed');
    expect(await started(b, id)).toBe(id);
    await Promise.all([a.close(), b.close()]);
  });

  it('an id in use is refused (unavailable-id), then free again after destroy()', { timeout: 60_000 }, async () => {
    const id = uid('taken');
    const holder = await page('holder');
    await started(holder, id);
    const other = await page('other');
    expect(await other.evaluate((pid) => (window as any).app.start(pid), id)).toEqual({ error: 'unavailable-id' });
    await holder.evaluate(() => (window as any).app.peer.destroy());
    // The server sees the socket close a moment later: a fresh Peer retries until it opens.
    await other.waitForFunction(
      async (pid) => {
        const app = (window as any).app;
        app.peer?.destroy();
        return 'id' in (await app.start(pid));
      },
      id,
      { polling: 200, timeout: 15_000 },
    );
    await Promise.all([holder.close(), other.close()]);
  });

  it('a DataConnection carries JSON, a string and binary in both directions', { timeout: 60_000 }, async () => {
    const a = await page('data-a');
    const b = await page('data-b');
    await started(a);
    await dataBothWays(a, b, await started(b));
    await Promise.all([a.close(), b.close()]);
  });

  it('a MediaConnection both ways: framesDecoded grows on both sides', { timeout: 120_000 }, async () => {
    const a = await page('call-a');
    const b = await page('call-b');
    await started(a);
    const [fa, fb] = await mediaBothWays(a, b, await started(b));
    expect(fa.later[0]).toBeGreaterThan(fa.first[0]!);
    expect(fb.later[0]).toBeGreaterThan(fb.first[0]!);
    await Promise.all([a.close(), b.close()]);
  });

  it('connecting to an unknown peer gives peer-unavailable', { timeout: 60_000 }, async () => {
    const a = await page('unknown');
    await started(a);
    expect(await a.evaluate((id) => (window as any).app.connect(id), uid('nobody'))).toBe('error:peer-unavailable');
    await a.close();
  });

  it('an idle peer outlives the alive timeout on its heartbeats', { timeout: 60_000 }, async () => {
    const a = await page('idle');
    const id = await started(a);
    // Two silent raw clients dropped one after the other: the idle page has lived through
    // two alive timeouts by then, sending nothing but its HEARTBEATs.
    for (const name of ['w1', 'w2']) {
      const witness = await PeerJsSocket.connect(instanceTarget(herald), uid(name));
      await witness.closed;
    }
    expect(await a.evaluate(() => ({ open: (window as any).app.peer.open, events: (window as any).app.events }))).toEqual({ open: true, events: [`open:${id}`] });
    // And it is still reachable.
    const b = await page('idle-b');
    await started(b);
    expect(await b.evaluate((pid) => (window as any).app.connect(pid), id)).toBe('open');
    await Promise.all([a.close(), b.close()]);
  });

  it('disconnect() then reconnect() keeps the id, and the peer is reachable again', { timeout: 60_000 }, async () => {
    const a = await page('reconnect');
    const id = await started(a);
    await a.evaluate(() => (window as any).app.peer.disconnect());
    await a.waitForFunction(() => (window as any).app.events.includes('disconnected'));
    await a.evaluate(() => (window as any).app.peer.reconnect());
    await a.waitForFunction((pid) => (window as any).app.events.filter((e: string) => e === `open:${pid}`).length === 2, id, { timeout: 15_000 });
    const b = await page('reconnect-b');
    await started(b);
    expect(await b.evaluate((pid) => (window as any).app.connect(pid), id)).toBe('open');
    await b.evaluate(() => (window as any).app.sendAll('b'));
    expect(await inbox(a, 3)).toEqual(sentBy('b'));
    await Promise.all([a.close(), b.close()]);
  });

  it('a connection to a peer that appears within the expiry waits for it and opens', { timeout: 60_000 }, async () => {
    const a = await page('early');
    const b = await page('late');
    await started(a);
    const late = uid('late');
    // The OFFER (and candidates) are queued on the server until `late` connects.
    const opening = a.evaluate((id) => (window as any).app.connect(id), late);
    await a.waitForFunction(() => (window as any).app.conn?.peerConnection?.localDescription != null);
    expect(await started(b, late)).toBe(late);
    expect(await opening).toBe('open');
    await a.evaluate(() => (window as any).app.sendAll('a'));
    expect(await inbox(b, 3)).toEqual(sentBy('a'));
    await Promise.all([a.close(), b.close()]);
  });
});
