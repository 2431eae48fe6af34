import { describe, expect, it } from 'vitest';
import { Signal, fastSignal } from '../../src/protocol/json-messages.js';

/** A small seeded PRNG so the corpus is the same on every run. */
function prng(seed: number) {
  return () => ((seed = (seed * 1664525 + 1013904223) >>> 0) / 2 ** 32);
}

const values: unknown[] = [
  undefined, null, 0, -1, 1.5, 2 ** 53, 7, '', 'r', 'x'.repeat(128), 'x'.repeat(129), 'x'.repeat(200), 'x'.repeat(201),
  'a\u0000b', 'tab\there', '房间', [], {}, { description: { type: 'offer', sdp: 'v=0' } }, { candidate: { candidate: 'c' } },
  true, 'signal', [[[[]]]], JSON.parse('['.repeat(40) + ']'.repeat(40)),
];

describe('fastSignal', () => {
  it('accepts only what the Signal schema accepts, and every well-formed signal', () => {
    const rand = prng(42);
    const pick = <T>(xs: T[]) => xs[Math.floor(rand() * xs.length)]!;
    let acceptedByBoth = 0;
    for (let i = 0; i < 5000; i++) {
      const msg: Record<string, unknown> = { type: rand() < 0.9 ? 'signal' : pick(values) };
      for (const key of ['id', 'room', 'to', 'data']) {
        const r = rand();
        if (r < 0.6) msg[key] = key === 'id' ? Math.floor(rand() * 100) : key === 'data' ? pick(values.filter((v) => v !== undefined)) : 'ok';
        else if (r < 0.9) msg[key] = pick(values);
      }
      if (rand() < 0.05) msg[pick(['extra', '__proto__', 'constructor'])] = 1;
      const fast = fastSignal(msg) !== undefined;
      const zod = Signal.safeParse(msg).success;
      expect(fast, JSON.stringify(msg)?.slice(0, 200)).toBe(zod);
      if (fast) acceptedByBoth++;
    }
    // The corpus exercises both sides: plenty of valid and invalid signals.
    expect(acceptedByBoth).toBeGreaterThan(500);
    expect(acceptedByBoth).toBeLessThan(4500);
  });

  it('passes a typical SDP signal through as the same object', () => {
    const msg = { type: 'signal', id: 3, room: 'r', to: 'p', data: { description: { type: 'offer', sdp: 'v=0\r\n' } } };
    expect(fastSignal(msg)).toBe(msg);
  });
});
