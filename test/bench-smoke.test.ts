import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

/**
 * `npm run bench -- --smoke`: the bench starts the baseline relay and Herald (dist/), drives
 * them with a few pairs and a few hundred messages, and prints the ratio table. This checks
 * that it runs and reports; it asserts no timing (numbers on a shared machine mean nothing here).
 */
describe('bench smoke', () => {
  const out = mkdtempSync(join(tmpdir(), 'herald-bench-'));
  afterAll(() => rmSync(out, { recursive: true, force: true }));

  it('runs the smoke bench and prints a table with Herald/baseline ratio columns', async () => {
    const child = spawn(process.execPath, ['bench/run.mjs', '--smoke', `--out=${out}`], {
      cwd: join(import.meta.dirname, '..'),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const code = await new Promise<number | null>((resolve) => {
      const timer = setTimeout(() => child.kill('SIGKILL'), 170_000);
      child.once('exit', (c) => {
        clearTimeout(timer);
        resolve(c);
      });
    });
    expect(code, stderr.slice(-2000)).toBe(0);

    const lines = stdout.split('\n');
    const header = lines.find((l) => l.startsWith('| benchmark |'));
    expect(header).toBeDefined();
    expect(header).toContain('PeerServer');
    expect(header).toContain('seed/base');
    expect(header).toContain('json/base');
    expect(header).toContain('json/peer');
    for (const name of ['relay 2.5 KB SDP, msg/s', 'relay 250 B candidate, msg/s', 'RTT p99 ms', 'join storm']) {
      const row = lines.find((l) => l.startsWith(`| ${name}`));
      expect(row, `row "${name}" in:\n${stdout}`).toBeDefined();
      const cells = row!.split('|').map((c) => c.trim());
      // | name | baseline | PeerServer | seed | seed/base | json | json/base | json/peer | json/seed | target |
      for (const i of [2, 3, 4, 6]) expect(cells[i]).toMatch(/^[\d,.]+$/);
      for (const i of [5, 7, 8, 9]) expect(cells[i]).toMatch(/^\d+\.\d\d×/);
    }
    expect(stdout).not.toContain('problems:');

    const files = readdirSync(out).filter((f) => f.endsWith('.json'));
    expect(files).toHaveLength(1);
    const saved = JSON.parse(readFileSync(join(out, files[0]!), 'utf8'));
    expect(saved.meta.mode).toBe('smoke');
    expect(saved.table).toContain('seed/base');
  }, 180_000);
});
