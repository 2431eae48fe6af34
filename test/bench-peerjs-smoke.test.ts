import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

/**
 * `node bench/peerjs.mjs --mode=smoke`: starts PeerServer and Herald, drives both with the same
 * few PeerJS clients and prints the ratio table. Checks that it runs and reports every row for
 * both servers; it asserts no timing.
 */
describe('PeerJS bench smoke', () => {
  const out = mkdtempSync(join(tmpdir(), 'herald-peerjs-bench-'));
  afterAll(() => rmSync(out, { recursive: true, force: true }));

  it('measures PeerServer and Herald in one run and prints herald/peer ratios', async () => {
    const child = spawn(process.execPath, ['bench/peerjs.mjs', '--mode=smoke', `--out=${out}`], { cwd: join(import.meta.dirname, '..'), stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const code = await new Promise<number | null>((resolve) => {
      const timer = setTimeout(() => child.kill('SIGKILL'), 110_000);
      child.once('exit', (c) => {
        clearTimeout(timer);
        resolve(c);
      });
    });
    expect(code, stderr.slice(-2000)).toBe(0);
    expect(stdout).toContain('| benchmark | peer | herald | herald/peer | goal |');
    const row = (name: string) => {
      const line = stdout.split('\n').find((l) => l.startsWith(`| ${name}`));
      expect(line, `row "${name}" in:\n${stdout}`).toBeDefined();
      return line!.split('|').map((c) => c.trim());
    };
    for (const name of ['PeerJS relay 2.5 KB, msg/s', 'PeerJS relay 250 B, msg/s']) expect(row(name)[4]).toMatch(/^\d+\.\d\d×$/);
    // A smoke run's idle window is too short for CPU to register; both servers are measured.
    for (const name of ['PeerJS memory per idle conn', 'PeerJS JS heap per idle conn', 'PeerJS idle CPU']) {
      const [, , peer, herald] = row(name);
      expect(peer).toMatch(/^-?[\d,.]+$/);
      expect(herald).toMatch(/^-?[\d,.]+$/);
    }
    expect(stdout).not.toContain('peerjs failures:');
    const files = readdirSync(join(out, 'peerjs'));
    expect(files).toHaveLength(1);
    const saved = JSON.parse(readFileSync(join(out, 'peerjs', files[0]!), 'utf8'));
    expect(saved.results.peer.find((r: { label: string }) => r.label === 'thr250').relayed).toBeGreaterThan(0);
    expect(saved.results.herald.find((r: { label: string }) => r.label === 'thr250').relayed).toBeGreaterThan(0);
  }, 120_000);
});
