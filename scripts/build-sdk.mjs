// Bundles the browser SDK (client/) into one ES module, dist/sdk/herald.js: served at
// /sdk/herald.js and exported as `herald/client`, with its types bundled into one
// dist/sdk/herald.d.ts (protocol types inlined from src/protocol/json-messages.ts).
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { build } from 'esbuild';
import { generateDtsBundle } from 'dts-bundle-generator';
import { sdkBuildOptions } from './sdk-build-options.mjs';

await build(sdkBuildOptions);

const types = 'dist/sdk/herald.d.ts';
const [dts] = generateDtsBundle([{ filePath: 'client/index.ts', output: { noBanner: true } }], {
  preferredConfigPath: 'client/tsconfig.json',
});
mkdirSync(dirname(types), { recursive: true });
writeFileSync(types, dts);
