/**
 * The shape of the code, checked from the sources (docs/architecture.md):
 * each subfolder, and each file directly in bridge/, led-agent/ or units/, is
 * one unit; units sit in layers; no import cycle ties units together; an
 * import from a lower layer up to a higher one is allowed only when listed
 * below and explained in docs/architecture.md; no product file is over 450 lines.
 * Outside the product: bench/ and harness/ (what tests and benchmarks both run
 * against) never import from test/, and harness/ never from bench/.
 */
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, normalize, relative } from 'node:path';
import { describe, it } from 'node:test';

const REPO = normalize(join(import.meta.dirname, '..'));
const ROOTS = ['bridge', 'led-agent', 'units'];
const MAX_LINES = 450;

/** top to bottom: a unit may import from its own layer (without a cycle) and from any layer below */
const LAYERS: { name: string; holds(unit: string): boolean }[] = [
  { name: 'entry points', holds: (u) => ['bridge/cli.ts', 'bridge/main.ts', 'led-agent/cli.ts'].includes(u) },
  { name: 'commands', holds: (u) => u === 'bridge/commands/' },
  {
    name: 'features',
    holds: (u) =>
      ['bridge/reporters/', 'bridge/homeassistant/', 'bridge/demo/', 'bridge/open/'].includes(u) ||
      u.startsWith('led-agent/') ||
      u.startsWith('units/'),
  },
  { name: 'run engine', holds: (u) => u === 'bridge/run/' },
  { name: 'steps', holds: (u) => u === 'bridge/steps/' },
  { name: 'messages', holds: (u) => ['bridge/mqtt/', 'bridge/email/'].includes(u) },
  {
    name: 'records',
    holds: (u) => ['bridge/ledger.ts', 'bridge/words.ts', 'bridge/open-record.ts'].includes(u),
  },
  { name: 'copying', holds: (u) => u === 'bridge/rsync/' },
  { name: 'base', holds: (u) => u.startsWith('bridge/') },
];

/**
 * Imports that run from a lower layer up to a higher one, as "from -> to"
 * (files relative to the repository). At most 2, each explained in
 * docs/architecture.md ("Imports that run back up").
 */
const ALLOWED_UP: string[] = [];

/** what each folder outside the product must not import from */
const APART: Record<string, string[]> = { bench: ['test/'], harness: ['test/', 'bench/'] };

function sources(dir: string): string[] {
  return readdirSync(join(REPO, dir), { withFileTypes: true }).flatMap((e) => {
    const path = join(dir, e.name);
    if (e.isDirectory()) return sources(path);
    return e.name.endsWith('.ts') ? [path] : [];
  });
}

/** bridge/run/runner.ts -> bridge/run/; bridge/ledger.ts -> itself */
function unitOf(file: string): string {
  const parts = file.split('/');
  return parts.length > 2 ? `${parts[0]}/${parts[1]}/` : file;
}

function layerOf(unit: string): number {
  const i = LAYERS.findIndex((l) => l.holds(unit));
  assert.notEqual(i, -1, `${unit} is in no layer: place it in LAYERS (and in docs/architecture.md)`);
  return i;
}

interface Edge {
  from: string;
  to: string;
}

