// Herald attached to an existing Koa app: one http.Server, one port. The app keeps its own
// routes and its own WebSocket (/app/echo); Herald takes only WebSocket upgrades on /ws, and
// its HTTP routes (SDK, health) are mounted under /herald. docs/deploy.md "Embedding".
//   node examples/koa-attach/server.mjs      (PORT, default 3000; HERALD_SECRET optional)
import http from 'node:http';
import Router from '@koa/router';
import Koa from 'koa';
import mount from 'koa-mount';
import { WebSocketServer } from 'ws';
import { Herald, loadConfig } from 'herald';

export async function startApp({ port = 3000, host = '127.0.0.1', heraldSettings = {} } = {}) {
  // The app as it was before Herald: a page, an API route, a WebSocket of its own.
  const app = new Koa();
  const router = new Router();
  router.get('/', (ctx) => {
    ctx.type = 'html';
    ctx.body = '<!doctype html><title>My app</title><p>My app. Herald is at <code>/ws</code>, its SDK at <code>/herald/sdk/herald.js</code>.</p>';
  });
  router.get('/api/hello', (ctx) => (ctx.body = { hello: 'world' }));
  app.use(router.routes()).use(router.allowedMethods());

  // Herald joins: its HTTP routes mounted under /herald (before app.callback(), which fixes
  // the middleware list), its WebSocket upgrades taken from the same server below.
  const herald = new Herald(loadConfig({ logLevel: 'warn', ...heraldSettings }));
  app.use(mount('/herald', herald.app));

  const server = http.createServer(app.callback());
  const echo = new WebSocketServer({ noServer: true });
  echo.on('connection', (ws) => ws.on('message', (data) => ws.send(`echo: ${data}`)));
  server.on('upgrade', (req, socket, head) => {
    if (req.url === '/app/echo') echo.handleUpgrade(req, socket, head, (ws) => echo.emit('connection', ws, req));
  });

  await herald.attach(server); // upgrades on /ws only

  await new Promise((resolve) => server.listen(port, host, resolve));
  return {
    server,
    herald,
    port: server.address().port,
    /** Drains Herald (bye to its clients), then closes the app's server. */
    async close() {
      await herald.stop();
      echo.close();
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const running = await startApp({ port: Number(process.env.PORT ?? 3000), host: process.env.HOST ?? '127.0.0.1' });
  console.log(`app and Herald on http://127.0.0.1:${running.port}`);
  process.once('SIGTERM', () => running.close().then(() => process.exit(0)));
  process.once('SIGINT', () => running.close().then(() => process.exit(0)));
}
