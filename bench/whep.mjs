#!/usr/bin/env node
// `node bench/whep.mjs` (also the last step of `npm run bench`, except --smoke): WHEP timings in
// real Chromium. Runs test/e2e/whep-timing.test.ts, which plays /broadcast.html with whip-whep's
// WHEPClient and @eyevinn/webrtc-player (one viewer at a time, then 8 at once), and prints the
// time from each player's POST to its 201 and to its first decoded frame. Writes
// bench/results/whep-<timestamp>.json. The test asserts only that every player plays.
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
mkdirSync(join(ROOT, 'bench/results'), { recursive: true });
const out = join(ROOT, 'bench/results', `whep-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
const start = loadavg();
const run = spawnSync(process.execPath, [join(ROOT, 'node_modules/vitest/vitest.mjs'), 'run', 'test/e2e/whep-timing.test.ts'], {
  cwd: ROOT,
  env: { ...process.env, WHEP_TIMINGS_OUT: out },
  stdio: ['ignore', 'pipe', 'inherit'],
});
if (run.status !== 0) {
  process.stdout.write(run.stdout);
  console.error('bench/whep.mjs: the timing run failed');
  process.exit(1);
}
const results = JSON.parse(readFileSync(out, 'utf8'));
const median = (v) => {
  const s = [...v].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m] : Math.round((s[m - 1] + s[m]) / 2);
};
console.log(`\nWHEP timings (ms; load average at start ${start.map((x) => x.toFixed(2)).join(' ')})`);
console.log('| viewers | POST→201 median | max | POST→first frame median | max | players |');
console.log('|---|---|---|---|---|---|');
for (const [name, r] of Object.entries(results)) {
  console.log(`| ${name} | ${median(r.post201)} | ${Math.max(...r.post201)} | ${median(r.postFrame)} | ${Math.max(...r.postFrame)} | ${r.post201.length} |`);
}
console.log(`\nresults: ${out.slice(ROOT.length + 1)}`);
