import type { Page } from 'playwright-core';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { waitForFramesDecoded } from '../helpers/browser.js';
import { CALL_PCS, screenshot, setUp, signalingOpen, type E2E } from './sdk-e2e.js';

/**
 * The SDK's call page (1:1 and mesh) and perfect negotiation under glare, in headless
 * Chromium against an in-process Herald: every participant must decode a growing number of
 * video frames from every other participant.
 */

let e2e: E2E;

beforeAll(async () => {
  e2e = await setUp('sdk-call');
});

afterEach(async () => {
  await e2e?.closeContexts();
});

afterAll(async () => {
  await e2e?.stop();
});

async function openCall(room: string, label: string): Promise<Page> {
  const page = await e2e.open(`/call.html?room=${encodeURIComponent(room)}`, `${label} ${room}`, 'camera');
  await signalingOpen(page);
  return page;
}

/** Waits until the call page has `n` connections, all connected; says which were not, if not. */
async function connectedTo(page: Page, n: number): Promise<void> {
  try {
    await page.waitForFunction(
      (n) => {
        const links = [...((window as any).herald.call?.links.values() ?? [])];
        return links.length === n && links.every((l: any) => l.pc.connectionState === 'connected');
      },
      n,
      { polling: 100, timeout: 45_000 },
    );
  } catch (err) {
    const state = await page.evaluate(() => ({
      me: (window as any).herald.signaling?.peerId,
      links: [...((window as any).herald.call?.links.values() ?? [])].map((l: any) => ({
        remote: l.remoteId,
        polite: l.polite,
        connection: l.pc.connectionState,
        signaling: l.pc.signalingState,
      })),
      errors: (window as any).herald.errors,
    }));
    throw new Error(`${page.url()}: not connected to ${n}: ${JSON.stringify(state)} (${String(err).split('\n')[0]})`);
  }
}

/** Every participant decodes growing frames from each of the `n` others. */
async function everyoneReceives(pages: Page[], n: number): Promise<void> {
  await Promise.all(pages.map((p) => connectedTo(p, n)));
  const frames = await Promise.all(pages.map((p) => waitForFramesDecoded(p, CALL_PCS, { timeout: 45_000 })));
  for (const f of frames) {
    expect(f.first).toHaveLength(n);
    f.later.forEach((later, i) => expect(later).toBeGreaterThan(f.first[i]!));
  }
}

describe('SDK call page in Chromium', () => {
  it('a 1:1 call: both directions decode growing frames', { timeout: 90_000 }, async () => {
    const room = e2e.room();
    const alice = await openCall(room, 'alice');
    const bob = await openCall(room, 'bob');
    await everyoneReceives([alice, bob], 1);

    // Each page shows the other's video tile and counts two people in the call.
    for (const page of [alice, bob]) {
      await expect.poll(() => page.textContent('#participants')).toBe('2');
      expect(await page.locator('#videos figure').count()).toBe(2);
    }
    await screenshot(bob, 'sdk-call');
  });

  it('a 3-way mesh: every participant receives both others', { timeout: 150_000 }, async () => {
    const room = e2e.room();
    const pages = [];
    for (const name of ['p1', 'p2', 'p3']) pages.push(await openCall(room, name));
    await everyoneReceives(pages, 2);
    for (const page of pages) {
      await expect.poll(() => page.textContent('#participants')).toBe('3');
      expect(await page.locator('#videos figure').count()).toBe(3);
    }
    await screenshot(pages[2]!, 'sdk-call-mesh');
  });

  it('glare: both peers offer at once and end with one working connection each', { timeout: 90_000 }, async () => {
    const room = e2e.room();
    const [a, b] = await Promise.all([openGlarePage(room, 'glare-a'), openGlarePage(room, 'glare-b')]);
    const ids = await Promise.all([a, b].map((p) => p.evaluate(() => (window as any).g.signaling.peerId as string)));

    // Each side builds its PeerLink to the other; neither applies anything before its own
    // offer is out, so both offers cross: a certain collision on both sides.
    await Promise.all([a, b].map((p, i) => p.evaluate(makeLink, { room, other: ids[1 - i]! })));
    // The impolite side offers first; its offer waits at the polite side, which then offers
    // too and has to give way the moment its own offer is set, while that offer's ICE
    // gathering is only starting (the timing Chromium wedges on, see PeerLink.settleOwnOffer).
    const politeFirst = ids[0]! < ids[1]!;
    const [polite, impolite] = politeFirst ? [a, b] : [b, a];
    await impolite.evaluate(() => (window as any).g.addTracks());
    await polite.waitForFunction(() => (window as any).g.received.offer >= 1, null, { polling: 20, timeout: 20_000 });
    await polite.evaluate(() => (window as any).g.addTracks());
    await impolite.waitForFunction(() => (window as any).g.received.offer >= 1, null, { polling: 20, timeout: 20_000 });

    const frames = await Promise.all([a, b].map((p) => waitForFramesDecoded(p, GLARE_PC, { timeout: 45_000 })));
    for (const f of frames) expect(f.later[0]).toBeGreaterThan(f.first[0]!);

    const report = await Promise.all([a, b].map((p) => p.evaluate(() => (window as any).g.report())));
    for (const r of report) {
      expect(r.peerConnections).toBe(1);
      expect(r.connection).toBe('connected');
      expect(r.signaling).toBe('stable');
      expect(r.sent.offer).toBeGreaterThanOrEqual(1);
      expect(r.received.offer).toBeGreaterThanOrEqual(1);
    }
    // The polite side gave way (rolled back and answered); the impolite side ignored the offer it got.
    const [p, i] = politeFirst ? report : [report[1]!, report[0]!];
    expect(p.polite).toBe(true);
    expect(i.polite).toBe(false);
    expect(p.sent.answer).toBeGreaterThanOrEqual(1);
    expect(i.received.answer).toBeGreaterThanOrEqual(1);
  });
});

