import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import type { BrowserContext, Page } from 'playwright-core';
import { openPage } from '../helpers/browser.js';

/**
 * Two third-party WHEP players as their users ship them: `whip-whep`'s WHEPClient and
 * `@eyevinn/webrtc-player`, bundled from node_modules by esbuild into one script for a page
 * served by a tiny server of its own on another loopback port (another origin than Herald's).
 * The page plays with either through `window.players` and keeps each player's connection in
 * `window.pcs`; a fetch wrapper records when each WHEP POST left and when its 201 came back.
 */

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

const ENTRY = `
import { WHEPClient } from 'whip-whep/whep.js';
import { WebRTCPlayer } from '@eyevinn/webrtc-player';

const pcs = (window.pcs = []);
const posts = (window.posts = []);
const errors = (window.playerErrors = []);
const requests = (window.requests = []);
const plainFetch = window.fetch.bind(window);
window.fetch = async (url, init = {}) => {
  const method = init.method || 'GET';
  // A load balancer in the page: window.route sends the session's PATCH / DELETE to another instance.
  if (window.route && (method === 'PATCH' || method === 'DELETE')) url = new URL(new URL(String(url)).pathname, window.route).href;
  const isPost = method === 'POST' && String(url).includes('/whep/');
  const entry = isPost ? { url: String(url), postAt: Date.now() } : undefined;
  const res = await plainFetch(url, init);
  if (entry) posts.push({ ...entry, id: new URL(String(url)).searchParams.get('player'), status: res.status, answeredAt: Date.now() });
  requests.push({ method, url: String(url), status: res.status });
  return res;
};

/** Each player's connection by the id it was started with (that id rides in its POST URL as ?player=). */
const byId = (window.byId = {});
const tagged = (url, id) => (id === undefined ? url : url + (url.includes('?') ? '&' : '?') + 'player=' + id);
const firstFrames = (window.firstFrames = {});
/** Stamps (Date.now()) when each tagged connection decodes its first video frame, polling every 20 ms. */
window.watchFirstFrames = () => {
  const poll = setInterval(async () => {
    for (const [id, pc] of Object.entries(byId)) {
      if (firstFrames[id]) continue;
      (await pc.getStats()).forEach((s) => {
        if (s.type === 'inbound-rtp' && s.kind === 'video' && s.framesDecoded > 0 && !firstFrames[id]) firstFrames[id] = Date.now();
      });
    }
  }, 20);
  return poll;
};

window.players = {
  /** whip-whep: the player makes the transceivers and its own RTCPeerConnection. */
  async whipWhep(url, token, id) {
    const pc = new RTCPeerConnection();
    pc.addTransceiver('video', { direction: 'recvonly' });
    pc.addTransceiver('audio', { direction: 'recvonly' });
    pcs.push(pc);
    if (id !== undefined) byId[id] = pc;
    url = tagged(url, id);
    const client = new WHEPClient();
    (window.clients ||= []).push(client);
    try {
      await client.view(pc, url, token);
      return 'viewing';
    } catch (err) {
      errors.push(String(err));
      return String(err);
    }
  },
  /** @eyevinn/webrtc-player: a video element, type 'whep', no public STUN (loopback only). */
  async eyevinn(url, token, id) {
    url = tagged(url, id);
    const video = document.createElement('video');
    video.muted = true;
    video.autoplay = true;
    document.body.append(video);
    const player = new WebRTCPlayer({ video, type: 'whep', iceServers: [] });
    (window.eyevinn ||= []).push(player);
    player.on('initial-connection-failed', () => errors.push('initial-connection-failed'));
    player.on('connect-error', () => errors.push('connect-error'));
    await player.load(new URL(url), token ? 'Bearer ' + token : undefined);
    // The player keeps its RTCPeerConnection in a field of its own.
    pcs.push(player.peer);
    if (id !== undefined) byId[id] = player.peer;
    return 'loading';
  },
  /** Ends every player the way each one does (DELETE on its resource). */
  async stopAll() {
    for (const c of window.clients || []) await c.stop().catch(() => {});
    for (const p of window.eyevinn || []) await p.unload().catch(() => {});
  },
};
`;

const PAGE = `<!doctype html>
<meta charset="utf-8">
<title>WHEP players</title>
<link rel="icon" href="data:,">
<script src="/players.js"></script>
<body></body>`;

/** Every inbound connection of the page's players (a getStats target for test/helpers/browser.ts). */
export const PLAYER_PCS = 'window.pcs || []';

export class PlayerSite {
  private constructor(
    private readonly server: Server,
    readonly origin: string,
  ) {}

  static async start(): Promise<PlayerSite> {
    const bundle = await build({
      stdin: { contents: ENTRY, resolveDir: ROOT, loader: 'js' },
      bundle: true,
      format: 'iife',
      platform: 'browser',
      target: 'chrome110',
      write: false,
      logLevel: 'silent',
    });
    const script = bundle.outputFiles[0]!.contents;
    const server = createServer((req, res) => {
      if (req.url?.startsWith('/players.js')) {
        res.writeHead(200, { 'Content-Type': 'text/javascript' });
        res.end(script);
      } else {
        res.writeHead(200, { 'Content-Type': 'text/html' });
        res.end(PAGE);
      }
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return new PlayerSite(server, `http://127.0.0.1:${(server.address() as AddressInfo).port}`);
  }

  open(context: BrowserContext, label = 'players'): Promise<Page> {
    return openPage(context, `${this.origin}/`, label);
  }

  async stop(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

/** The WHEP POSTs the page made so far: when each left, its status and when it came back (Date.now()). */
export function posts(page: Page): Promise<{ url: string; id: string | null; postAt: number; status: number; answeredAt: number }[]> {
  return page.evaluate(() => (window as any).posts);
}

/** Every request the page's players made: method, URL, status. */
export function requests(page: Page): Promise<{ method: string; url: string; status: number }[]> {
  return page.evaluate(() => (window as any).requests);
}
