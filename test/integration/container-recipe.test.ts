import { execFileSync, spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { envOf, execForm, parseDockerfile, type Stage } from '../helpers/dockerfile.js';
import { serve, sigtermDrains } from '../helpers/served.js';

/**
 * The Dockerfile's own steps, run outside a container (this machine has no container daemon)
 * in a temp dir: its build stage packs the checkout, its runtime stage installs the tarball
 * production-only, then its CMD starts Herald, its HEALTHCHECK probes /readyz, and SIGTERM to
 * that one process (what `docker stop` sends PID 1) drains it. Every command comes from the
 * Dockerfile; the only deviations are named here:
 * - the container's absolute dirs (/src, /pkg, /app) map to the checkout and temp dirs;
 * - `RUN npm ci` is not repeated: `npm test` installed and built the checkout already;
 * - npm prefers its local cache (npm_config_prefer_offline), and HOST/PORT are loopback/0.
 * Needs `npm run build` first (pretest does it).
 */

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const tmp = mkdtempSync(join(tmpdir(), 'herald-recipe-'));
const DIRS: Record<string, string> = { '/src': ROOT.replace(/\/$/, ''), '/pkg': join(tmp, 'pkg'), '/app': join(tmp, 'app') };
/** Steps of the build stage that the checkout has done already. */
const DONE_IN_CHECKOUT = ['npm ci'];

afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** Maps the container's absolute paths in a command line to the test's dirs. */
function mapPaths(text: string): string {
  return text.replace(/(^|[\s=])(\/(?:src|pkg|app))(?=\/|\s|$)/g, (_, pre: string, dir: string) => pre + DIRS[dir]);
}
function mapPath(path: string, cwd: string): string {
  const mapped = mapPaths(path);
  return mapped.startsWith('/') ? mapped : resolve(cwd, mapped);
}

interface Runtime {
  env: Record<string, string>;
  cwd: string;
  user: string | undefined;
  cmd: string[] | undefined;
  healthcheck: string[] | undefined;
  ran: string[];
  skipped: string[];
}

/** Runs a stage's steps; returns what the stage leaves for starting the container. */
function runStage(stage: Stage): Runtime {
  const rt: Runtime = { env: {}, cwd: '/', user: undefined, cmd: undefined, healthcheck: undefined, ran: [], skipped: [] };
  for (const step of stage.steps) {
    switch (step.op) {
      case 'ENV':
        Object.assign(rt.env, envOf(step.args));
        break;
      case 'WORKDIR':
        rt.cwd = mapPath(step.args, rt.cwd);
        mkdirSync(rt.cwd, { recursive: true });
        break;
      case 'COPY': {
        const [from, to] = step.args.split(/\s+/) as [string, string];
        if (!step.flags.from) {
          // The build context is the checkout itself, which is where this stage works.
          expect(`${from} ${to}`).toBe('. .');
          expect(rt.cwd).toBe(DIRS['/src']);
          break;
        }
        const [src, dest] = [mapPath(from, rt.cwd), mapPath(to, rt.cwd)];
        if (src !== dest) cpSync(src, dest, { recursive: true });
        break;
      }
      case 'RUN': {
        if (DONE_IN_CHECKOUT.includes(step.args)) {
          rt.skipped.push(step.args);
          break;
        }
        const command = mapPaths(step.args);
        for (const dir of Object.values(DIRS)) mkdirSync(dir, { recursive: true });
        const run = spawnSync('sh', ['-c', command], {
          cwd: rt.cwd,
          env: { ...process.env, ...rt.env, npm_config_prefer_offline: 'true', npm_config_update_notifier: 'false' },
          encoding: 'utf8',
          timeout: 240_000,
        });
        if (run.status !== 0) throw new Error(`RUN ${command} failed (${run.status}): ${run.stderr.slice(-3000)}`);
        rt.ran.push(step.args);
        break;
      }
      case 'USER':
        rt.user = step.args;
        break;
      case 'HEALTHCHECK':
        rt.healthcheck = execForm(step.args);
        break;
      case 'CMD':
        rt.cmd = execForm(step.args);
        break;
      case 'EXPOSE':
        break;
      default:
        throw new Error(`the recipe test does not know Dockerfile instruction ${step.op}: teach it, so the test keeps running every step`);
    }
  }
  return rt;
}

function healthcheck(argv: string[], env: Record<string, string>, cwd: string): number {
  return spawnSync(argv[0]!, argv.slice(1), { cwd, env: { ...process.env, ...env }, timeout: 20_000 }).status ?? -1;
}

describe('the container recipe (Dockerfile), run outside a container', () => {
  it('packs, installs production-only, starts with its CMD, is healthy on /readyz, and drains on SIGTERM', { timeout: 300_000 }, async () => {
    const stages = parseDockerfile(readFileSync(join(ROOT, 'Dockerfile'), 'utf8'));
    expect(stages.length).toBeGreaterThanOrEqual(2); // multi-stage: build tools stay out of the image
    const [build, runtime] = [stages[0]!, stages.at(-1)!];

    const built = runStage(build);
    expect(built.skipped).toEqual(DONE_IN_CHECKOUT);
    expect(built.ran.some((r) => r.startsWith('npm pack'))).toBe(true);

    const rt = runStage(runtime);
    const app = rt.cwd;
    // Non-root, node itself as PID 1 (no npm or shell to swallow SIGTERM), a health check on /readyz.
    expect(rt.user).toBeDefined();
    expect(['root', '0']).not.toContain(rt.user);
    expect(rt.cmd?.[0]).toBe('node');
    expect(rt.healthcheck?.join(' ')).toContain('/readyz');

    // Production-only: the package and its dependencies, none of the dev tools.
    expect(existsSync(join(app, 'node_modules/herald/dist/cli.js'))).toBe(true);
    expect(existsSync(join(app, 'node_modules/ws'))).toBe(true);
    for (const dev of ['vitest', 'typescript', 'playwright-core', 'esbuild']) expect(existsSync(join(app, 'node_modules', dev)), dev).toBe(false);
    const installed = JSON.parse(readFileSync(join(app, 'node_modules/herald/package.json'), 'utf8'));
    expect(installed.version).toBe(JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')).version);

    const served = await serve(rt.cmd!, { cwd: app, env: { ...rt.env, PORT: '0', HOST: '127.0.0.1' }, label: 'the recipe CMD' });
    expect(healthcheck(rt.healthcheck!, { ...rt.env, PORT: String(served.port) }, app)).toBe(0);
    const drained = await sigtermDrains(served);
    expect(drained).toMatchObject({ closeCode: 1012, exitCode: 0 });
    // With Herald gone the same health check fails, so it is a real probe.
    expect(healthcheck(rt.healthcheck!, { ...rt.env, PORT: String(served.port) }, app)).not.toBe(0);
  });

  it('compose.yaml runs two Herald instances on one Redis, and coturn with the TURN REST secret Herald signs with', () => {
    const compose = readFileSync(join(ROOT, 'compose.yaml'), 'utf8');
    const heralds = compose.match(/^ {2}herald-[\w-]+:/gm) ?? [];
    expect(heralds).toHaveLength(2);
    expect(compose).toMatch(/^ {2}redis:\n\s+image: redis:/m);
    expect(compose).toMatch(/^ {2}coturn:\n\s+image: coturn\/coturn/m);
    expect(compose).toContain('REDIS_URL: redis://redis:6379');
    expect(compose).toContain('--use-auth-secret');
    expect(compose).toContain('--static-auth-secret=${TURN_SECRET');
    expect(compose).toMatch(/TURN_SECRET: \$\{TURN_SECRET/);
    // Every Herald setting it names exists (src/config.ts ENV_NAMES).
    const names = execFileSync(process.execPath, ['-e', "import('./dist/config.js').then((m) => console.log(Object.values(m.ENV_NAMES).join(' ')))"], { cwd: ROOT, encoding: 'utf8' }).trim().split(' ');
    const environment = [...compose.matchAll(/^ {6}([A-Z_]+):/gm)].map((m) => m[1]!);
    expect(environment.length).toBeGreaterThan(0);
    for (const name of environment) expect(names, name).toContain(name);
  });
});
