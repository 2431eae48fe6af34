import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import type { BrowserContext, Page } from 'playwright-core';
import { openPage, waitForFramesDecoded, type FramesResult } from '../helpers/browser.js';

/**
 * A PeerJS app as a developer would ship it: a static page that loads the real `peerjs`
 * browser bundle (node_modules/peerjs/dist/peerjs.min.js), served by a tiny server of its own
 * on another loopback port, so the page's origin is not Herald's. The page drives `Peer`
 * through a few helpers on `window.app` that the tests call with page.evaluate.
 */

/** Browser flag: loopback host candidates instead of mDNS names (no mDNS responder in CI). */
export const PEERJS_BROWSER_ARGS = ['--disable-features=WebRtcHideLocalIpsWithMdns'];

const BUNDLE = fileURLToPath(new URL('../../node_modules/peerjs/dist/peerjs.min.js', import.meta.url));

const PAGE = `<!doctype html>
<meta charset="utf-8">
<title>PeerJS app</title>
<script src="/peerjs.min.js"></script>
<script>
const q = new URLSearchParams(location.search);
const server = { host: q.get('host'), port: Number(q.get('port')), path: '/', key: 'peerjs' };
// The page's own WebRTC config: loopback host candidates only (the default lists public STUN/TURN).
if (q.get('ice') !== 'default') server.config = { iceServers: [] };
const describe = (d) =>
  d instanceof ArrayBuffer ? ['binary', [...new Uint8Array(d)]]
  : ArrayBuffer.isView(d) ? ['binary', [...new Uint8Array(d.buffer, d.byteOffset, d.byteLength)]]
  : typeof d === 'string' ? ['string', d] : ['json', d];
const app = (window.app = {
  peer: undefined, conn: undefined, call: undefined, inbox: [], errors: [], events: [],
  /** Creates the Peer; resolves with {id} on open or {error} on the first error. */
  start(id, options = {}) {
    return new Promise((resolve) => {
      const peer = id ? new Peer(id, { ...server, ...options }) : new Peer({ ...server, ...options });
      app.peer = peer;
      peer.on('open', (pid) => { app.events.push('open:' + pid); resolve({ id: pid }); });
      peer.on('error', (e) => { app.errors.push(e.type); resolve({ error: e.type }); });
      peer.on('disconnected', () => app.events.push('disconnected'));
      peer.on('connection', (c) => app.attach(c));
      peer.on('call', async (call) => {
        app.call = call;
        call.on('stream', () => app.events.push('stream'));
        call.answer(await navigator.mediaDevices.getUserMedia({ video: true, audio: false }));
      });
    });
  },
  attach(c) {
    app.conn = c;
    c.on('data', (d) => app.inbox.push(describe(d)));
    c.on('open', () => app.events.push('conn-open'));
  },
  /** Opens a DataConnection; resolves 'open' or the peer error that came instead. */
  connect(id) {
    return new Promise((resolve) => {
      app.peer.once('error', (e) => resolve('error:' + e.type));
      const c = app.peer.connect(id, { reliable: true });
      app.attach(c);
      c.on('open', () => resolve('open'));
    });
  },
  sendAll(tag) {
    app.conn.send({ tag, list: [1, 'two', null, true], nested: { x: 1.5 } });
    app.conn.send('hello from ' + tag);
    app.conn.send(new Uint8Array([0, 1, 2, 254, 255]));
  },
  async callTo(id) {
    const stream = await navigator.mediaDevices.getUserMedia({ video: true, audio: false });
    app.call = app.peer.call(id, stream);
    app.call.on('stream', () => app.events.push('stream'));
  },
});
</script>`;

export class PeerJsApp {
  private constructor(
    private readonly server: Server,
    readonly origin: string,
  ) {}

  static async start(): Promise<PeerJsApp> {
    const bundle = readFileSync(BUNDLE);
    const server = createServer((req, res) => {
      if (req.url?.startsWith('/peerjs.min.js')) {
        res.writeHead(200, { 'content-type': 'text/javascript' }).end(bundle);
      } else if (req.url === '/favicon.ico') {
        res.writeHead(204).end();
      } else {
        res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' }).end(PAGE);
      }
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    return new PeerJsApp(server, `http://127.0.0.1:${(server.address() as AddressInfo).port}`);
  }

  /** Opens the app page, pointed at a PeerJS server on `port`. */
  open(context: BrowserContext, port: number, label: string, ice: 'none' | 'default' = 'none'): Promise<Page> {
    return openPage(context, `${this.origin}/?host=127.0.0.1&port=${port}&ice=${ice}`, label);
  }

  async stop(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((r) => this.server.close(() => r()));
  }
}

/** Expected `describe()`d data after `sendAll(tag)`. */
export function sentBy(tag: string): unknown[] {
  return [
    ['json', { tag, list: [1, 'two', null, true], nested: { x: 1.5 } }],
    ['string', `hello from ${tag}`],
    ['binary', [0, 1, 2, 254, 255]],
  ];
}

/** Waits until the page's app has received `n` data messages; returns them. */
export async function inbox(page: Page, n: number): Promise<unknown[]> {
  await page.waitForFunction((k) => (window as any).app.inbox.length >= k, n, { polling: 50, timeout: 30_000 });
  return page.evaluate(() => (window as any).app.inbox);
}

/** Starts the page's Peer (a fixed id, or one from the server) and resolves with its id. */
export async function started(p: Page, id?: string): Promise<string> {
  const r = await p.evaluate((pid) => (window as any).app.start(pid), id);
  if (!r || typeof r.id !== 'string') throw new Error(`Peer did not open: ${JSON.stringify(r)}`);
  return r.id;
}

/** `a` opens a DataConnection to `bId`; both send JSON, a string and binary; both receive all three. */
export async function dataBothWays(a: Page, b: Page, bId: string): Promise<void> {
  const opened = await a.evaluate((id) => (window as any).app.connect(id), bId);
  if (opened !== 'open') throw new Error(`DataConnection did not open: ${opened}`);
  await a.evaluate(() => (window as any).app.sendAll('a'));
  expectEqual(await inbox(b, 3), sentBy('a'));
  await b.waitForFunction(() => (window as any).app.events.includes('conn-open'), null, { timeout: 30_000 });
  await b.evaluate(() => (window as any).app.sendAll('b'));
  expectEqual(await inbox(a, 3), sentBy('b'));
}

/** `a` calls `bId`, which answers with its camera: resolves with both sides' decoded-frame counts. */
export async function mediaBothWays(a: Page, b: Page, bId: string): Promise<[FramesResult, FramesResult]> {
  await a.evaluate((id) => (window as any).app.callTo(id), bId);
  const pc = 'window.app.call && window.app.call.peerConnection';
  return Promise.all([waitForFramesDecoded(a, pc, { timeout: 60_000 }), waitForFramesDecoded(b, pc, { timeout: 60_000 })]);
}

function expectEqual(got: unknown, want: unknown): void {
  if (JSON.stringify(got) !== JSON.stringify(want)) throw new Error(`received ${JSON.stringify(got)}, expected ${JSON.stringify(want)}`);
}
