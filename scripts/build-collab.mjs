// Bundles the /collab.html demo (demo/collab.js with yjs and y-webrtc) into one browser
// script, dist/sdk/collab.js, served at /sdk/collab.js.
import { build } from 'esbuild';

await build({
  entryPoints: ['demo/collab.js'],
  bundle: true,
  format: 'iife',
  platform: 'browser',
  target: 'es2020',
  minify: true,
  sourcemap: false,
  outfile: 'dist/sdk/collab.js',
  logLevel: 'warning',
});
