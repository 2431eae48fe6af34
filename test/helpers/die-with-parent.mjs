// Preloaded (node --import) into every Herald process a test spawns. The test holds the write
// end of this process's stdin; when the test process dies in any way (a killed vitest worker
// runs no 'exit' handler), the pipe closes and this instance goes too, instead of living on
// as an orphan that loads the machine for the rest of the run.
process.stdin.on('end', () => process.kill(process.pid, 'SIGKILL'));
process.stdin.on('error', () => process.kill(process.pid, 'SIGKILL'));
process.stdin.resume();
// Reading stdin must not keep a drained instance alive: the server exits on its own terms.
process.stdin.unref();
