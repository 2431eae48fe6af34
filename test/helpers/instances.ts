import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const CLI = `${ROOT}dist/cli.js`;
const DIE_WITH_PARENT = new URL('./die-with-parent.mjs', import.meta.url).href;

export interface InstanceOptions {
  redisUrl?: string;
  /** Extra environment (HERALD_* settings). */
  env?: Record<string, string>;
  /** Name used in failure messages. */
  name?: string;
  /** The /readyz status `start` waits for (default 200; 503 for an instance that must not become ready). */
  readyStatus?: number;
}

/** Polls `probe` until it returns true, failing after `timeoutMs` with `what` in the message. */
export async function waitFor(what: string, probe: () => boolean | Promise<boolean>, timeoutMs = 10_000, everyMs = 50): Promise<number> {
  const started = Date.now();
  for (;;) {
    if (await probe()) return Date.now() - started;
    if (Date.now() - started > timeoutMs) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

export async function httpStatus(url: string): Promise<number> {
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(2000) });
    await res.arrayBuffer();
    return res.status;
  } catch {
    return 0;
  }
}

/** How many JSON connections an instance holds now, from its /metrics gauge. */
export async function jsonConnections(i: Instance): Promise<number> {
  const text = await (await fetch(`${i.http}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith('herald_connections{protocol="json"}'));
  return Number(line?.split(' ')[1] ?? NaN);
}

/** Every instance process still running: killed if the test process exits first. */
const live = new Set<ChildProcess>();
process.once('exit', () => {
  for (const proc of live) proc.kill('SIGKILL');
});

/**
 * One Herald instance in its own process (`node dist/cli.js serve --port 0`), the way it
 * runs in production: the tests can SIGKILL it or SIGTERM it. Run `npx tsc` first.
 */
export class Instance {
  readonly proc: ChildProcess;
  port = 0;
  output = '';
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;

  private constructor(readonly name: string, options: InstanceOptions) {
    if (!existsSync(CLI)) throw new Error(`${CLI} is missing: build with npx tsc -p tsconfig.json first`);
    const env: Record<string, string> = {
      ...(process.env as Record<string, string>),
      LOG_LEVEL: 'warn',
      HERALD_DRAIN_GRACE_MS: '0',
      HERALD_DRAIN_DEADLINE_MS: '2000',
      ...options.env,
    };
    if (options.redisUrl) env.REDIS_URL = options.redisUrl;
    this.proc = spawn(process.execPath, ['--import', DIE_WITH_PARENT, CLI, 'serve', '--port', '0', '--host', '127.0.0.1'], {
      env,
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    this.proc.stdout!.on('data', (d) => (this.output += d));
    this.proc.stderr!.on('data', (d) => (this.output += d));
    live.add(this.proc);
    this.exited = new Promise((resolve) =>
      this.proc.once('exit', (code, signal) => {
        live.delete(this.proc);
        resolve({ code, signal });
      }),
    );
  }

  /** Spawns an instance and resolves once it listens and /readyz answers 200. */
  static async start(options: InstanceOptions = {}): Promise<Instance> {
    const instance = new Instance(options.name ?? 'herald', options);
    try {
      await waitFor(`${instance.name} to print its URL`, () => {
        if (instance.proc.exitCode !== null) throw new Error(`${instance.name} exited: ${instance.output}`);
        const match = /herald listening on http:\/\/[^:\s]+:(\d+)/.exec(instance.output);
        if (match) instance.port = Number(match[1]);
        return instance.port > 0;
      }, 30_000);
    } catch (err) {
      instance.proc.kill('SIGKILL');
      throw new Error(`${(err as Error).message}; output: ${instance.output.slice(-2000)}`);
    }
    try {
      await instance.waitReady(options.readyStatus ?? 200, 20_000);
    } catch (err) {
      await instance.kill();
      throw err;
    }
    return instance;
  }

  get http(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  get ws(): string {
    return `ws://127.0.0.1:${this.port}`;
  }

  get alive(): boolean {
    return this.proc.exitCode === null && this.proc.signalCode === null;
  }

  readyz(): Promise<number> {
    return httpStatus(`${this.http}/readyz`);
  }

  /** Waits until /readyz answers `status` (200 ready, 503 not ready). */
  waitReady(status = 200, timeoutMs = 15_000): Promise<number> {
    return waitFor(`${this.name} /readyz ${status}`, async () => {
      if (!this.alive) throw new Error(`${this.name} exited: ${this.output}`);
      return (await this.readyz()) === status;
    }, timeoutMs);
  }

  /** SIGKILL (a crash): resolves once the process is gone. */
  async kill(): Promise<void> {
    if (!this.alive) return;
    this.proc.kill('SIGKILL');
    await this.exited;
  }

  /** SIGTERM (a drain): resolves with the exit code. */
  async terminate(timeoutMs = 15_000): Promise<number | null> {
    if (!this.alive) return this.proc.exitCode;
    this.proc.kill('SIGTERM');
    const timer = setTimeout(() => this.proc.kill('SIGKILL'), timeoutMs);
    const { code } = await this.exited;
    clearTimeout(timer);
    return code;
  }
}

/** Starts `n` instances on one Redis, in parallel; if one fails, the others are killed too. */
export async function startInstances(n: number, options: InstanceOptions = {}): Promise<Instance[]> {
  const results = await Promise.allSettled(
    Array.from({ length: n }, (_, i) => Instance.start({ ...options, name: `herald-${String.fromCharCode(65 + i)}` })),
  );
  const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  const started = results.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
  if (failed) {
    await Promise.all(started.map((i) => i.kill()));
    throw failed.reason;
  }
  return started;
}
