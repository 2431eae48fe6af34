import { mkdirSync } from 'node:fs';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { launchBrowser } from '../helpers/browser.js';
import { startHerald, type Running } from '../helpers/herald.js';
import { startInstances, type Instance } from '../helpers/instances.js';
import { JsonClient } from '../helpers/json-client.js';
import { TestRedis } from '../helpers/redis.js';
import { TestSocket } from '../helpers/socket.js';
import { tokenMinter } from '../helpers/tokens.js';

/**
 * The operators' console (public/console.html) in headless Chromium, against real rooms made
 * by real WebSocket clients: sign-in, the rooms table, the room view, kick, the charts, and a
 * two-instance Redis cluster. Screenshots go to test-results/ (gitignored); every page must
 * finish without a console error.
 */

const SECRET = 'console-e2e-secret-0123';
const SHOTS = 'test-results';
const mint = tokenMinter(SECRET);

let seq = 0;
const uniq = (name: string) => `${name}-${process.pid}-${++seq}`;

/** A console page that records every console error and uncaught page error. */
interface ConsolePage {
  page: Page;
  errors: string[];
}

async function openConsole(context: BrowserContext, url: string): Promise<ConsolePage> {
  const page = await context.newPage();
  await page.setViewportSize({ width: 1280, height: 1000 });
  const errors: string[] = [];
  page.on('pageerror', (err) => errors.push(`pageerror: ${err.message}`));
  page.on('console', (msg) => {
    if (msg.type() !== 'error') return;
    // The API answers 404 for a room with no members (an open room view whose room emptied):
    // the browser logs that answer; it is the contract, not a fault of the page.
    if (/status of 404/.test(msg.text()) && /\/api\/rooms\/[^/?]+$/.test(msg.location().url)) return;
    errors.push(`console: ${msg.text()} (${msg.location().url})`);
  });
  await page.goto(url);
  return { page, errors };
}

async function signIn(page: Page, token: string): Promise<void> {
  await page.fill('#token', token);
  await page.click('#signin button[type=submit]');
}

/** Text of the role / protocol chips of a room row, as {key: count}. */
async function chipsOf(page: Page, room: string, column: string): Promise<Record<string, number>> {
  return page.$$eval(`#rooms tr[data-room="${room}"] td.${column} .chip`, (chips) =>
    Object.fromEntries(chips.map((c) => [(c as HTMLElement).dataset.key!, Number(c.querySelector('b')!.textContent)])),
  );
}

/** Waits until the room's row shows `n` members. */
async function waitRowMembers(page: Page, room: string, n: number): Promise<void> {
  await page.waitForFunction(
    ([r, count]) => document.querySelector(`#rooms tr[data-room="${r}"] td.members`)?.textContent === String(count),
    [room, n] as const,
    { polling: 100, timeout: 20_000 },
  );
}

