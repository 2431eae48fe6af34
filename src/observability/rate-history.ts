/**
 * A fixed-size ring of per-interval samples for the console's charts: for each completed
 * interval, how much each counter grew and what each gauge read. Intervals are aligned to
 * wall-clock multiples of `stepMs`, so the histories of several instances add up bucket by
 * bucket (see `sumHistories`).
 */

/** One instance's history, oldest first; `start` is the first bucket's start (epoch ms). */
export interface History {
  start: number;
  stepMs: number;
  /** Per series, one value per bucket: a counter's growth in the bucket, or a gauge's reading at its end. */
  series: Record<string, number[]>;
}

export class RateHistory {
  private readonly buckets: { t: number; values: Record<string, number> }[] = [];

  constructor(readonly stepMs: number, readonly size: number) {}

  /** Records the bucket that starts at `t` (adds to it when it is already the newest). */
  record(t: number, values: Record<string, number>): void {
    const last = this.buckets.at(-1);
    if (last && last.t === t) {
      for (const [k, v] of Object.entries(values)) last.values[k] = (last.values[k] ?? 0) + v;
      return;
    }
    // A bucket the timer skipped (a stalled event loop) is recorded as empty.
    if (last) for (let gap = last.t + this.stepMs; gap < t; gap += this.stepMs) this.push(gap, {});
    this.push(t, { ...values });
  }

  private push(t: number, values: Record<string, number>): void {
    this.buckets.push({ t, values });
    if (this.buckets.length > this.size) this.buckets.shift();
  }

  snapshot(): History {
    const names = new Set(this.buckets.flatMap((b) => Object.keys(b.values)));
    const series: Record<string, number[]> = {};
    for (const name of names) series[name] = this.buckets.map((b) => b.values[name] ?? 0);
    return { start: this.buckets[0]?.t ?? 0, stepMs: this.stepMs, series };
  }
}

/**
 * Adds histories bucket by bucket over the `count` buckets ending with the one that starts
 * at `lastStart`. A bucket an instance has no sample for counts as 0 for it.
 */
export function sumHistories(histories: History[], stepMs: number, lastStart: number, count: number): History {
  const start = lastStart - (count - 1) * stepMs;
  const series: Record<string, number[]> = {};
  for (const h of histories) {
    if (h.stepMs !== stepMs) continue;
    for (const [name, values] of Object.entries(h.series)) {
      const sum = (series[name] ??= new Array<number>(count).fill(0));
      values.forEach((v, i) => {
        const at = (h.start + i * stepMs - start) / stepMs;
        if (Number.isInteger(at) && at >= 0 && at < count) sum[at]! += v;
      });
    }
  }
  return { start, stepMs, series };
}