/** every relative import (static, type-only, re-export or dynamic) of the product files */
function imports(files: string[]): Edge[] {
  const pattern =
    /\b(?:import|export)\s[^;'"]*?\bfrom\s*'(\.[^']+)'|\bimport\(\s*'(\.[^']+)'\s*\)|\bimport\s*'(\.[^']+)'/g;
  return files.flatMap((from) =>
    [...readFileSync(join(REPO, from), 'utf8').matchAll(pattern)].map((m) => {
      const spec = (m[1] ?? m[2] ?? m[3]) as string;
      return { from, to: relative(REPO, join(REPO, dirname(from), spec)).replace(/\.js$/, '.ts') };
    }),
  );
}

/** groups of units that reach each other through imports (Tarjan's strongly connected components) */
function cycles(edges: Edge[]): string[][] {
  const next = new Map<string, Set<string>>();
  for (const { from, to } of edges) {
    const a = unitOf(from);
    const b = unitOf(to);
    if (a === b) continue;
    if (!next.has(a)) next.set(a, new Set());
    next.get(a)!.add(b);
  }
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const found: string[][] = [];
  const visit = (v: string) => {
    index.set(v, index.size);
    low.set(v, index.get(v)!);
    stack.push(v);
    for (const w of next.get(v) ?? []) {
      if (!index.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (stack.includes(w)) low.set(v, Math.min(low.get(v)!, index.get(w)!));
    }
    if (low.get(v) === index.get(v)) {
      const group: string[] = [];
      let w: string;
      do {
        w = stack.pop()!;
        group.push(w);
      } while (w !== v);
      if (group.length > 1) found.push(group.sort());
    }
  };
  for (const v of next.keys()) if (!index.has(v)) visit(v);
  return found;
}

const files = ROOTS.flatMap(sources);
const edges = imports(files);

describe('the layout (docs/architecture.md)', () => {
  it('finds the product and its imports', () => {
    assert.ok(files.length > 50, `only ${files.length} files`);
    assert.ok(edges.length > 100, `only ${edges.length} imports`);
    for (const e of edges)
      assert.ok(files.includes(e.to), `${e.from} imports ${e.to}, which is not a product file`);
  });

  it('places every unit in a layer', () => {
    for (const f of files) layerOf(unitOf(f));
  });

  it('has no import cycle between units', () => {
    const found = cycles(edges);
    const explain = found.map((group) =>
      edges
        .filter(
          (e) =>
            group.includes(unitOf(e.from)) && group.includes(unitOf(e.to)) && unitOf(e.from) !== unitOf(e.to),
        )
        .map((e) => `  ${e.from} -> ${e.to}`)
        .join('\n'),
    );
    assert.deepEqual(found, [], `units tied into a cycle:\n${explain.join('\n\n')}`);
  });

  it('imports up a layer only where docs/architecture.md explains why (at most 2)', () => {
    const up = edges
      .filter((e) => layerOf(unitOf(e.to)) < layerOf(unitOf(e.from)))
      .map((e) => `${e.from} -> ${e.to}`);
    assert.deepEqual([...new Set(up)].sort(), [...ALLOWED_UP].sort());
    assert.ok(ALLOWED_UP.length <= 2, 'at most 2 imports run back up');
    const doc = readFileSync(join(REPO, 'docs', 'architecture.md'), 'utf8');
    for (const e of ALLOWED_UP) {
      const [from, to] = e.split(' -> ') as [string, string];
      assert.ok(doc.includes(from) && doc.includes(to), `docs/architecture.md does not explain ${e}`);
    }
  });

  it(`keeps every product file to ${MAX_LINES} lines`, () => {
    const long = files
      .map((f) => ({ f, lines: readFileSync(join(REPO, f), 'utf8').split('\n').length - 1 }))
      .filter((x) => x.lines > MAX_LINES)
      .map((x) => `${x.f}: ${x.lines} lines`);
    assert.deepEqual(long, []);
  });

  it('keeps bench/ and harness/ apart from test/ (and harness/ from bench/)', () => {
    const crossing = Object.entries(APART).flatMap(([dir, banned]) =>
      imports(sources(dir))
        .filter((e) => banned.some((b) => e.to.startsWith(b)))
        .map((e) => `${e.from} -> ${e.to}`),
    );
    assert.deepEqual(crossing, [], 'shared fixtures go in harness/ (docs/architecture.md)');
  });

  it('says each thing in one place (issue 12, "one path for each thing")', () => {
    const ONE_PLACE: { what: string; pattern: RegExp; only: string[] }[] = [
      {
        what: "an error's message or stack (errorMessage(e), errorStack(e))",
        pattern: /\bas Error\)\.(message|stack)|instanceof Error \? \w+\.(message|stack)/,
        // bridge/cli.ts and led-agent/cli.ts load nothing before the Node version check has passed
        only: ['bridge/error-message.ts', 'bridge/cli.ts', 'led-agent/cli.ts'],
      },
      {
        what: 'the "no drive named" error (driveNamed)',
        pattern: /no drive named/,
        only: ['bridge/commands/command.ts'],
      },
      {
        what: 'the default base topic (topicsFor, and the schema default)',
        pattern: /DEFAULT_BASE_TOPIC/,
        only: ['bridge/topics.ts', 'bridge/config/schema.ts'],
      },
      {
        what: 'the latest success of all drives',
        pattern: /function (latestSuccess|lastSuccessOfAll)\b/,
        only: ['bridge/mqtt/messages.ts'],
      },
      { what: 'the reporter shape', pattern: /interface Reporter\b/, only: ['bridge/run/run-drive.ts'] },
      { what: 'the throttle', pattern: /class Throttle\b/, only: ['bridge/throttle.ts'] },
      {
        what: "the cryptsetup unit's name (cryptsetupUnit)",
        pattern: /'systemd-cryptsetup@\.service'/,
        only: ['bridge/systemd.ts'],
      },
      {
        what: "a drive's name typed before a log line (childLogger(log, drive.name), as a run's ctx.log is)",
        pattern: /\blog\.(info|warn|error|debug)\(\s*`\$\{(ctx\.)?drive\.name\}: /,
        only: [],
      },
    ];
    for (const { what, pattern, only } of ONE_PLACE) {
      const found = files.filter((f) => pattern.test(readFileSync(join(REPO, f), 'utf8')));
      assert.deepEqual(found.sort(), [...only].sort(), `${what}: written in ${found.join(', ')}`);
    }
  });

  it('keeps the tests in folders that mirror the source tree (test/bridge/steps/ tests bridge/steps/)', () => {
    const folders = (dir: string): string[] =>
      readdirSync(join(REPO, dir), { withFileTypes: true })
        .filter((e) => e.isDirectory())
        .flatMap((e) => [join(dir, e.name), ...folders(join(dir, e.name))]);
    // test/helpers/ (what only tests use), test/docs/ (tests of the docs), test/e2e/ (the VM suite)
    const own = ['test/helpers', 'test/docs', 'test/e2e'];
    const astray = folders('test')
      .filter((f) => !own.some((o) => f === o || f.startsWith(`${o}/`)))
      .filter((f) => {
        const source = join(REPO, relative('test', f));
        return !(existsSync(source) && statSync(source).isDirectory());
      })
      .sort();
    assert.deepEqual(astray, []);
  });
});