describe('operators\' console, one instance', () => {
  let server: Running;
  let browser: Browser;
  let context: BrowserContext;
  /** The signed-in console tab, shared by the tests below (session storage is per tab). */
  let main: ConsolePage;
  let admin: string;
  const sockets: TestSocket[] = [];

  beforeAll(async () => {
    mkdirSync(SHOTS, { recursive: true });
    [server, browser] = await Promise.all([startHerald({ secret: SECRET }), launchBrowser({ smallVideo: false })]);
    admin = await mint('operator', '*', ['admin']);
  });
  afterAll(async () => {
    for (const s of sockets) s.ws.terminate();
    await context?.close().catch(() => {});
    await browser?.close().catch(() => {});
    await server?.stop();
  });

  /** A JSON client joined to `room`; its token is for that room, or any room with `anyRoom`. */
  async function json(room: string, role: 'broadcaster' | 'viewer' | 'peer', sub = uniq('u'), anyRoom = false): Promise<JsonClient> {
    const c = new JsonClient(await TestSocket.open(`${server.ws}/ws?token=${await mint(sub, anyRoom ? '*' : room, [role])}`));
    sockets.push(c.socket);
    await c.hello();
    await c.join(room, role);
    return c;
  }

  it('sign in: a bad token is refused with a message, a good one opens the console; no token stays in the URL', { timeout: 60_000 }, async () => {
    context = await browser.newContext();
    main = await openConsole(context, `${server.http}/console.html`);
    const { page, errors } = main;
    await page.waitForSelector('#signin:not(.hidden)');
    expect(await page.isVisible('#app')).toBe(false);

    await signIn(page, await mint('operator', '*', ['admin'], 'a-different-secret-000'));
    await page.waitForSelector('.message.show');
    expect(await page.textContent('.message')).toContain('That token was refused');
    expect(await page.isVisible('#signin')).toBe(true);
    expect(await page.evaluate(() => document.body.dataset.signedIn)).toBe('false');
    await page.screenshot({ path: `${SHOTS}/console-signin.png` });
    // The refused attempt is the only error: the browser logs the 401 answer.
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatch(/401/);
    errors.length = 0;

    await signIn(page, await mint('viewer-only', '*', ['viewer']));
    await page.waitForFunction(() => document.querySelector('.message')?.textContent?.includes('admin role'), null, { timeout: 10_000 });
    errors.length = 0; // the 403 answer, as above

    await signIn(page, admin);
    await page.waitForSelector('#app:not(.hidden)');
    expect(await page.textContent('#who')).toBe('operator · all rooms');
    await page.waitForFunction(() => Number(document.body.dataset.updates) >= 2, null, { timeout: 15_000 });
    expect(await page.textContent('#feed')).toContain('live');
    expect(page.url()).not.toContain('token');
    expect(await page.evaluate(() => sessionStorage.getItem('herald.console.token'))).toBe(admin);

    // A link carrying ?token= signs in and drops the token from the address bar at once.
    const linked = await openConsole(await browser.newContext(), `${server.http}/console.html?token=${admin}#room=x`);
    await linked.page.waitForSelector('#app:not(.hidden)');
    expect(linked.page.url()).toBe(`${server.http}/console.html#room=x`);
    await linked.page.click('#signout');
    await linked.page.waitForSelector('#signin:not(.hidden)');
    expect(await linked.page.evaluate(() => sessionStorage.getItem('herald.console.token'))).toBeNull();
    expect(linked.errors).toEqual([]);
    await linked.page.context().close();
    expect(errors).toEqual([]);
  });

  it('a room made by real clients appears with the right counts; kick (after a confirm) closes the peer and the row updates', { timeout: 90_000 }, async () => {
    const { page, errors } = main;
    await page.reload();
    await page.waitForSelector('#app:not(.hidden)'); // signed in again by the token kept in this tab
    const room = uniq('standup');
    const sender = await TestSocket.open(`${server.ws}/webrtc/sender/${room}?token=${await mint('cam', room, ['broadcaster'])}`);
    sockets.push(sender);
    const readerId = uniq('r'); // a seed reader id is its token's identity
    const reader = await TestSocket.open(`${server.ws}/webrtc/reader/${readerId}?token=${await mint(readerId, room, ['viewer'])}`);
    sockets.push(reader);
    reader.send(`join|${room}`);
    await sender.nextStarting('join|');
    const v1 = await json(room, 'viewer', 'alice');
    await json(room, 'viewer', 'bob');

    await page.fill('#search', room);
    await waitRowMembers(page, room, 4);
    expect(await chipsOf(page, room, 'roles')).toEqual({ broadcaster: 1, viewer: 3 });
    expect(await chipsOf(page, room, 'protocols')).toEqual({ json: 2, seed: 2 });
    expect(Object.values(await chipsOf(page, room, 'instances'))).toEqual([4]);

    await page.click(`#rooms tr[data-room="${room}"]`);
    await page.waitForFunction(() => document.querySelectorAll('#members tbody tr').length === 4, null, { timeout: 15_000 });
    expect(await page.textContent('#room-name')).toBe(room);
    const roles = await page.$$eval('#members tbody tr', (rows) => rows.map((r) => r.children[1]!.textContent));
    expect(roles).toEqual(['broadcaster', 'viewer', 'viewer', 'viewer']);

    // Cancel keeps the peer.
    await page.click(`#members tr[data-peer="sender/${room}"] button.kick`);
    await page.waitForSelector('#confirm[open]');
    expect(await page.textContent('#confirm-text')).toContain(`sender/${room}`);
    await page.click('#confirm button[value=cancel]');
    await page.waitForFunction(() => !(document.querySelector('#confirm') as HTMLDialogElement).open, null, { timeout: 10_000 });
    const seen = Number(await page.evaluate(() => document.body.dataset.updates));
    await page.waitForFunction((n) => Number(document.body.dataset.updates) >= n + 2, seen, { timeout: 15_000 });
    expect(sender.ws.readyState).toBe(sender.ws.OPEN);
    expect(await page.$$eval('#members tbody tr', (rows) => rows.length)).toBe(4);

    // Kick a JSON viewer: it is told `removed`, and the row drops to 3.
    await page.click(`#members tr[data-peer="${v1.peerId}"] button.kick`);
    await page.click('#confirm-kick');
    expect(await v1.nextJson('removed')).toEqual({ type: 'removed', room, reason: 'kicked' });
    await waitRowMembers(page, room, 3);
    expect(await chipsOf(page, room, 'protocols')).toEqual({ json: 1, seed: 2 });
    await page.waitForFunction(() => document.querySelectorAll('#members tbody tr').length === 3, null, { timeout: 15_000 });

    // Kick the seed sender: its socket is closed (4001); its reader hears `leaveline` and is
    // unbound (the seed protocol's rule), so the row drops to the one JSON viewer left.
    await page.click(`#members tr[data-peer="sender/${room}"] button.kick`);
    await page.click('#confirm-kick');
    expect((await sender.closed).code).toBe(4001);
    expect(await reader.next((m) => m === 'leaveline')).toBe('leaveline');
    await page.waitForFunction((r) => document.querySelector('.message.show.ok')?.textContent === `Kicked sender/${r} from room ${r}.`, room, { timeout: 10_000 });
    await waitRowMembers(page, room, 1);
    expect(await chipsOf(page, room, 'roles')).toEqual({ viewer: 1 });
    await page.waitForFunction(() => document.querySelectorAll('#members tbody tr').length === 1, null, { timeout: 15_000 });
    await page.screenshot({ path: `${SHOTS}/console-room.png`, fullPage: true });
    expect(errors).toEqual([]);
  });

  it('the charts move when traffic flows', { timeout: 90_000 }, async () => {
    const { page, errors } = main;
    await page.click('#room-close');
    await page.fill('#search', '');
    await page.waitForFunction(() => Number(document.body.dataset.updates) >= 1, null, { timeout: 15_000 });
    const read = () =>
      page.$$eval('figure.chart', (figs) =>
        Object.fromEntries(figs.map((f) => [(f as HTMLElement).dataset.series!, { sum: Number((f as HTMLElement).dataset.sum), d: f.querySelector('path.line')?.getAttribute('d') }])),
      );
    const before = await read();
    const room = uniq('busy');
    const a = await json(room, 'peer');
    const b = await json(room, 'peer');
    for (let i = 0; i < 60; i++) await a.signal(room, b.peerId, { tag: `s${i}` });
    a.send({ type: 'not-a-message' }); // one error, answered `bad-request`
    await page.waitForFunction(
      ([m, e]) => {
        const sum = (s: string) => Number((document.querySelector(`figure.chart[data-series="${s}"]`) as HTMLElement).dataset.sum);
        return sum('messages') > m && sum('errors') > e;
      },
      [before.messages!.sum, before.errors!.sum] as const,
      { polling: 200, timeout: 30_000 },
    );
    const after = await read();
    expect(after.messages!.d).not.toBe(before.messages!.d);
    expect(after.errors!.d).not.toBe(before.errors!.d);
    expect(Number(await page.textContent('#stat-connections'))).toBeGreaterThanOrEqual(2);
    await page.screenshot({ path: `${SHOTS}/console-overview.png`, fullPage: true });
    expect(errors).toEqual([]);
  });

  it('the rooms table pages through the rooms 50 at a time', { timeout: 60_000 }, async () => {
    const { page, errors } = main;
    const tag = uniq('many');
    // 56 rooms: four connections in 14 rooms each (the per-connection cap is 16).
    for (let c = 0; c < 4; c++) {
      const client = await json(`${tag}-${c}-00`, 'peer', uniq('u'), true);
      for (let r = 1; r < 14; r++) await client.join(`${tag}-${c}-${String(r).padStart(2, '0')}`, 'peer');
    }
    await page.fill('#search', tag);
    await page.waitForFunction(() => document.querySelector('#page-info')?.textContent === '1–50 of 56', null, { timeout: 15_000 });
    expect(await page.$$eval('#rooms tbody tr', (rows) => rows.length)).toBe(50);
    expect(await page.isDisabled('#prev')).toBe(true);
    await page.click('#next');
    await page.waitForFunction(() => document.querySelector('#page-info')?.textContent === '51–56 of 56', null, { timeout: 15_000 });
    expect(await page.$$eval('#rooms tbody tr', (rows) => rows.map((r) => (r as HTMLElement).dataset.room))).toEqual(
      ['3-08', '3-09', '3-10', '3-11', '3-12', '3-13'].map((s) => `${tag}-${s}`),
    );
    expect(await page.isDisabled('#next')).toBe(true);
    await page.click('#prev');
    await page.waitForFunction(() => document.querySelector('#page-info')?.textContent === '1–50 of 56', null, { timeout: 15_000 });
    expect(errors).toEqual([]);
  });

  it('a room-scoped admin token sees only its room, and no service-wide overview', { timeout: 60_000 }, async () => {
    const mine = uniq('mine');
    await json(mine, 'peer');
    await json(uniq('theirs'), 'peer');
    const scoped = await browser.newContext();
    const { page, errors } = await openConsole(scoped, `${server.http}/console.html`);
    await page.waitForSelector('#signin:not(.hidden)');
    await signIn(page, await mint('room-ops', mine, ['admin']));
    await page.waitForSelector('#app:not(.hidden)');
    expect(await page.textContent('#who')).toBe(`room-ops · room ${mine} only`);
    await waitRowMembers(page, mine, 1);
    expect(await page.$$eval('#rooms tbody tr', (rows) => rows.map((r) => (r as HTMLElement).dataset.room))).toEqual([mine]);
    expect(await page.isVisible('#overview')).toBe(false);
    expect(await page.textContent('#room-name')).toBe(mine); // its room opens by itself
    await page.waitForFunction(() => document.querySelectorAll('#members tbody tr').length === 1, null, { timeout: 15_000 });
    await page.screenshot({ path: `${SHOTS}/console-scoped.png`, fullPage: true });
    expect(errors).toEqual([]);
    await scoped.close();
  });
});

