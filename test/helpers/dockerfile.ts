/**
 * A small reader for the repository's Dockerfile, so the container-recipe test runs the
 * recipe's own steps instead of a copy of them that could drift.
 */

export interface Instruction {
  /** Upper-case keyword: FROM, RUN, COPY, CMD, ... */
  op: string;
  /** `--name=value` flags before the arguments (RUN --mount, COPY --from, HEALTHCHECK --interval). */
  flags: Record<string, string>;
  /** The rest of the line, continuation lines joined. */
  args: string;
}

export interface Stage {
  image: string;
  name: string | undefined;
  steps: Instruction[];
}

export function parseDockerfile(text: string): Stage[] {
  const lines: string[] = [];
  let pending = '';
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (!pending && (line === '' || line.startsWith('#'))) continue;
    if (line.endsWith('\\')) {
      pending += `${line.slice(0, -1)} `;
      continue;
    }
    lines.push(pending + line);
    pending = '';
  }
  const stages: Stage[] = [];
  for (const line of lines) {
    const [, op, rest] = /^(\S+)\s*(.*)$/.exec(line)!;
    const flags: Record<string, string> = {};
    let args = rest!;
    for (let m = /^--([\w-]+)=(\S+)\s*/.exec(args); m; m = /^--([\w-]+)=(\S+)\s*/.exec(args)) {
      flags[m[1]!] = m[2]!;
      args = args.slice(m[0].length);
    }
    const step = { op: op!.toUpperCase(), flags, args };
    if (step.op === 'FROM') {
      const [, image, name] = /^(\S+)(?:\s+AS\s+(\S+))?$/i.exec(args)!;
      stages.push({ image: image!, name, steps: [] });
    } else {
      if (!stages.length) throw new Error(`Dockerfile: ${step.op} before FROM`);
      stages.at(-1)!.steps.push(step);
    }
  }
  return stages;
}

/** The argv of an exec-form CMD/ENTRYPOINT/HEALTHCHECK CMD (`["node", ...]`). */
export function execForm(args: string): string[] {
  const argv = JSON.parse(args.replace(/^CMD\s+/, ''));
  if (!Array.isArray(argv) || !argv.every((a) => typeof a === 'string')) throw new Error(`not an exec form: ${args}`);
  return argv;
}

/** `ENV A=1 B=2` as a record (unquoted values only, which is all this repository uses). */
export function envOf(args: string): Record<string, string> {
  const env: Record<string, string> = {};
  for (const pair of args.split(/\s+/)) {
    const eq = pair.indexOf('=');
    if (eq <= 0) throw new Error(`ENV: expected NAME=value, got "${pair}"`);
    env[pair.slice(0, eq)] = pair.slice(eq + 1);
  }
  return env;
}
