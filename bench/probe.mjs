// Preloaded into every server the bench starts (node --expose-gc --import bench/probe.mjs):
// on SIGUSR2 it runs a full GC, so RSS is read after garbage is gone, and writes
// process.memoryUsage() (heapUsed: the live JS objects, steadier than RSS, which also counts
// the heap's spare room) to <tmpdir>/herald-probe-<pid>.json for the bench to read.
import { writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

process.on('SIGUSR2', () => {
  globalThis.gc?.();
  try {
    writeFileSync(join(tmpdir(), `herald-probe-${process.pid}.json`), JSON.stringify(process.memoryUsage()));
  } catch {}
});
