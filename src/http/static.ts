import { fileURLToPath } from 'node:url';
import type Koa from 'koa';
import mount from 'koa-mount';
import serve from 'koa-static';

/** Package-root folders; the same relative path works from src/http and dist/http. */
const publicDir = fileURLToPath(new URL('../../public', import.meta.url));
const sdkDir = fileURLToPath(new URL('../../dist/sdk', import.meta.url));

/** Demo pages from public/, and the bundled browser SDK at /sdk/herald.js. */
export function staticFiles(app: Koa): void {
  app.use(mount('/sdk', serve(sdkDir, { maxage: 0 })));
  app.use(serve(publicDir, { extensions: ['html'] }));
}
