import { createSocket } from 'node:dgram';
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { broadcasterContext, framesDecoded, launchBrowser, openPage, viewerContext, waitForFramesDecoded } from '../helpers/browser.js';
import { startHerald, type Running } from '../helpers/herald.js';
import { Instance, startInstances, waitFor } from '../helpers/instances.js';
import { TestRedis } from '../helpers/redis.js';
import { buildSdk } from '../helpers/sdk.js';
import { tokenMinter } from '../helpers/tokens.js';
import { PLAYER_PCS, PlayerSite, posts, requests } from './whep-players.js';

/**
 * WHEP in real Chromium (docs/whep.md): the broadcaster is /broadcast.html with the fake
 * camera; each third-party player (`whip-whep`'s WHEPClient, `@eyevinn/webrtc-player`) runs
 * on a page of another origin and plays it, i.e. its framesDecoded grows. Also with tokens,
 * and with the player's requests on a second instance (real Redis, separate processes).
 */

const SECRET = 'whep-e2e-secret-0123456789';
const mint = tokenMinter(SECRET);
type PlayerName = 'whipWhep' | 'eyevinn';
const PLAYERS: PlayerName[] = ['whipWhep', 'eyevinn'];

let browser: Browser;
let site: PlayerSite;
const contexts: BrowserContext[] = [];
let seq = 0;
const room = () => `whep-e2e-${process.pid}-${++seq}`;

beforeAll(async () => {
  await buildSdk();
  [browser, site] = await Promise.all([launchBrowser(), PlayerSite.start()]);
});

afterEach(async () => {
  await Promise.all(contexts.splice(0).map((c) => c.close().catch(() => {})));
});

afterAll(async () => {
  await browser?.close().catch(() => {});
  await site?.stop();
});

async function openBroadcast(http: string, roomId: string, token?: string): Promise<Page> {
  const ctx = await broadcasterContext(browser);
  contexts.push(ctx);
  const query = new URLSearchParams({ room: roomId, ...(token ? { token } : {}) });
  const page = await openPage(ctx, `${http}/broadcast.html?${query}`, `broadcast ${roomId}`);
  await page.waitForFunction(() => (window as any).herald?.live === true, null, { polling: 50, timeout: 20_000 });
  return page;
}

async function openPlayers(): Promise<Page> {
  const ctx = await viewerContext(browser);
  contexts.push(ctx);
  return site.open(ctx);
}

/** Starts `player` on the page against `url`; resolves once its connection exists. */
async function play(page: Page, player: PlayerName, url: string, token?: string): Promise<void> {
  const before = await page.evaluate(() => (window as any).pcs.length);
  const outcome = await page.evaluate(([p, u, t]) => (window as any).players[p](u, t), [player, url, token] as const);
  expect(['viewing', 'loading']).toContain(outcome);
  await page.waitForFunction((n) => (window as any).pcs.length > n, before, { polling: 50, timeout: 10_000 });
}

async function expectPlays(page: Page): Promise<void> {
  const f = await waitForFramesDecoded(page, PLAYER_PCS, { timeout: 45_000 });
  f.later.forEach((n, i) => expect(n).toBeGreaterThan(f.first[i]!));
  expect(await page.evaluate(() => (window as any).playerErrors)).toEqual([]);
}

describe('WHEP players watch /broadcast.html', () => {
  let server: Running;
  let tokened: Running;

  beforeAll(async () => {
    [server, tokened] = await Promise.all([startHerald(), startHerald({ secret: SECRET })]);
  });
  afterAll(async () => {
    await Promise.all([server?.stop(), tokened?.stop()]);
  });

  for (const player of PLAYERS) {
    it(`${player} plays from another origin; the broadcast page counts it; stopping the player ends it on the broadcaster`, { timeout: 90_000 }, async () => {
      const r = room();
      const broadcast = await openBroadcast(server.http, r);
      const whepUrl = await broadcast.inputValue('#whep');
      expect(whepUrl).toBe(`${server.http}/whep/${r}`);
      const page = await openPlayers();
      expect(new URL(page.url()).origin).not.toBe(server.http);
      await play(page, player, whepUrl);
      await expectPlays(page);
      const [post] = await posts(page);
      expect(post!.status).toBe(201);
      await broadcast.waitForFunction(() => document.querySelector('#viewers')!.textContent === '1' && document.querySelector('#whep-viewers')!.textContent === '1', null, { polling: 50, timeout: 10_000 });
      // The player's own stop sends DELETE: the broadcaster closes that connection.
      await page.evaluate(() => (window as any).players.stopAll());
      await broadcast.waitForFunction(() => (window as any).herald.viewers === 0, null, { polling: 50, timeout: 10_000 });
      expect(server.herald.whep.size).toBe(0);
    });

    it(`${player} plays with a viewer token (Bearer)`, { timeout: 90_000 }, async () => {
      const r = room();
      await openBroadcast(tokened.http, r, await mint('host', r, ['broadcaster']));
      const page = await openPlayers();
      await play(page, player, `${tokened.http}/whep/${r}`, await mint('fan', r, ['viewer']));
      await expectPlays(page);
    });
  }

  it('a player without a token is refused 401 and never plays', { timeout: 60_000 }, async () => {
    const r = room();
    await openBroadcast(tokened.http, r, await mint('host', r, ['broadcaster']));
    const page = await openPlayers();
    const outcome = await page.evaluate((u) => (window as any).players.whipWhep(u), `${tokened.http}/whep/${r}`);
    expect(outcome).toMatch(/401/);
    expect(await framesDecoded(page, PLAYER_PCS)).toEqual([0]);
  });

  it('the broadcaster leaving ends its WHEP sessions', { timeout: 90_000 }, async () => {
    const r = room();
    const broadcast = await openBroadcast(server.http, r);
    const page = await openPlayers();
    await play(page, 'whipWhep', `${server.http}/whep/${r}`);
    await expectPlays(page);
    await broadcast.close();
    await waitFor('the WHEP session to end with its broadcaster', () => server.herald.whep.size === 0, 20_000);
  });
});