describe('operators\' console, open dev mode', () => {
  it('without a secret the console opens at once, says so, and shows rooms', { timeout: 60_000 }, async () => {
    const [open, browser] = await Promise.all([startHerald(), launchBrowser({ smallVideo: false })]);
    try {
      const c = await JsonClient.connect(open.ws);
      await c.join('dev-room', 'peer');
      const { page, errors } = await openConsole(await browser.newContext(), `${open.http}/console.html`);
      await page.waitForSelector('#app:not(.hidden)');
      expect(await page.textContent('#who')).toContain('open dev mode');
      expect(await page.isVisible('#signout')).toBe(false);
      await waitRowMembers(page, 'dev-room', 1);
      expect(errors).toEqual([]);
      await c.close();
    } finally {
      await browser.close();
      await open.stop();
    }
  });
});

describe('operators\' console, two instances over a private redis-server', () => {
  let redis: TestRedis;
  let instances: Instance[];
  let browser: Browser;
  const sockets: TestSocket[] = [];

  beforeAll(async () => {
    mkdirSync(SHOTS, { recursive: true });
    redis = await TestRedis.start();
    [instances, browser] = await Promise.all([
      startInstances(2, { redisUrl: redis.url, env: { HERALD_SECRET: SECRET } }),
      launchBrowser({ smallVideo: false }),
    ]);
  });
  afterAll(async () => {
    for (const s of sockets) s.ws.terminate();
    await browser?.close().catch(() => {});
    await Promise.all((instances ?? []).map((i) => i.kill()));
    await redis?.stop();
  });

  async function peer(i: Instance, room: string): Promise<JsonClient> {
    const c = new JsonClient(await TestSocket.open(`${i.ws}/ws?token=${await mint(uniq('p'), room, ['peer'])}`));
    sockets.push(c.socket);
    await c.hello();
    await c.join(room, 'peer');
    return c;
  }

  it('rooms held on either instance appear, with members by instance, and both instances are up', { timeout: 90_000 }, async () => {
    const [a, b] = instances as [Instance, Instance];
    const tag = uniq('cl');
    const onA = `${tag}-a`;
    const onB = `${tag}-b`;
    const both = `${tag}-both`;
    await peer(a, onA);
    await peer(b, onB);
    await peer(b, onB);
    await peer(a, both);
    await peer(b, both);

    const context = await browser.newContext();
    const { page, errors } = await openConsole(context, `${b.http}/console.html`);
    await signIn(page, await mint('operator', '*', ['admin']));
    await page.fill('#search', tag);
    for (const [room, n] of [[onA, 1], [onB, 2], [both, 2]] as const) await waitRowMembers(page, room, n);
    expect(await page.$$eval('#rooms tbody tr', (rows) => rows.map((r) => (r as HTMLElement).dataset.room))).toEqual([onA, onB, both]);
    const spread = await Promise.all([onA, onB, both].map(async (r) => Object.values(await chipsOf(page, r, 'instances')).sort()));
    expect(spread).toEqual([[1], [2], [1, 1]]);

    await page.waitForFunction(() => document.querySelectorAll('#instances tr[data-up="true"]').length === 2, null, { timeout: 15_000 });
    expect(await page.textContent('#stat-instances')).toBe('2 / 2');
    expect(await page.$$eval('#instances tbody .tag', (t) => t.length)).toBe(1); // "this one"

    // Sorting by members: smallest first, then largest first (ties by id).
    const order = () => page.$$eval('#rooms tbody tr', (rows) => rows.map((r) => (r as HTMLElement).dataset.room));
    await page.click('button.sort[data-sort="members"]');
    await page.waitForSelector('button.sort[data-sort="members"].asc');
    await page.waitForFunction(([last]) => (document.querySelector('#rooms tbody tr:last-child') as HTMLElement)?.dataset.room === last, [both] as const, { timeout: 15_000 });
    expect(await order()).toEqual([onA, onB, both]);
    await page.click('button.sort[data-sort="members"]');
    await page.waitForFunction(([first]) => (document.querySelector('#rooms tbody tr') as HTMLElement)?.dataset.room === first, [onB] as const, { timeout: 15_000 });
    expect(await order()).toEqual([onB, both, onA]);
    await page.screenshot({ path: `${SHOTS}/console-cluster.png`, fullPage: true });
    expect(errors).toEqual([]);
    await context.close();
  });
});
