import type { Page } from 'playwright-core';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { setUp, signalingOpen, type E2E } from './sdk-e2e.js';

/**
 * The SDK's data channels in headless Chromium against an in-process Herald: every test
 * passes only when the messages really arrived, with the content, order and sender expected.
 * Most pages are bare (the SDK and an empty MediaStream, so no camera work slows the box);
 * the demo pages' chats are driven through their forms.
 */

let e2e: E2E;

beforeAll(async () => {
  e2e = await setUp('sdk-data');
});

afterEach(async () => {
  await e2e?.closeContexts();
});

afterAll(async () => {
  await e2e?.stop();
});

type Kind = 'call' | 'broadcaster' | 'viewer';

/**
 * A bare page on the server's origin running one SDK object of `kind` in `room`. Every `data`
 * event is kept in `window.d.got` as {peerId, text} or {peerId, bytes, sha256, isArrayBuffer}.
 * `earlyText`, when given, is sent right after start(), before any channel can be open.
 */
async function openBare(room: string, kind: Kind, label: string, earlyText?: string): Promise<{ page: Page; id: string }> {
  const page = await e2e.open(`/index.html?data=${label}`, `${label} ${room}`, 'viewer');
  const id = await page.evaluate(
    async ({ room, kind, earlyText }) => {
      // Not a literal import(): the test runner would rewrite that into its own loader.
      const sdk = await new Function('return import("/sdk/herald.js")')();
      const signaling = new sdk.Signaling();
      const source =
        kind === 'call'
          ? new sdk.Call(signaling, room, new MediaStream())
          : kind === 'broadcaster'
            ? new sdk.Broadcaster(signaling, room, new MediaStream())
            : new sdk.Viewer(signaling, room);
      const got: unknown[] = [];
      const opened: string[] = [];
      source.on('channel-open', ({ peerId }: { peerId: string }) => opened.push(peerId));
      source.on('data', async ({ peerId, data }: { peerId: string; data: string | ArrayBuffer }) => {
        if (typeof data === 'string') return void got.push({ peerId, text: data });
        const entry: Record<string, unknown> = { peerId, bytes: data.byteLength, isArrayBuffer: data instanceof ArrayBuffer };
        got.push(entry);
        const digest = new Uint8Array(await crypto.subtle.digest('SHA-256', data));
        entry.sha256 = [...digest].map((b) => b.toString(16).padStart(2, '0')).join('');
      });
      (window as any).herald = { state: 'idle' };
      signaling.on('state', (s: string) => ((window as any).herald.state = s));
      (window as any).d = { sdk, signaling, source, got, opened };
      await source.start();
      if (earlyText !== undefined) source.send(earlyText);
      return signaling.peerId as string;
    },
    { room, kind, earlyText },
  );
  await signalingOpen(page);
  return { page, id };
}

/** Waits until the page holds at least `n` received messages, then returns them all. */
async function received(page: Page, n: number, timeout = 30_000): Promise<any[]> {
  try {
    await page.waitForFunction((n) => (window as any).d.got.length >= n, n, { polling: 50, timeout });
  } catch (err) {
    const got = await page.evaluate(() => (window as any).d.got.slice(-5));
    throw new Error(`expected ${n} messages, last ones: ${JSON.stringify(got)} (${String(err).split('\n')[0]})`);
  }
  return page.evaluate(() => (window as any).d.got);
}

function texts(got: any[]): string[] {
  return got.map((m) => m.text);
}

/** Waits until the page's data channel(s) to `n` peers are open. */
function channelsOpen(page: Page, n: number): Promise<unknown> {
  return page.waitForFunction((n) => (window as any).d.opened.length >= n, n, { polling: 50, timeout: 30_000 });
}