describe('WHEP across instances (real Redis, separate processes)', () => {
  let redis: TestRedis;
  let A: Instance;
  let B: Instance;
  let C: Instance;
  let tA: Instance;
  let tB: Instance;

  beforeAll(async () => {
    redis = await TestRedis.start();
    [A, B, C] = await startInstances(3, { redisUrl: redis.url, env: { HERALD_REDIS_PREFIX: 'open' } });
    [tA, tB] = await startInstances(2, { redisUrl: redis.url, env: { HERALD_REDIS_PREFIX: 'tok', HERALD_SECRET: SECRET } });
  });
  afterAll(async () => {
    await Promise.all([A, B, C, tA, tB].map((i) => i?.kill()));
    await redis?.stop();
  });

  for (const player of PLAYERS) {
    it(`${player} on instance B plays the broadcaster of instance A; Herald opens no UDP socket`, { timeout: 90_000 }, async () => {
      const r = room();
      const broadcast = await openBroadcast(A.http, r);
      const page = await openPlayers();
      await play(page, player, `${B.http}/whep/${r}`);
      await expectPlays(page);
      for (const i of [A, B, C]) expect(udpSockets(i.proc.pid!)).toEqual([]);
      // The check can see a UDP socket: one of the test's own.
      const probe = createSocket('udp4');
      await new Promise<void>((resolve) => probe.bind(0, '127.0.0.1', resolve));
      expect(udpSockets(process.pid)).toHaveLength(1);
      probe.close();
      await page.evaluate(() => (window as any).players.stopAll());
      await broadcast.waitForFunction(() => (window as any).herald.viewers === 0, null, { polling: 50, timeout: 10_000 });
    });

    it(`${player} behind a load balancer: broadcaster on A, POST on B, PATCH and DELETE on C`, { timeout: 90_000 }, async () => {
      const r = room();
      const broadcast = await openBroadcast(A.http, r);
      const page = await openPlayers();
      await page.evaluate((route) => ((window as any).route = route), C.http);
      await play(page, player, `${B.http}/whep/${r}`);
      await expectPlays(page);
      await page.evaluate(() => (window as any).players.stopAll());
      await broadcast.waitForFunction(() => (window as any).herald.viewers === 0, null, { polling: 50, timeout: 10_000 });
      const seen = (await requests(page)).map((q) => `${q.method} ${new URL(q.url).origin === C.http ? 'C' : new URL(q.url).origin === B.http ? 'B' : '?'} ${q.status}`);
      expect(seen[0]).toBe('POST B 201');
      expect(seen.at(-1)).toBe('DELETE C 200');
      // whip-whep trickles its candidates (PATCH); the eyevinn player puts them in its offer.
      if (player === 'whipWhep') expect(seen.filter((q) => q === 'PATCH C 204').length).toBeGreaterThan(0);
      expect(seen.filter((q) => !['POST B 201', 'PATCH C 204', 'DELETE C 200'].includes(q))).toEqual([]);
    });

    it(`${player} on instance B with a token plays the broadcaster of instance A`, { timeout: 90_000 }, async () => {
      const r = room();
      await openBroadcast(tA.http, r, await mint('host', r, ['broadcaster']));
      const page = await openPlayers();
      await play(page, player, `${tB.http}/whep/${r}`, await mint('fan', r, ['viewer']));
      await expectPlays(page);
    });
  }
});

/** The UDP sockets process `pid` holds (its fds matched against /proc/net/udp{,6} inodes). */
function udpSockets(pid: number): string[] {
  const inodes = new Set<string>();
  for (const table of ['/proc/net/udp', '/proc/net/udp6']) {
    for (const line of readFileSync(table, 'utf8').split('\n').slice(1)) {
      const inode = line.trim().split(/\s+/)[9];
      if (inode) inodes.add(inode);
    }
  }
  const held: string[] = [];
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    let target: string;
    try {
      target = readlinkSync(`/proc/${pid}/fd/${fd}`);
    } catch {
      continue;
    }
    const m = /^socket:\[(\d+)\]$/.exec(target);
    if (m && inodes.has(m[1]!)) held.push(target);
  }
  return held;
}
