import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHerald, type Running } from '../helpers/herald.js';
import { JsonClient } from '../helpers/json-client.js';

/**
 * docs/grafana-dashboard.json must only query metrics Herald serves: every metric name in
 * every panel expression and template query is checked against a live /metrics.
 */

const dashboard = JSON.parse(readFileSync(new URL('../../docs/grafana-dashboard.json', import.meta.url), 'utf8'));

const KEYWORDS = new Set(['by', 'without', 'on', 'ignoring', 'group_left', 'group_right', 'bool', 'and', 'or', 'unless', 'offset', 'inf', 'nan']);

/** Metric names in a PromQL expression: identifiers that are not functions, labels, keywords or variables. */
function metricNames(expr: string): string[] {
  const stripped = expr
    .replace(/"(?:[^"\\]|\\.)*"/g, '""') // strings
    .replace(/\{[^}]*\}/g, ' ') // label matchers
    .replace(/\[[^\]]*\]/g, ' ') // range selectors
    .replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, ' ') // label lists
    .replace(/\$\{?\w+\}?/g, ' ') // Grafana variables
    .replace(/(?<![A-Za-z0-9_:])\d[\w.]*/g, ' '); // numbers and durations (0.99, 5m)
  const names: string[] = [];
  for (const m of stripped.matchAll(/[A-Za-z_:][A-Za-z0-9_:]*(\s*\()?/g)) {
    if (m[1] || KEYWORDS.has(m[0].toLowerCase())) continue; // a function call, or a keyword
    names.push(m[0]);
  }
  return names;
}

/** Every query of the dashboard: panel targets, and the metric of each label_values() template. */
function queries(): { where: string; names: string[] }[] {
  const out: { where: string; names: string[] }[] = [];
  for (const panel of dashboard.panels) {
    for (const t of panel.targets ?? []) out.push({ where: `${panel.title} ${t.refId}`, names: metricNames(t.expr) });
  }
  for (const v of dashboard.templating.list) {
    const q = typeof v.query === 'string' ? v.query : v.query.query;
    const lv = /^label_values\(\s*([^,]+),\s*\w+\s*\)$/.exec(q);
    out.push({ where: `variable ${v.name}`, names: lv ? metricNames(lv[1]) : metricNames(q) });
  }
  return out;
}

describe('docs/grafana-dashboard.json', () => {
  let server: Running;
  let exposed: Set<string>;
  beforeAll(async () => {
    server = await startHerald();
    // Some traffic first, so that labelled series exist as well as their TYPE lines.
    const a = await JsonClient.connect(server.ws);
    const b = await JsonClient.connect(server.ws);
    await a.join('grafana', 'peer');
    await b.join('grafana', 'peer');
    await a.signal('grafana', b.peerId, { tag: 'x' });
    await a.close();
    await b.close();
    const text = await (await fetch(`${server.http}/metrics`)).text();
    exposed = new Set();
    for (const [, name, type] of text.matchAll(/^# TYPE (\S+) (\S+)$/gm)) {
      exposed.add(name!);
      if (type === 'histogram') for (const s of ['_bucket', '_sum', '_count']) exposed.add(`${name}${s}`);
      if (type === 'summary') for (const s of ['_sum', '_count']) exposed.add(`${name}${s}`);
    }
  });
  afterAll(() => server.stop());

  it('finds metric names the way PromQL reads them (and would flag an unknown one)', () => {
    expect(metricNames('histogram_quantile(0.99, sum by (le) (rate(herald_relay_latency_seconds_bucket{instance=~"$instance"}[$__rate_interval])))')).toEqual([
      'herald_relay_latency_seconds_bucket',
    ]);
    expect(metricNames('sum(rate(a_total[5m])) / sum without (x) (b_count offset 5m)')).toEqual(['a_total', 'b_count']);
    expect(metricNames('rate(no_such_metric_total[1m])').filter((n) => !exposed.has(n))).toEqual(['no_such_metric_total']);
  });

  it('every metric a panel or variable queries exists in /metrics', () => {
    const all = queries();
    expect(all.length).toBeGreaterThanOrEqual(10);
    const missing = all.flatMap((q) => q.names.filter((n) => !exposed.has(n)).map((n) => `${q.where}: ${n}`));
    expect(missing).toEqual([]);
    for (const q of all) expect(q.names.length, `${q.where} queries no metric`).toBeGreaterThan(0);
    // Every herald_* metric Herald serves is on the board.
    const used = new Set(all.flatMap((q) => q.names.map((n) => n.replace(/_(bucket|sum|count)$/, ''))));
    expect([...exposed].filter((n) => n.startsWith('herald_') && !/_(bucket|sum|count)$/.test(n) && !used.has(n))).toEqual([]);
  });
});
