import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { build } from 'esbuild';
import { sdkBuildOptions } from '../../scripts/sdk-build-options.mjs';

/**
 * Bundles client/ into dist/sdk/herald.js (what the server serves at /sdk/herald.js) with the
 * same options as scripts/build-sdk.mjs (scripts/sdk-build-options.mjs), so an e2e test never runs a stale SDK.
 *
 * Test files run in parallel and each builds in its beforeAll, while the other file's pages
 * may be loading the bundle: so a file is only rewritten when its content changed, and then
 * atomically (temp file + rename), never truncated under a reader.
 */
export async function buildSdk(): Promise<void> {
  const result = await build({ ...sdkBuildOptions, write: false });
  for (const file of result.outputFiles) {
    let current: string | undefined;
    try {
      current = readFileSync(file.path, 'utf8');
    } catch {
      /* not built yet */
    }
    if (current === file.text) continue;
    mkdirSync(dirname(file.path), { recursive: true });
    const tmp = `${file.path}.${process.pid}.tmp`;
    writeFileSync(tmp, file.contents);
    renameSync(tmp, file.path);
  }
}