const GLARE_PC = 'window.g && window.g.link && window.g.link.pc';

/**
 * A bare page on the server's origin that imports the SDK and counts every RTCPeerConnection
 * created, with the camera open and signaling joined as a `peer`.
 */
async function openGlarePage(room: string, label: string): Promise<Page> {
  const page = await e2e.open(`/index.html?glare=${label}`, `${label} ${room}`, 'camera');
  await page.evaluate(async (room) => {
    const native = window.RTCPeerConnection;
    let created = 0;
    (window as any).RTCPeerConnection = class extends native {
      constructor(config?: RTCConfiguration) {
        super(config);
        created++;
      }
    };
    // Not a literal import(): the test runner would rewrite that into its own loader.
    const sdk = await new Function('return import("/sdk/herald.js")')();
    const stream = await navigator.mediaDevices.getUserMedia({ video: true, audio: true });
    const signaling = new sdk.Signaling();
    await signaling.connect();
    await signaling.join(room, 'peer');
    (window as any).g = { sdk, stream, signaling, created: () => created };
  }, room);
  return page;
}

/**
 * Runs in the page: the PeerLink to `other`, counting descriptions each way. Incoming signals
 * are held until this side's own first offer has been sent, then applied right away.
 */
function makeLink({ room, other }: { room: string; other: string }): void {
  const g = (window as any).g;
  const me: string = g.signaling.peerId;
  const sent: Record<string, number> = { offer: 0, answer: 0 };
  const received: Record<string, number> = { offer: 0, answer: 0 };
  let held: unknown[] | undefined = [];
  const link = new g.sdk.PeerLink(other, {
    polite: me < other, // the rule Call uses: both ends agree
    iceServers: g.signaling.iceServers,
    send: (data: any) => {
      if (data.description) sent[data.description.type] = (sent[data.description.type] ?? 0) + 1;
      g.signaling.signal(room, other, data);
      if (data.description?.type === 'offer') release();
    },
  });
  const release = () => {
    const queued = held ?? [];
    held = undefined;
    for (const data of queued) link.receive(data);
  };
  g.signaling.on('signal', (e: any) => {
    if (e.room !== room || e.from !== other) return;
    if (e.data.description) received[e.data.description.type] = (received[e.data.description.type] ?? 0) + 1;
    if (held) held.push(e.data);
    else link.receive(e.data);
  });
  Object.assign(g, {
    link,
    sent,
    received,
    addTracks: () => {
      for (const track of g.stream.getTracks()) link.pc.addTrack(track, g.stream);
    },
    report: () => ({
      polite: link.polite,
      peerConnections: g.created(),
      connection: link.pc.connectionState,
      signaling: link.pc.signalingState,
      sent,
      received,
    }),
  });
}
