import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

/**
 * onOrphaned (src/parent-watch.ts, as built in dist/), in real processes: a node child below `sh -c`, whose shell
 * is killed (what happens to `npx herald serve` when npm passes SIGTERM to its shell). The
 * child reports whether the callback fired by the time several watch intervals have passed
 * since it saw its parent change (timers fire in order of due time, so no guessing).
 */

// The built module (npm run build; pretest does it): the child is plain node.
const WATCH = fileURLToPath(new URL('../../dist/parent-watch.js', import.meta.url));

const CHILD = `
const { onOrphaned } = await import(${JSON.stringify(WATCH)});
let fired = false;
onOrphaned(() => (fired = true), process.env, 50);
const parent = process.ppid;
console.log('ready');
const poll = setInterval(() => {
  if (process.ppid === parent) return;
  clearInterval(poll);
  setTimeout(() => { console.log(fired ? 'fired' : 'not fired'); process.exit(0); }, 400);
}, 20);
`;

function orphan(env: Record<string, string | undefined>): Promise<string> {
  return new Promise((resolve, reject) => {
    // `; :` keeps the shell as the child's parent (no exec of the last command).
    const sh = spawn('sh', ['-c', `"${process.execPath}" --input-type=module -e "$CHILD" ; :`], {
      env: { ...process.env, ...env, CHILD },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    sh.stdout.on('data', (d) => {
      out += d;
      if (out.includes('ready') && !sh.killed) sh.kill('SIGKILL');
      const verdict = /(not fired|fired)/.exec(out.replace('ready', ''));
      if (verdict) resolve(verdict[1]!);
    });
    sh.stderr.on('data', (d) => (out += d));
    setTimeout(() => reject(new Error(`no verdict: ${out}`)), 20_000).unref();
  });
}

describe('onOrphaned', () => {
  it('under npm (npm_command set), an orphaned process drains as if signalled', async () => {
    expect(await orphan({ npm_command: 'exec' })).toBe('fired');
  });

  it('started any other way, being orphaned is left alone', async () => {
    expect(await orphan({ npm_command: undefined })).toBe('not fired');
  });
});
