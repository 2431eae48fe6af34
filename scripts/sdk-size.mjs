// Prints the browser SDK's size as served (dist/sdk/herald.js) and minified + gzipped, the
// figure to compare with other SDKs. `npm run sdk-size` (after `npm run build`).
import { readFileSync } from 'node:fs';
import { gzipSync } from 'node:zlib';
import { build } from 'esbuild';
import { sdkBuildOptions } from './sdk-build-options.mjs';

const served = readFileSync(sdkBuildOptions.outfile);
const { outputFiles } = await build({ ...sdkBuildOptions, minify: true, sourcemap: false, write: false });
const minified = outputFiles[0].contents;
const kb = (n) => `${n} B (${(n / 1024).toFixed(1)} KiB)`;
console.log(`served (${sdkBuildOptions.outfile}): ${kb(served.length)}, gzipped ${kb(gzipSync(served, { level: 9 }).length)}`);
console.log(`minified: ${kb(minified.length)}, minified + gzipped: ${kb(gzipSync(minified, { level: 9 }).length)}`);
