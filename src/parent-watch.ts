/**
 * Under `npx herald serve`, or an npm script that runs `herald serve`, node runs below
 * `sh -c`, itself below npm. npm passes SIGTERM on to that shell only, and the shell (dash)
 * dies without passing it on: node is orphaned and nobody will signal it again. From node's
 * side its parent changed; `onOrphaned` treats that as the SIGTERM it was meant to get.
 *
 * Only under npm (`npm_command` is set for `npm exec`/`npx` and `npm run`): started any other
 * way, an orphaned server (`nohup … &` from a shell that exits) is what its owner intended.
 * `npm start` in this repository execs node, so there npm signals node itself.
 */
export function onOrphaned(callback: () => void, env: NodeJS.ProcessEnv = process.env, intervalMs = 250): () => void {
  if (!env.npm_command) return () => {};
  const parent = process.ppid;
  const timer = setInterval(() => {
    if (process.ppid === parent) return;
    clearInterval(timer);
    callback();
  }, intervalMs);
  timer.unref();
  return () => clearInterval(timer);
}