describe('SDK data channels in Chromium', () => {
  it('a 1:1 call: queued before open, strings both ways, 500 in order, 64 KiB byte-identical, too large refused', { timeout: 150_000 }, async () => {
    const room = e2e.room();
    const alice = await openBare(room, 'call', 'alice');
    // The moment bob appears, alice sends: her link to him exists but its channel is not open.
    await alice.page.evaluate(() => {
      const d = (window as any).d;
      d.source.on('participants', (n: number) => {
        if (n !== 1) return;
        d.stateAtSend = [...d.source.links.values()][0].channel?.readyState ?? 'none';
        d.source.send('sent before the channel was open');
      });
    });
    const bob = await openBare(room, 'call', 'bob');
    expect(await received(bob.page, 1)).toEqual([{ peerId: alice.id, text: 'sent before the channel was open' }]);
    expect(['none', 'connecting']).toContain(await alice.page.evaluate(() => (window as any).d.stateAtSend));
    await channelsOpen(alice.page, 1);
    await bob.page.evaluate(() => (window as any).d.source.send('hello alice'));
    expect(await received(alice.page, 1)).toEqual([{ peerId: bob.id, text: 'hello alice' }]);

    // 500 messages in one burst (most of them queued behind the send buffer) arrive in order.
    await alice.page.evaluate(() => {
      for (let i = 0; i < 500; i++) (window as any).d.source.send(`m${i}`);
    });
    const burst = texts(await received(bob.page, 501)).slice(1);
    expect(burst).toEqual(Array.from({ length: 500 }, (_, i) => `m${i}`));

    // 64 KiB of binary, sent as a view into a larger buffer, arrives as an ArrayBuffer with the same bytes.
    const sent = await alice.page.evaluate(async (to) => {
      const whole = new Uint8Array(65536 + 16);
      for (let i = 0; i < whole.length; i++) whole[i] = (i * 31 + 7) & 255;
      const view = whole.subarray(8, 8 + 65536);
      (window as any).d.source.send(view, to);
      const digest = new Uint8Array(await crypto.subtle.digest('SHA-256', view.slice()));
      return [...digest].map((b) => b.toString(16).padStart(2, '0')).join('');
    }, bob.id);
    await bob.page.waitForFunction(() => (window as any).d.got.at(-1)?.sha256, null, { polling: 50, timeout: 30_000 });
    const last = (await bob.page.evaluate(() => (window as any).d.got.at(-1))) as any;
    expect(last).toEqual({ peerId: alice.id, bytes: 65536, isArrayBuffer: true, sha256: sent });

    // Over the limit: refused at send() with a typed error, nothing queued.
    const refused = await alice.page.evaluate(() => {
      try {
        (window as any).d.source.send(new Uint8Array(300 * 1024));
        return 'sent';
      } catch (err: any) {
        return `${err.name}/${err.code}: ${err.message}`;
      }
    });
    expect(refused).toMatch(/^HeraldError\/too-large: message of 307200 bytes exceeds/);
    const unknownPeer = await alice.page.evaluate(() => {
      try {
        (window as any).d.source.send('x', 'nobody');
        return 'sent';
      } catch (err: any) {
        return err.code;
      }
    });
    expect(unknownPeer).toBe('not-found');
  });

  it('the channel survives an ICE restart and a renegotiation that adds a track', { timeout: 150_000 }, async () => {
    const room = e2e.room();
    const a = await openBare(room, 'call', 'restart-a');
    const b = await openBare(room, 'call', 'restart-b');
    await Promise.all([channelsOpen(a.page, 1), channelsOpen(b.page, 1)]);
    for (const p of [a.page, b.page]) {
      await p.evaluate(() => {
        const d = (window as any).d;
        const link = [...d.source.links.values()][0];
        d.channelBefore = link.channel;
        d.offers = 0;
        d.signaling.on('signal', (e: any) => e.data?.description?.type === 'offer' && d.offers++);
      });
    }

    // ICE restart from a: b sees a new offer, the connection comes back, same channel.
    await a.page.evaluate(() => [...(window as any).d.source.links.values()][0].restartIce());
    await b.page.waitForFunction(() => (window as any).d.offers >= 1, null, { polling: 50, timeout: 30_000 });
    // Renegotiation: b adds a video track (from a canvas); a receives the track.
    await b.page.evaluate(() => {
      const d = (window as any).d;
      const canvas = document.createElement('canvas');
      const ctx = canvas.getContext('2d')!;
      d.paint = setInterval(() => ctx.fillRect(Math.random() * 100, 0, 10, 10), 50);
      const stream = canvas.captureStream(10);
      [...d.source.links.values()][0].pc.addTrack(stream.getVideoTracks()[0], stream);
    });
    await a.page.waitForFunction(() => [...(window as any).d.source.links.values()][0].pc.getReceivers().some((r: any) => r.track?.kind === 'video'), null, { polling: 50, timeout: 30_000 });
    await a.page.waitForFunction(() => (window as any).d.offers >= 1, null, { polling: 50, timeout: 30_000 });

    await a.page.evaluate(() => (window as any).d.source.send('after restart and renegotiation'));
    await b.page.evaluate(() => (window as any).d.source.send('and back'));
    expect(await received(b.page, 1)).toEqual([{ peerId: a.id, text: 'after restart and renegotiation' }]);
    expect(await received(a.page, 1)).toEqual([{ peerId: b.id, text: 'and back' }]);
    for (const p of [a.page, b.page]) {
      const state = await p.evaluate(() => {
        const d = (window as any).d;
        const link = [...d.source.links.values()][0];
        return { same: link.channel === d.channelBefore, ready: link.channel.readyState, opened: d.opened.length };
      });
      expect(state).toEqual({ same: true, ready: 'open', opened: 1 });
    }
  });

  it('a broadcast with two viewers: to-all and to-one from the broadcaster, each viewer to the broadcaster', { timeout: 150_000 }, async () => {
    const room = e2e.room();
    // v1 speaks before there is a broadcaster: the viewer keeps it for the connection to come.
    const v1 = await openBare(room, 'viewer', 'v1', 'v1 was here first');
    const v2 = await openBare(room, 'viewer', 'v2');
    const host = await openBare(room, 'broadcaster', 'host');
    await channelsOpen(host.page, 2);

    await host.page.evaluate((v1) => {
      const s = (window as any).d.source;
      s.send('to everyone');
      s.send('only for v1', v1);
      s.send('to everyone again');
    }, v1.id);
    expect(texts(await received(v1.page, 3))).toEqual(['to everyone', 'only for v1', 'to everyone again']);
    // v2 got the second to-all message, so the one-to-one message (sent before it, on an
    // ordered channel) would have arrived by now had it been sent to v2.
    const atV2 = await received(v2.page, 2);
    expect(atV2).toEqual([
      { peerId: host.id, text: 'to everyone' },
      { peerId: host.id, text: 'to everyone again' },
    ]);

    await v2.page.evaluate(() => (window as any).d.source.send('v2 says hi'));
    const atHost = await received(host.page, 2);
    expect(new Set(atHost.map((m) => `${m.peerId}|${m.text}`))).toEqual(new Set([`${v1.id}|v1 was here first`, `${v2.id}|v2 says hi`]));
  });

  it('a 3-way mesh: to everyone and to one', { timeout: 150_000 }, async () => {
    const room = e2e.room();
    const peers = [];
    for (const name of ['m1', 'm2', 'm3']) peers.push(await openBare(room, 'call', name));
    await Promise.all(peers.map((p) => channelsOpen(p.page, 2)));
    const [p1, p2, p3] = peers as [(typeof peers)[0], (typeof peers)[0], (typeof peers)[0]];

    await p1.page.evaluate((p2) => {
      const s = (window as any).d.source;
      s.send('secret for p2', p2);
      s.send('from p1 to all');
    }, p2.id);
    for (const p of [p2.page, p3.page]) await p.evaluate(() => (window as any).d.source.send('hello mesh'));

    expect(await received(p2.page, 3)).toEqual(
      expect.arrayContaining([
        { peerId: p1.id, text: 'secret for p2' },
        { peerId: p1.id, text: 'from p1 to all' },
        { peerId: p3.id, text: 'hello mesh' },
      ]),
    );
    const atP3 = await received(p3.page, 2);
    expect(atP3).toHaveLength(2);
    expect(atP3).toEqual(expect.arrayContaining([{ peerId: p1.id, text: 'from p1 to all' }, { peerId: p2.id, text: 'hello mesh' }]));
    const atP1 = await received(p1.page, 2);
    expect(atP1).toHaveLength(2);
    expect(atP1).toEqual(expect.arrayContaining([{ peerId: p2.id, text: 'hello mesh' }, { peerId: p3.id, text: 'hello mesh' }]));
    // p1's messages left on one ordered channel per peer: p2 saw the secret first, p3 never.
    const fromP1 = (await received(p2.page, 3)).filter((m) => m.peerId === p1.id).map((m) => m.text);
    expect(fromP1).toEqual(['secret for p2', 'from p1 to all']);
  });
});

