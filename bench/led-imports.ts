/**
 * What the LED agent's resident set is made of: a bare Node.js with the agent's
 * flags, then with each library it loads, alone and together (resident,
 * anonymous and file-backed MiB from /proc/self/smaps_rollup, the median of
 * three processes, 1.5 s after the imports).
 *
 *   node --import tsx bench/led-imports.ts ["--node-flags=--lite-mode --max-semi-space-size=1"]
 */
import { spawnSync } from 'node:child_process';
import { parseArgs } from 'node:util';

const { values } = parseArgs({
  options: { 'node-flags': { type: 'string', default: '--lite-mode --max-semi-space-size=1' } },
});
const nodeFlags = values['node-flags'].split(' ').filter(Boolean);

const SETS: string[][] = [
  [],
  ['mqtt'],
  ['zod'],
  ['yaml'],
  ['mqtt', 'yaml'],
  ['mqtt', 'yaml', 'zod'],
  // what mqtt.connect() loads on its first call: its TLS, WebSocket and SOCKS stream builders
  ['mqtt', 'mqtt/lib/connect/tcp', 'mqtt/lib/connect/tls', 'mqtt/lib/connect/ws'],
];

const probe = `
import { readFileSync } from 'node:fs';
for (const m of JSON.parse(process.argv[1])) await import(m);
await new Promise((r) => setTimeout(r, 1500));
const s = readFileSync('/proc/self/smaps_rollup', 'utf8');
const kb = (k) => Number(new RegExp(k + ':\\\\s+(\\\\d+)').exec(s)[1]);
console.log(JSON.stringify({ rss: kb('Rss'), anon: kb('Anonymous') }));
`;

const mib = (kb: number) => +(kb / 1024).toFixed(1);
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const rows = SETS.map((set) => {
  const runs = Array.from({ length: 3 }, () => {
    const r = spawnSync(
      process.execPath,
      [...nodeFlags, '--input-type=module', '-e', probe, JSON.stringify(set)],
      { encoding: 'utf8' },
    );
    if (r.status !== 0) throw new Error(r.stderr);
    return JSON.parse(r.stdout) as { rss: number; anon: number };
  });
  const rss = median(runs.map((x) => x.rss));
  const anon = median(runs.map((x) => x.anon));
  return { imports: set.join(' + ') || '(nothing)', rss: mib(rss), anon: mib(anon), file: mib(rss - anon) };
});
for (const r of rows)
  console.log(`${r.imports.padEnd(70)} RSS ${r.rss} MiB (anonymous ${r.anon}, file-backed ${r.file})`);
console.log(
  JSON.stringify({ bench: 'led-imports', node_flags: nodeFlags.join(' '), node: process.version, rows }),
);
