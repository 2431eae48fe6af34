// Preloaded into every server the bench starts (node --expose-gc --import bench/probe.mjs):
// on SIGUSR2 it runs a full GC, so RSS is read after garbage is gone. Nothing else.
process.on('SIGUSR2', () => {
  globalThis.gc?.();
});
