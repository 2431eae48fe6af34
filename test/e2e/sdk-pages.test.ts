import type { Page } from 'playwright-core';
import { CLOSE } from '../../src/protocol/close-codes.js';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { framesDecoded, timeToFirstFrame, waitForFramesDecoded } from '../helpers/browser.js';
import { WATCH_PC, median, screenshot, setUp, signalingOpen, type E2E } from './sdk-e2e.js';

/**
 * The SDK's broadcast and watch demo pages in headless Chromium against an in-process Herald:
 * every watcher must decode a growing number of video frames. Also a watcher resuming its
 * signaling after its socket is cut (without a page load), and a mixed room with the seed
 * protocol's sender page. Screenshots go to $E2E_SCREENSHOTS (default /tmp).
 */

let e2e: E2E;
/** Time to first frame of each watcher that joined an already-live broadcast. */
const ttffs: number[] = [];

beforeAll(async () => {
  e2e = await setUp('sdk-e2e');
});

afterEach(async () => {
  await e2e?.closeContexts();
});

afterAll(async () => {
  if (ttffs.length) {
    console.log(`time to first frame on a watcher (joining a live broadcast): median ${median(ttffs)} ms over ${ttffs.length} runs [${ttffs.join(', ')}]`);
  }
  await e2e?.stop();
});

async function openBroadcast(room: string): Promise<Page> {
  const page = await e2e.open(`/broadcast.html?room=${encodeURIComponent(room)}`, `broadcast ${room}`, 'camera');
  await page.waitForFunction(() => (window as any).herald?.live === true, null, { polling: 50, timeout: 20_000 });
  return page;
}

function openWatch(room: string, label = 'watch'): Promise<Page> {
  return e2e.open(`/watch.html?room=${encodeURIComponent(room)}`, `${label} ${room}`, 'viewer');
}

/**
 * Opens a watcher of a live room and measures its time to first frame: from the page's
 * navigation start (what a person clicking the share link waits for) to the first decoded frame.
 */
async function watchLive(room: string, label: string): Promise<Page> {
  const page = await openWatch(room, label);
  const navigationStart = await page.evaluate(() => performance.timeOrigin);
  ttffs.push(await timeToFirstFrame(page, WATCH_PC, Math.round(navigationStart), { timeout: 45_000 }));
  return page;
}

/**
 * Cuts a playing watcher's signaling socket with `cut`, then proves the watcher resumed without
 * a page load: same document, signaling back to `open` through a welcome with `resumed: true`
 * and the same peer id, signaling working again (an ICE restart negotiated over the resumed
 * socket), the broadcaster never saw it leave, and frames keep growing.
 */
async function resumesAfter(cut: (watcher: Page, peerId: string) => Promise<void>, label: string): Promise<void> {
  const room = e2e.room();
  const broadcast = await openBroadcast(room);
  const watcher = await watchLive(room, label);
  await waitForFramesDecoded(watcher, WATCH_PC, { timeout: 45_000 });

  let navigations = 0;
  watcher.on('framenavigated', (frame) => frame === watcher.mainFrame() && navigations++);
  const peerId = await watcher.evaluate(() => {
    const w = window as any;
    w.__samePage = true;
    w.__pc = w.herald.viewer.link.pc;
    w.__states = [];
    w.__welcomes = [];
    w.__signals = 0;
    w.herald.signaling.on('state', (s: string) => w.__states.push(s));
    w.herald.signaling.on('welcome', (welcome: unknown) => w.__welcomes.push(welcome));
    w.herald.signaling.on('signal', () => w.__signals++);
    return w.herald.signaling.peerId as string;
  });

  await cut(watcher, peerId);
  await watcher.waitForFunction(
    () => {
      const w = window as any;
      return w.__states.includes('reconnecting') && w.herald.state === 'open' && w.__welcomes.length > 0;
    },
    null,
    { polling: 50, timeout: 30_000 },
  );
  const after = await watcher.evaluate(() => {
    const w = window as any;
    return { samePage: w.__samePage === true, states: w.__states, welcome: w.__welcomes.at(-1), samePc: w.herald.viewer.link?.pc === w.__pc };
  });
  expect(navigations).toBe(0);
  expect(after.samePage).toBe(true);
  expect(after.states.at(-1)).toBe('open');
  expect(after.welcome).toMatchObject({ resumed: true, peerId });
  expect(after.samePc).toBe(true);
  expect(await watcher.textContent('#state')).toBe('open');

  // Signaling works both ways again: an ICE restart's offer goes out and the answer comes back.
  const signals = await watcher.evaluate(() => {
    const w = window as any;
    w.herald.viewer.link.restartIce();
    return w.__signals as number;
  });
  await watcher.waitForFunction((n) => (window as any).__signals > n, signals, { polling: 50, timeout: 20_000 });

  const f = await waitForFramesDecoded(watcher, WATCH_PC, { timeout: 45_000 });
  expect(f.later[0]).toBeGreaterThan(f.first[0]!);
  // The broadcaster kept the watcher throughout: one connection, the same peer.
  expect(await broadcast.evaluate(() => [...(window as any).herald.broadcaster.links.keys()])).toEqual([peerId]);
  expect(await broadcast.textContent('#viewers')).toBe('1');
}

