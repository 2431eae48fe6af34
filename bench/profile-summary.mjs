// Summarizes a V8 .cpuprofile (node --cpu-prof): self time per function, overall and for
// Herald's own code (dist/ -> src/), plus time per area (Herald, ws, node internals, GC...).
//   node bench/profile-summary.mjs <file.cpuprofile> [topN]
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

function area(url, name) {
  if (name === '(garbage collector)') return 'GC';
  if (name === '(idle)') return 'idle';
  if (name === '(program)') return 'program (native/unattributed)';
  if (url.includes('/dist/')) return 'Herald (dist)';
  if (url.includes('/node_modules/ws/')) return 'ws';
  const m = /\/node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(url);
  if (m) return m[1];
  if (url.startsWith('node:')) return 'node internals';
  if (!url) return 'native / builtins';
  return 'other';
}

export function summarizeProfile(file, topN = 15) {
  const prof = JSON.parse(readFileSync(file, 'utf8'));
  const byId = new Map(prof.nodes.map((n) => [n.id, n]));
  const selfUs = new Map();
  const { samples, timeDeltas } = prof;
  // Count only the relay load: from the first sample whose stack is inside the core's
  // relay (Hub.relay), so start-up (module loading, compiling) does not dilute the picture.
  const parent = new Map();
  for (const n of prof.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const inRelay = new Map();
  const underRelay = (id) => {
    if (inRelay.has(id)) return inRelay.get(id);
    const n = byId.get(id);
    const hit = (n.callFrame.functionName === 'relay' && n.callFrame.url.includes('/dist/core/hub')) || (parent.has(id) && underRelay(parent.get(id)));
    inRelay.set(id, hit);
    return hit;
  };
  let from = samples.findIndex((id) => underRelay(id));
  if (from < 0) from = 0;
  for (let i = from; i < samples.length; i++) {
    const dt = timeDeltas[i + 1] ?? 0;
    selfUs.set(samples[i], (selfUs.get(samples[i]) ?? 0) + dt);
  }
  const fns = new Map();
  const areas = new Map();
  let total = 0;
  let busy = 0;
  for (const [id, us] of selfUs) {
    const n = byId.get(id);
    const cf = n.callFrame;
    const url = cf.url ?? '';
    const name = cf.functionName || '(anonymous)';
    const short = url.includes('/dist/') ? `src/${url.split('/dist/')[1].replace(/\.js$/, '.ts')}` : url.replace(/^.*\/node_modules\//, '').replace(/^file:\/\//, '');
    const key = `${name} ${short}${url ? `:${cf.lineNumber + 1}` : ''}`;
    const f = fns.get(key) ?? { name, file: short, line: cf.lineNumber + 1, us: 0, area: area(url, name) };
    f.us += us;
    fns.set(key, f);
    const a = area(url, name);
    areas.set(a, (areas.get(a) ?? 0) + us);
    total += us;
    if (name !== '(idle)') busy += us;
  }
  const sorted = [...fns.values()].sort((a, b) => b.us - a.us);
  const pct = (us) => ((100 * us) / busy).toFixed(1).padStart(5) + '%';
  const lines = [];
  lines.push(`  busy ${(busy / 1e6).toFixed(2)} s of ${(total / 1e6).toFixed(2)} s sampled from the first relayed message on; shares below are of busy time`);
  lines.push('  by area:');
  for (const [a, us] of [...areas].filter(([a]) => a !== 'idle').sort((x, y) => y[1] - x[1]).slice(0, 10)) lines.push(`    ${pct(us)}  ${a}`);
  lines.push(`  top ${topN} self time, all code:`);
  for (const f of sorted.filter((f) => f.name !== '(idle)').slice(0, topN)) lines.push(`    ${pct(f.us)}  ${f.name}  ${f.file}${f.file ? `:${f.line}` : ''}`);
  lines.push(`  top ${topN} self time, Herald's code (dist/ mapped to src/ file names; lines are dist/ lines):`);
  for (const f of sorted.filter((f) => f.area === 'Herald (dist)').slice(0, topN)) lines.push(`    ${pct(f.us)}  ${f.name}  ${f.file}:${f.line}`);
  return {
    busyMs: busy / 1000,
    areas: Object.fromEntries([...areas].map(([a, us]) => [a, +((100 * us) / busy).toFixed(2)])),
    top: sorted.slice(0, 40).map((f) => ({ ...f, pct: +((100 * f.us) / busy).toFixed(2) })),
    text: lines.join('\n'),
  };
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  console.log(summarizeProfile(process.argv[2], Number(process.argv[3] ?? 25)).text);
}