describe('demo page chats in Chromium', () => {
  async function say(page: Page, text: string): Promise<void> {
    await page.fill('#chat-input', text);
    await page.click('#chat-form button');
  }
  function chatLines(page: Page, n: number): Promise<string[]> {
    return page
      .waitForFunction((n) => (window as any).herald.chat?.length >= n && (window as any).herald.chat, n, { polling: 50, timeout: 30_000 })
      .then((h) => h.jsonValue() as Promise<{ who: string; text: string }[]>)
      .then((lines) => lines.map((l) => l.text));
  }

  it('call.html: two participants chat both ways', { timeout: 150_000 }, async () => {
    const room = e2e.room();
    const a = await e2e.open(`/call.html?room=${room}`, 'chat alice', 'camera');
    await signalingOpen(a);
    const b = await e2e.open(`/call.html?room=${room}`, 'chat bob', 'camera');
    await signalingOpen(b);
    // Typed before the channel is necessarily open: the SDK queues it.
    await say(a, 'hi from alice');
    expect(await chatLines(b, 1)).toEqual(['hi from alice']);
    await say(b, 'hi alice');
    expect(await chatLines(a, 2)).toEqual(['hi from alice', 'hi alice']);
    expect(await a.locator('#chat-log li').count()).toBe(2);
  });

  it('broadcast.html + watch.html: a viewer line reaches the broadcaster and, relayed, the other viewer', { timeout: 150_000 }, async () => {
    const room = e2e.room();
    const host = await e2e.open(`/broadcast.html?room=${room}`, 'chat host', 'camera');
    await host.waitForFunction(() => (window as any).herald?.live === true, null, { polling: 50, timeout: 20_000 });
    const w1 = await e2e.open(`/watch.html?room=${room}`, 'chat w1', 'viewer');
    const w2 = await e2e.open(`/watch.html?room=${room}`, 'chat w2', 'viewer');
    await Promise.all([w1, w2].map((w) => w.waitForFunction(() => (window as any).herald.viewer?.link?.channel?.readyState === 'open', null, { polling: 50, timeout: 30_000 })));
    await host.waitForFunction(() => (window as any).herald.viewers === 2, null, { polling: 50, timeout: 30_000 });
    await say(w1, 'question from w1');
    expect(await chatLines(host, 1)).toEqual(['question from w1']);
    expect((await chatLines(w2, 1))[0]).toMatch(/: question from w1$/);
    await say(host, 'answer for all');
    expect(await chatLines(w1, 2)).toEqual(['question from w1', 'answer for all']);
    expect(await chatLines(w2, 2)).toEqual([expect.stringMatching(/: question from w1$/), 'answer for all']);
  });
});
