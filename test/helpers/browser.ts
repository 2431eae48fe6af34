import { existsSync, renameSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';

/**
 * Real-browser helpers for e2e tests: Debian's Chromium with fake media devices, and waits
 * on WebRTC stats (decoded frames) instead of sleeps. Generic over the page under test:
 * the page exposes its RTCPeerConnection(s) somewhere on `window`, and the test passes an
 * expression that finds them (e.g. `'window.herald.pc'` or `'[...window.herald.pcs.values()]'`).
 */

export const CHROMIUM_PATH = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

export const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--use-fake-device-for-media-stream',
  '--use-fake-ui-for-media-stream',
  '--disable-gpu',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

export interface LaunchOptions {
  /**
   * Feed the fake camera from a small generated clip (160×120, 15 fps, 2 s, looped) instead
   * of Chromium's 640×480 default: much cheaper to encode and decode on a small CI box.
   * Default true.
   */
  smallVideo?: boolean;
  /** Extra Chromium flags. */
  args?: string[];
}

export async function launchBrowser(options: LaunchOptions = {}): Promise<Browser> {
  const args = [...CHROMIUM_ARGS, ...(options.args ?? [])];
  if (options.smallVideo ?? true) args.push(`--use-file-for-fake-video-capture=${fakeVideoFile()}`);
  return chromium.launch({ executablePath: CHROMIUM_PATH, args });
}

/** A context for a page that captures the camera and microphone. */
export function broadcasterContext(browser: Browser): Promise<BrowserContext> {
  return browser.newContext({ permissions: ['camera', 'microphone'] });
}

/** A context for a page that only receives. */
export function viewerContext(browser: Browser): Promise<BrowserContext> {
  return browser.newContext();
}

/** Opens `url` in a fresh page of `context`, forwarding page errors to the test's stderr. */
export async function openPage(context: BrowserContext, url: string, label = url): Promise<Page> {
  const page = await context.newPage();
  page.on('pageerror', (err) => console.error(`[${label}] page error: ${err.message}`));
  page.on('console', (msg) => {
    // 404s of optional resources (e.g. /api/ice-servers before it exists) are not errors of the page.
    if (msg.type() === 'error' && !/Failed to load resource.*404/.test(msg.text())) console.error(`[${label}] console: ${msg.text()}`);
  });
  await page.goto(url);
  return page;
}

/**
 * A JS expression evaluated in the page that yields an RTCPeerConnection, a list of them,
 * or a function returning either. A function is sent as its source, so it must not close
 * over test-side variables.
 */
export type PcExpr = string | (() => unknown);

export interface FramesOptions {
  /** Overall budget for both phases, ms. Default 45 s. */
  timeout?: number;
  /** How often the page polls getStats, ms. Default 100. */
  pollingInterval?: number;
}

export interface FramesResult {
  /** framesDecoded of each connection when all of them had decoded a frame. */
  first: number[];
  /** framesDecoded of each connection once all of them had grown past `first`. */
  later: number[];
  /** When every connection had decoded its first frame (Date.now()). */
  firstAt: number;
}

/**
 * Waits until every connection named by `pcExpr` has decoded at least one inbound video
 * frame, records the counts, then waits until every count has grown further. Decoded
 * frames that keep growing are the proof that media flows, not just that ICE connected.
 */
export async function waitForFramesDecoded(page: Page, pcExpr: PcExpr, options: FramesOptions = {}): Promise<FramesResult> {
  const deadline = Date.now() + (options.timeout ?? 45_000);
  const first = await pollFrames(page, pcExpr, null, deadline, options.pollingInterval);
  const firstAt = Date.now();
  const later = await pollFrames(page, pcExpr, first, deadline, options.pollingInterval);
  return { first, later, firstAt };
}

/**
 * Milliseconds from `since` (Date.now() taken by the test, e.g. just before `page.goto`)
 * until every connection named by `pcExpr` decoded its first video frame.
 */
export async function timeToFirstFrame(page: Page, pcExpr: PcExpr, since: number, options: FramesOptions = {}): Promise<number> {
  const deadline = Date.now() + (options.timeout ?? 45_000);
  await pollFrames(page, pcExpr, null, deadline, options.pollingInterval);
  return Date.now() - since;
}

/** Reads the current inbound video framesDecoded of each connection (0 when none yet). */
export async function framesDecoded(page: Page, pcExpr: PcExpr): Promise<number[]> {
  return page.evaluate(async (expr) => {
    const found = (0, eval)(expr);
    const value = typeof found === 'function' ? found() : found;
    const list: RTCPeerConnection[] = value == null ? [] : Array.isArray(value) ? value : [value];
    return Promise.all(
      list.map(async (pc) => {
        let n = 0;
        if (pc.connectionState === 'closed') return 0;
        (await pc.getStats()).forEach((s: any) => {
          if (s.type === 'inbound-rtp' && s.kind === 'video') n = Math.max(n, s.framesDecoded ?? 0);
        });
        return n;
      }),
    );
  }, exprSource(pcExpr));
}

function exprSource(pcExpr: PcExpr): string {
  return typeof pcExpr === 'function' ? `(${pcExpr.toString()})` : `(${pcExpr})`;
}

/**
 * Reads the counts until they satisfy the condition or the deadline passes. Each read is one
 * getStats() round in the page, so the polling interval only spaces the reads out.
 *
 * `baseline` null: wait until there is at least one connection and all have framesDecoded > 0.
 * Otherwise: wait until connection i has framesDecoded > baseline[i] for every i.
 */
async function pollFrames(page: Page, pcExpr: PcExpr, baseline: number[] | null, deadline: number, polling = 100): Promise<number[]> {
  const done = (counts: number[]) =>
    counts.length > 0 &&
    (baseline ? counts.length === baseline.length && counts.every((c, i) => c > baseline[i]!) : counts.every((c) => c > 0));
  let last: number[] | string = 'unread';
  while (Date.now() < deadline && !page.isClosed()) {
    try {
      const counts = await framesDecoded(page, pcExpr);
      if (done(counts)) return counts;
      last = counts;
    } catch (err) {
      // A navigation (page.reload) destroys the context mid-read: keep reading on the new one.
      if (!/context was destroyed|navigat|Target closed/i.test(String(err))) throw err;
      last = 'navigating';
    }
    await new Promise((r) => setTimeout(r, polling));
  }
  throw new Error(
    `framesDecoded did not ${baseline ? `grow past ${JSON.stringify(baseline)}` : 'become > 0'} in time ` +
      `(last read ${JSON.stringify(last)}) at ${page.isClosed() ? 'a closed page' : page.url()}`,
  );
}

/**
 * Writes (once per machine) a small looping Y4M clip: a bright bar sweeping across a dark
 * field, so consecutive frames differ and the encoder keeps producing real frames.
 */
export function fakeVideoFile(): string {
  const w = 160, h = 120, fps = 15, frames = 30;
  const file = join(tmpdir(), `herald-fake-${w}x${h}-${fps}fps.y4m`);
  if (existsSync(file)) return file;
  const header = Buffer.from(`YUV4MPEG2 W${w} H${h} F${fps}:1 Ip A1:1 C420jpeg\n`, 'ascii');
  const ySize = w * h, cSize = (w / 2) * (h / 2);
  const parts: Buffer[] = [header];
  for (let f = 0; f < frames; f++) {
    parts.push(Buffer.from('FRAME\n', 'ascii'));
    const y = Buffer.alloc(ySize);
    const barX = Math.floor((f / frames) * w);
    for (let row = 0; row < h; row++) {
      for (let col = 0; col < w; col++) {
        const inBar = col >= barX && col < barX + 16;
        y[row * w + col] = inBar ? 235 : 40 + ((row + col + f * 4) & 63);
      }
    }
    parts.push(y, Buffer.alloc(cSize, 110 + f), Buffer.alloc(cSize, 150 - f));
  }
  const tmp = `${file}.${process.pid}.tmp`;
  writeFileSync(tmp, Buffer.concat(parts));
  renameSync(tmp, file);
  return file;
}
