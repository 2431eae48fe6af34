import { describe, expect, it } from 'vitest';
import { RateHistory, sumHistories } from '../../src/observability/rate-history.js';

describe('RateHistory', () => {
  it('keeps the newest `size` buckets, adds to the newest, and fills skipped buckets with nothing', () => {
    const h = new RateHistory(1000, 3);
    h.record(10_000, { messages: 1 });
    h.record(10_000, { messages: 2, errors: 1 });
    h.record(12_000, { messages: 5 }); // 11_000 was skipped by a stalled timer
    expect(h.snapshot()).toEqual({ start: 10_000, stepMs: 1000, series: { messages: [3, 0, 5], errors: [1, 0, 0] } });
    h.record(13_000, { messages: 7 });
    expect(h.snapshot()).toEqual({ start: 11_000, stepMs: 1000, series: { messages: [0, 5, 7] } });
  });

  it('sumHistories adds instances bucket by bucket over a window, ignoring other steps and misaligned starts', () => {
    const a = { start: 1000, stepMs: 1000, series: { messages: [1, 2, 3] } };
    const b = { start: 2000, stepMs: 1000, series: { messages: [10, 20, 30], errors: [1, 1, 1] } };
    const other = { start: 1000, stepMs: 500, series: { messages: [100, 100] } };
    const skewed = { start: 1500, stepMs: 1000, series: { messages: [100] } };
    expect(sumHistories([a, b, other, skewed], 1000, 4000, 4)).toEqual({
      start: 1000,
      stepMs: 1000,
      series: { messages: [1, 12, 23, 30], errors: [0, 1, 1, 1] },
    });
    expect(sumHistories([], 1000, 4000, 2)).toEqual({ start: 3000, stepMs: 1000, series: {} });
  });
});
