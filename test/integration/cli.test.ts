import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { Tokens } from '../../src/auth/tokens.js';
import { serve, sigtermDrains } from '../helpers/served.js';

/**
 * The `herald` CLI as built (dist/cli.js; `npm run build` first): help and version exit 0,
 * usage names every command and flag, a bad or missing flag value is one line naming the
 * flag (no stack), `herald token` mints only what the server accepts, and SIGTERM drains
 * however the server was started (`node dist/cli.js serve`, `npm start`).
 */

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const CLI = `${ROOT}dist/cli.js`;
const { version } = JSON.parse(readFileSync(`${ROOT}package.json`, 'utf8'));
const SECRET = 'cli-test-secret-0123456789';

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

function herald(args: string[], env: Record<string, string> = {}): Promise<Run> {
  return new Promise((resolve) => {
    const clean = { ...process.env, ...env } as Record<string, string>;
    if (!('HERALD_SECRET' in env)) delete clean.HERALD_SECRET;
    execFile(process.execPath, [CLI, ...args], { env: clean, timeout: 90_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? ((err as any).code ?? 1) : 0, stdout, stderr });
    });
  });
}

/** One line on stderr, naming `flag`, no stack trace, exit 1. */
function oneLineError(run: Run, mentions: string | RegExp): void {
  expect(run.code).toBe(1);
  expect(run.stdout).toBe('');
  const lines = run.stderr.trimEnd().split('\n');
  expect(lines, run.stderr).toHaveLength(1);
  expect(lines[0]).toMatch(/^herald: /);
  expect(lines[0]).not.toMatch(/\bat .*\(|node:internal|Error:/);
  if (typeof mentions === 'string') expect(lines[0]).toContain(mentions);
  else expect(lines[0]).toMatch(mentions);
}

describe('herald CLI: help and usage', () => {
  it('--help exits 0 and names every command and every flag', { timeout: 120_000 }, async () => {
    const run = await herald(['--help']);
    expect(run.code).toBe(0);
    for (const word of ['serve', 'token', '--version', '--port', '--host', '--redis-url', '--log-level', '--sub', '--room', '--any-room', '--role', '--ttl', '--secret']) {
      expect(run.stdout).toContain(word);
    }
  });

  it('--version (and -v) print the package version and exit 0', { timeout: 120_000 }, async () => {
    for (const flag of ['--version', '-v']) {
      const run = await herald([flag]);
      expect(run.code).toBe(0);
      expect(run.stdout.trim()).toBe(version);
    }
  });

  it('<command> --help exits 0 and lists that command’s flags', { timeout: 120_000 }, async () => {
    const serveHelp = await herald(['serve', '--help']);
    expect(serveHelp.code).toBe(0);
    for (const flag of ['--port', '--host', '--redis-url', '--log-level']) expect(serveHelp.stdout).toContain(flag);
    const tokenHelp = await herald(['token', '--help']);
    expect(tokenHelp.code).toBe(0);
    for (const flag of ['--sub', '--room', '--any-room', '--role', '--ttl', '--secret']) expect(tokenHelp.stdout).toContain(flag);
    const helpCommand = await herald(['help', 'token']);
    expect(helpCommand.code).toBe(0);
    expect(helpCommand.stdout).toContain('--any-room');
  });

  it('bad or missing flag values, unknown flags and commands: one line naming the culprit', { timeout: 120_000 }, async () => {
    // Each case is its own process; run them side by side (a loaded box starts node slowly).
    const cases: [Promise<Run>, string | RegExp][] = [
      [herald(['serve', '--port']), "'--port <n>' argument missing"],
      [herald(['serve', '--port', 'abc']), /--port <n>.*'abc' is invalid/],
      [herald(['serve', '--port', '70000']), /--port <n>.*'70000' is invalid/],
      [herald(['serve', '--log-level', 'loud']), /--log-level <level>.*'loud'.*Allowed choices/],
      [herald(['serve', '--redis-url', 'not a url']), /--redis-url <url>.*is invalid/],
      [herald(['serve', '--nope']), "unknown option '--nope'"],
      [herald(['serve', '--host']), "'--host <host>' argument missing"],
      [herald(['bogus']), "unknown command 'bogus'"],
      [herald(['token', '--room', 'r']), "'--sub <id>' not specified"],
      [herald(['token', '--sub', 'a', '--room', 'r', '--ttl', 'forever'], { HERALD_SECRET: SECRET }), /--ttl <ttl>.*'forever' is invalid/],
      [herald(['token', '--sub', 'a', '--room', 'r', '--role', 'peer,king'], { HERALD_SECRET: SECRET }), /--role <roles>.*"king" is not a role/],
      // A setting from the environment is named by its variable, its value shown (not a secret).
      [herald(['serve'], { PORT: 'eighty' }), /invalid setting PORT \(eighty\)/],
    ];
    for (const [run, mentions] of cases) oneLineError(await run, mentions);
  });
});

describe('herald token', () => {
  it('mints a token the server’s Tokens accept, for one room and the roles asked', { timeout: 120_000 }, async () => {
    const run = await herald(['token', '--sub', 'alice', '--room', 'lobby', '--role', 'peer', '--role', 'viewer,broadcaster', '--ttl', '10m'], { HERALD_SECRET: SECRET });
    expect(run.code).toBe(0);
    const grant = await new Tokens(SECRET).verify(run.stdout.trim());
    expect(grant.sub).toBe('alice');
    expect(grant.room).toBe('lobby');
    expect([...grant.roles].sort()).toEqual(['broadcaster', 'peer', 'viewer']);
    expect(grant.exp - Date.now() / 1000).toBeGreaterThan(9 * 60);
    expect(grant.exp - Date.now() / 1000).toBeLessThanOrEqual(10 * 60 + 1);
  });

  it('applies the server’s secret rules: no secret, or one under 16 characters, is refused', { timeout: 120_000 }, async () => {
    oneLineError(await herald(['token', '--sub', 'a', '--room', 'r']), 'needs a secret');
    oneLineError(await herald(['token', '--sub', 'a', '--room', 'r', '--secret', 'short']), '--secret: must be at least 16 characters');
    const fromEnv = await herald(['token', '--sub', 'a', '--room', 'r'], { HERALD_SECRET: 'fifteen-chars!!' });
    oneLineError(fromEnv, 'HERALD_SECRET: must be at least 16 characters');
    expect(fromEnv.stderr).not.toContain('fifteen-chars!!');
  });

  it('refuses an any-room token unless --any-room says so', { timeout: 120_000 }, async () => {
    oneLineError(await herald(['token', '--sub', 'a'], { HERALD_SECRET: SECRET }), '--any-room');
    oneLineError(await herald(['token', '--sub', 'a', '--room', '*'], { HERALD_SECRET: SECRET }), "--room '*' would be valid in every room");
    oneLineError(await herald(['token', '--sub', 'a', '--room', 'r', '--any-room'], { HERALD_SECRET: SECRET }), 'exclude each other');
    const any = await herald(['token', '--sub', 'ops', '--any-room', '--role', 'admin'], { HERALD_SECRET: SECRET });
    expect(any.code).toBe(0);
    const grant = await new Tokens(SECRET).verify(any.stdout.trim());
    expect(grant.room).toBe('*');
    expect([...grant.roles]).toEqual(['admin']);
  });
});

describe('SIGTERM drains however Herald is started', () => {
  it('node dist/cli.js serve: the client gets bye, the port is freed, the process exits 0', { timeout: 180_000 }, async () => {
    const served = await serve([process.execPath, CLI, 'serve'], { cwd: ROOT, label: 'node dist/cli.js serve' });
    const result = await sigtermDrains(served);
    expect(result).toMatchObject({ closeCode: 1012, exitCode: 0 });
  });

  it('npm start, SIGTERM to the npm process only (as a container runtime sends it): drained the same way', { timeout: 180_000 }, async () => {
    const served = await serve(['npm', 'start', '--silent'], { cwd: ROOT, label: 'npm start' });
    const result = await sigtermDrains(served);
    expect(result).toMatchObject({ closeCode: 1012, exitCode: 0 });
    // npm ran node below itself, and that node is gone too.
    expect(result.descendants).toBeGreaterThanOrEqual(1);
  });
});
