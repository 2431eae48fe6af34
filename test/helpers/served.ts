import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { httpStatus, waitFor } from './instances.js';
import { JsonClient } from './json-client.js';

/**
 * Herald started the way a user or a container starts it (`npm start`, `npx herald serve`,
 * a Dockerfile's CMD), then stopped the way a container runtime stops it: SIGTERM to the
 * started process only. Shared by the CLI, packaging and container-recipe tests.
 */

/** Processes spawned here: killed if the test process exits first. */
const live = new Set<ChildProcess>();
process.once('exit', () => {
  for (const proc of live) proc.kill('SIGKILL');
});

export interface Served {
  proc: ChildProcess;
  port: number;
  output(): string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/**
 * Spawns `argv` (with PORT=0 HOST=127.0.0.1 unless `env` says otherwise) and resolves once it
 * printed its URL and /readyz answers 200.
 */
export async function serve(argv: string[], options: { cwd: string; env?: Record<string, string>; label: string }): Promise<Served> {
  const env: Record<string, string> = {
    ...(process.env as Record<string, string>),
    PORT: '0',
    HOST: '127.0.0.1',
    LOG_LEVEL: 'warn',
    HERALD_DRAIN_GRACE_MS: '0',
    HERALD_DRAIN_DEADLINE_MS: '3000',
    ...options.env,
  };
  const proc = spawn(argv[0]!, argv.slice(1), { cwd: options.cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
  live.add(proc);
  let out = '';
  proc.stdout!.on('data', (d) => (out += d));
  proc.stderr!.on('data', (d) => (out += d));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    proc.once('exit', (code, signal) => {
      live.delete(proc);
      resolve({ code, signal });
    }),
  );
  let port = 0;
  try {
    await waitFor(`${options.label} to print its URL`, () => {
      if (proc.exitCode !== null) throw new Error(`${options.label} exited early (${proc.exitCode}): ${out}`);
      const match = /herald listening on http:\/\/[^:\s]+:(\d+)/.exec(out);
      if (match) port = Number(match[1]);
      return port > 0;
    }, 120_000);
    await waitFor(`${options.label} /readyz 200`, async () => (await httpStatus(`http://127.0.0.1:${port}/readyz`)) === 200, 60_000);
  } catch (err) {
    proc.kill('SIGKILL');
    throw new Error(`${(err as Error).message}; output: ${out.slice(-2000)}`);
  }
  return { proc, port, output: () => out, exited };
}

/** Every descendant pid of `pid` now (Linux /proc). */
export function descendants(pid: number): number[] {
  const parentOf = new Map<number, number>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      // Field 4 of /proc/<pid>/stat, after the parenthesised command name.
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      parentOf.set(Number(entry), Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]));
    } catch {
      /* gone meanwhile */
    }
  }
  const found: number[] = [];
  const walk = (p: number) => {
    for (const [child, parent] of parentOf) if (parent === p) found.push(child), walk(child);
  };
  walk(pid);
  return found;
}

function alive(pid: number): boolean {
  if (!existsSync(`/proc/${pid}`)) return false;
  try {
    // A zombie has exited; only its parent has yet to reap it.
    return !/\) Z /.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
}

export function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const probe = createServer();
    probe.once('error', () => resolve(false));
    probe.listen(port, '127.0.0.1', () => probe.close(() => resolve(true)));
  });
}

export interface DrainResult {
  byeReason: string;
  closeCode: number;
  exitCode: number | null;
  /** Processes the start command had spawned below itself (npm → node: 1 or more). */
  descendants: number;
}

/**
 * With a JSON client in a room, sends SIGTERM to the started process only (as `docker stop`
 * does to PID 1), then checks that the client got `bye` and a 1012 close, that the process
 * and everything it spawned exited, and that the port is free again.
 */
export async function sigtermDrains(served: Served): Promise<DrainResult> {
  const client = await JsonClient.open(`ws://127.0.0.1:${served.port}`);
  await client.request({ type: 'hello' }, 30_000);
  await client.request({ type: 'join', room: 'drain-check', role: 'peer' }, 30_000);
  const below = descendants(served.proc.pid!);
  served.proc.kill('SIGTERM');
  const bye = await client.socket.nextJson('bye', 30_000);
  const closed = await client.socket.closed;
  const { code } = await Promise.race([
    served.exited,
    new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`still running 40 s after SIGTERM: ${served.output().slice(-2000)}`)), 40_000)),
  ]);
  await waitFor('every process it spawned to exit', () => below.every((pid) => !alive(pid)), 30_000);
  await waitFor(`port ${served.port} to be free`, () => portFree(served.port), 30_000);
  return { byeReason: String(bye.reason), closeCode: closed.code, exitCode: code, descendants: below.length };
}
