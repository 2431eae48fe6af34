// Bundles the browser SDK (client/) into one ES module served at /sdk/herald.js.
import { build } from 'esbuild';
import { sdkBuildOptions } from './sdk-build-options.mjs';

await build(sdkBuildOptions);
