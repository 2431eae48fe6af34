// Bundles the browser SDK (client/) into one ES module served at /sdk/herald.js.
import { build } from 'esbuild';
import { existsSync } from 'node:fs';

if (existsSync('client/index.ts')) {
  await build({
    entryPoints: ['client/index.ts'],
    bundle: true,
    format: 'esm',
    target: 'es2020',
    sourcemap: true,
    outfile: 'dist/sdk/herald.js',
    logLevel: 'warning',
  });
}
