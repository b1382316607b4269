/**
 * Run a command and time it, its output kept in a log with each line stamped
 * with the seconds since the command started, under a heading that gives the
 * load average when it began: where an `offsite run`'s time goes, step by
 * step, and whether the machine was busy (other jobs share its cores).
 */
import { spawn } from 'node:child_process';
import { appendFileSync } from 'node:fs';
import { loadavg } from 'node:os';

/** the 1, 5 and 15 minute load averages, as `uptime` prints them */
export function load(): string {
  return loadavg()
    .map((l) => l.toFixed(1))
    .join(' ');
}

export interface Stamped {
  /** wall seconds */
  seconds: number;
  /** each output line with the seconds since the start when it came */
  lines: { at: number; text: string }[];
}

/**
 * Where an `offsite run` spent its time, from its output: start-up (until the first step's
 * heading), each step (from its heading to the next one), and the end (from "done" to the exit);
 * with OFFSITE_DEBUG=1, also the parts of sync and verify they name ("verify: read back").
 */
export function phases(run: Stamped, drive: string): Record<string, number> {
  const out: Record<string, number> = {};
  let name = 'start-up';
  let from = 0;
  for (const { at, text } of run.lines) {
    // with OFFSITE_DEBUG=1: "verify took walk 0.17 s, flush 0.48 s, …" and "rsync's dry run took 0.18 s"
    const took = new RegExp(`^${drive}: (verify|rsync's dry run) took (.*)$`).exec(text);
    if (took?.[1] === 'verify')
      for (const part of took[2]!.split(', ')) {
        const p = /^(.*) ([\d.]+) s$/.exec(part);
        if (p) out[`verify: ${p[1]}`] = Number(p[2]);
      }
    else if (took) out['sync: dry run'] = Number.parseFloat(took[2]!);
    const m = new RegExp(`^${drive}: (?:(\\w+): |(done) )`).exec(text);
    const next = m?.[1] ?? (m?.[2] ? 'end' : undefined);
    if (!next || next === name) continue;
    out[name] = at - from;
    name = next;
    from = at;
  }
  out[name] = run.seconds - from;
  return out;
}

/** `argv` timed; its stamped output appended to `log` under `label`; throws unless it exits 0 */
export async function stampedRun(
  argv: readonly string[],
  log: string,
  label: string,
  env: NodeJS.ProcessEnv = process.env,
): Promise<Stamped> {
  appendFileSync(log, `== ${label}: ${argv.join(' ')} (load ${load()})\n`);
  const t0 = performance.now();
  const child = spawn(argv[0]!, argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'], env });
  const lines: Stamped['lines'] = [];
  // a line is stamped when its end arrives
  const stamper = () => {
    let rest = '';
    return (chunk: Buffer) => {
      const at = (performance.now() - t0) / 1000;
      const parts = (rest + chunk.toString()).split('\n');
      rest = parts.pop()!;
      for (const text of parts) if (text) lines.push({ at, text });
    };
  };
  child.stdout.on('data', stamper());
  child.stderr.on('data', stamper());
  const code = await new Promise<number | null>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', resolve);
  });
  const seconds = (performance.now() - t0) / 1000;
  const text = lines.map((l) => `${l.at.toFixed(3)} ${l.text}\n`).join('');
  appendFileSync(log, `${text}== exit ${code}, ${seconds.toFixed(3)} s\n`);
  if (code !== 0) throw new Error(`${argv.join(' ')} exited with ${code} (see ${log})`);
  return { seconds, lines };
}
