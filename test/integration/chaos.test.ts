import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

/**
 * A short run of the chaos soak (`npm run chaos`, scripts/chaos.mjs): HAProxy in front of
 * three instances and one Redis, SDK-like JSON clients signalling throughout while one
 * instance is SIGKILLed, one drained, Redis restarted and one instance's Redis link
 * black-holed. Asserts counts, not times (times are the script's output, in docs/operations.md).
 */
const SCRIPT = fileURLToPath(new URL('../../scripts/chaos.mjs', import.meta.url));
const CLIENTS = 24;

function runChaos(): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [SCRIPT, '--short', '--json', '--clients', String(CLIENTS), '--spacing', '6000'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (d) => (output += d));
    child.stderr.on('data', (d) => (output += d));
    child.once('exit', (code) => resolve({ code, output }));
  });
}

describe('chaos soak, short run', () => {
  it('loses and duplicates nothing, and every client is back in its room after each fault', async () => {
    const { code, output } = await runChaos();
    const line = output.split('\n').find((l) => l.startsWith('CHAOS-RESULT '));
    expect(line, output.slice(-4000)).toBeDefined();
    expect(code).toBe(0);
    const result = JSON.parse(line!.slice('CHAOS-RESULT '.length));
    console.log(output.split('\n').filter((l) => l.startsWith('[chaos')).join('\n'));
    expect(result.faults.map((f: { fault: string }) => f.fault)).toEqual(['SIGKILL h1', 'SIGTERM (drain) h2', 'restart Redis', "black-hole h3's Redis link for 8 s"]);
    for (const f of result.faults) expect(f.clientsBack).toBe(CLIENTS);
    expect(result.faults[0].clientsDropped).toBeGreaterThan(0); // the killed instance held clients
    expect(result.sent).toBeGreaterThan(CLIENTS * 10);
    expect(result.delivered).toBeGreaterThan(result.sent / 2);
    expect(result.lost).toBe(0);
    expect(result.duplicated).toBe(0);
    expect(result.outOfOrder).toBe(0);
  }, 240_000);
});