describe('SDK broadcast and watch pages in Chromium', () => {
  it('a broadcast with 4 watchers: every watcher decodes growing frames', { timeout: 90_000 }, async () => {
    const room = e2e.room();
    const broadcast = await openBroadcast(room);
    const watchers = await Promise.all([1, 2, 3, 4].map((i) => watchLive(room, `watcher${i}`)));

    const frames = await Promise.all(watchers.map((w) => waitForFramesDecoded(w, WATCH_PC, { timeout: 45_000 })));
    for (const f of frames) expect(f.later[0]).toBeGreaterThan(f.first[0]!);

    // The broadcaster holds one connection per watcher, all connected, and shows the count.
    await broadcast.waitForFunction(
      () => {
        const links = [...(window as any).herald.broadcaster.links.values()];
        return links.length === 4 && links.every((l: any) => l.pc.connectionState === 'connected');
      },
      null,
      { polling: 100, timeout: 20_000 },
    );
    await expect.poll(() => broadcast.textContent('#viewers')).toBe('4');
    // Watchers see the live count too (the server's coalesced counts push), not just the one at their join.
    for (const w of watchers) await expect.poll(() => w.textContent('#viewers'), { timeout: 10_000 }).toBe('4');
    await expect.poll(() => watchers[3]!.textContent('#live')).toBe('live');
    await expect.poll(() => watchers[3]!.textContent('#media')).toBe('media connected');

    await screenshot(broadcast, 'sdk-broadcast');
    await screenshot(watchers[3]!, 'sdk-watch');
  });

  it('a watcher who arrives first starts playing when the broadcast begins', { timeout: 90_000 }, async () => {
    const room = e2e.room();
    const watcher = await openWatch(room, 'early');
    await signalingOpen(watcher);
    await watcher.waitForFunction(() => (window as any).herald.live === false && (window as any).herald.viewer, null, { polling: 50, timeout: 10_000 });
    expect(await watcher.textContent('#live')).toBe('waiting for the broadcaster');
    await screenshot(watcher, 'sdk-watch-waiting');

    const started = Date.now();
    await openBroadcast(room);
    const ttff = await timeToFirstFrame(watcher, WATCH_PC, started, { timeout: 45_000 });
    console.log(`time to first frame (watcher waiting, broadcast opens): ${ttff} ms`);
    const f = await waitForFramesDecoded(watcher, WATCH_PC, { timeout: 45_000 });
    expect(f.later[0]).toBeGreaterThan(f.first[0]!);
    await expect.poll(() => watcher.textContent('#live')).toBe('live');
  });

  it('a watcher plays again after the broadcaster reloads its page (a new connection from a new offer)', { timeout: 120_000 }, async () => {
    const room = e2e.room();
    const broadcast = await openBroadcast(room);
    const watcher = await openWatch(room, 'stays');
    await waitForFramesDecoded(watcher, WATCH_PC, { timeout: 45_000 });
    const firstPc = await watcher.evaluateHandle(() => (window as any).herald.viewer.link.pc);

    await broadcast.reload();
    await broadcast.waitForFunction(() => (window as any).herald?.live === true, null, { polling: 50, timeout: 30_000 });
    // The watcher page was not reloaded; its viewer took a new connection for the new offer.
    await watcher.waitForFunction((old) => {
      const link = (window as any).herald.viewer.link;
      return link && link.pc !== old;
    }, firstPc, { polling: 50, timeout: 30_000 });
    const f = await waitForFramesDecoded(watcher, WATCH_PC, { timeout: 45_000 });
    expect(f.later[0]).toBeGreaterThan(f.first[0]!);
    await expect.poll(() => watcher.textContent('#live')).toBe('live');
  });

  it('a watcher resumes after the server closes its socket, without a page load', { timeout: 90_000 }, async () => {
    await resumesAfter(async (_watcher, peerId) => {
      const connection = e2e.server.herald.gateway.jsonConnection(peerId);
      expect(connection, 'the watcher has a JSON connection on the server').toBeDefined();
      connection!.close(CLOSE.restart, 'e2e: server closes the socket');
    }, 'closed');
  });

  // Chromium keeps an established WebSocket open across context.setOffline(true) (offline
  // emulation only refuses new requests), so the drop is made where it shows: the server's
  // end of the socket is destroyed without a close frame, as when a NAT or a Wi-Fi hop dies,
  // and the browser sees an abnormal close (1006) rather than a clean one.
  it('a watcher resumes after its socket drops without a close frame, without a page load', { timeout: 90_000 }, async () => {
    await resumesAfter(async (_watcher, peerId) => {
      e2e.server.herald.gateway.jsonConnection(peerId)!.terminate();
    }, 'dropped');
  });

  it('replaceTrack swaps the camera on every viewer without renegotiating', { timeout: 90_000 }, async () => {
    const room = e2e.room();
    const broadcast = await openBroadcast(room);
    const watcher = await openWatch(room, 'swap');
    await waitForFramesDecoded(watcher, WATCH_PC, { timeout: 45_000 });
    // Count descriptions the broadcaster sends from now on: a renegotiation would send an offer.
    await broadcast.evaluate(() => {
      const s = (window as any).herald.signaling;
      (window as any).offersAfterSwap = 0;
      const send = s.signal.bind(s);
      s.signal = (room: string, to: string, data: any) => {
        if (data?.description) (window as any).offersAfterSwap++;
        send(room, to, data);
      };
    });
    const swapped = await broadcast.evaluate(async () => {
      const canvas = Object.assign(document.createElement('canvas'), { width: 160, height: 120 });
      const g = canvas.getContext('2d')!;
      let n = 0;
      setInterval(() => {
        g.fillStyle = `hsl(${(n += 20) % 360} 80% 50%)`;
        g.fillRect(0, 0, 160, 120);
      }, 50);
      const track = canvas.captureStream(15).getVideoTracks()[0]!;
      await (window as any).herald.broadcaster.replaceTrack(track);
      const pc = [...(window as any).herald.broadcaster.links.values()][0].pc as RTCPeerConnection;
      return pc.getSenders().find((x) => x.track?.kind === 'video')?.track?.id === track.id;
    });
    expect(swapped).toBe(true);
    // The watcher keeps decoding (now the canvas), and no description went out for the swap.
    const f = await waitForFramesDecoded(watcher, WATCH_PC, { timeout: 45_000 });
    expect(f.later[0]).toBeGreaterThan(f.first[0]!);
    expect(await broadcast.evaluate(() => (window as any).offersAfterSwap)).toBe(0);
  });

  it('a mixed room: the seed-protocol sender page and an SDK watcher', { timeout: 90_000 }, async () => {
    const room = e2e.room();
    const sender = await e2e.open(`/seed/sender.html?room=${encodeURIComponent(room)}`, `seed sender ${room}`, 'camera');
    await signalingOpen(sender);
    const watcher = await watchLive(room, 'mixed');
    const f = await waitForFramesDecoded(watcher, WATCH_PC, { timeout: 45_000 });
    expect(f.later[0]).toBeGreaterThan(f.first[0]!);
    await expect.poll(() => sender.textContent('#count')).toBe('1');
    expect(await framesDecoded(watcher, WATCH_PC)).toHaveLength(1);
  });
});
