// An app backend that mints Herald tokens for its signed-in users. Herald runs on its own
// (e.g. `HERALD_SECRET=… HERALD_ALLOWED_ORIGINS=http://127.0.0.1:3000 npx herald serve`);
// this backend shares HERALD_SECRET with it, signs users in (a cookie session), and hands a
// signed-in user a short-lived token for the room. The page (page.html) gives the SDK a token
// provider that calls /herald-token on every (re)connect. docs/deploy.md "Tokens from your backend".
//   HERALD_SECRET=… HERALD_URL=ws://127.0.0.1:9800/ws node examples/token-backend/server.mjs
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import Router from '@koa/router';
import Koa from 'koa';
import { Tokens } from 'herald';

const ROOM = 'lobby';
const page = readFileSync(new URL('./page.html', import.meta.url), 'utf8');
// The SDK as the package exports it (herald/client), served to the page by this backend.
const sdk = readFileSync(new URL(import.meta.resolve('herald/client')), 'utf8');

/** `heraldWs`: Herald's WebSocket URL as the browser reaches it (a function: may be known late). */
export async function startBackend({ secret, heraldWs, port = 3000, host = '127.0.0.1' }) {
  const tokens = new Tokens(secret);
  /** session id → user name. A real app has its own sign-in; this one trusts the name given. */
  const sessions = new Map();
  const app = new Koa();
  const router = new Router();

  const user = (ctx) => sessions.get(ctx.cookies.get('sid') ?? '');

  router.get('/', (ctx) => {
    ctx.type = 'html';
    ctx.body = page.replace('__HERALD_WS__', JSON.stringify(heraldWs()));
  });
  router.get('/herald.js', (ctx) => {
    ctx.type = 'text/javascript';
    ctx.body = sdk;
  });
  router.post('/login', (ctx) => {
    const name = String(ctx.query.name ?? '');
    if (!/^[a-z0-9_-]{1,32}$/i.test(name)) ctx.throw(400, 'name: 1-32 letters, digits, _ or -');
    const sid = randomBytes(18).toString('base64url');
    sessions.set(sid, name);
    ctx.cookies.set('sid', sid, { httpOnly: true, sameSite: 'strict' });
    ctx.body = { user: name };
  });
  // The token endpoint: only for a signed-in user, only for this app's room, for minutes.
  router.get('/herald-token', async (ctx) => {
    const name = user(ctx);
    if (!name) ctx.throw(401, 'sign in first');
    ctx.type = 'text/plain';
    ctx.set('Cache-Control', 'no-store');
    ctx.body = await tokens.mint({ sub: name, room: ROOM, roles: ['peer'], ttl: '10m' });
  });
  app.use(router.routes()).use(router.allowedMethods());

  const server = http.createServer(app.callback());
  await new Promise((resolve) => server.listen(port, host, resolve));
  return {
    server,
    origin: `http://${host}:${server.address().port}`,
    close: () => new Promise((resolve) => (server.closeAllConnections(), server.close(resolve))),
  };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const backend = await startBackend({
    secret: process.env.HERALD_SECRET,
    heraldWs: () => process.env.HERALD_URL ?? 'ws://127.0.0.1:9800/ws',
    port: Number(process.env.PORT ?? 3000),
  });
  console.log(`backend on ${backend.origin}`);
}
