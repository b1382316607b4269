/**
 * A unified diff (as `diff -u` prints it) of two texts, for
 * `offsite install --dry-run`. Files here are small: a plain
 * longest-common-subsequence table is enough.
 */

type Op = { kind: ' ' | '-' | '+'; line: string };

/** marks a last line without a newline: "x" and "x\n" are different lines, as for diff(1) */
const NO_EOL = '\u0000';

function splitLines(text: string): string[] {
  if (text === '') return [];
  const lines = text.split('\n');
  if (lines[lines.length - 1] === '') lines.pop();
  else lines[lines.length - 1] += NO_EOL;
  return lines;
}

function show(kind: string, line: string): string {
  return line.endsWith(NO_EOL)
    ? `${kind}${line.slice(0, -1)}\n\\ No newline at end of file`
    : `${kind}${line}`;
}

function lcsOps(a: string[], b: string[]): Op[] {
  const n = a.length;
  const m = b.length;
  const table: Uint32Array[] = Array.from({ length: n + 1 }, () => new Uint32Array(m + 1));
  for (let i = n - 1; i >= 0; i--)
    for (let j = m - 1; j >= 0; j--)
      table[i]![j] =
        a[i] === b[j] ? table[i + 1]![j + 1]! + 1 : Math.max(table[i + 1]![j]!, table[i]![j + 1]!);
  const ops: Op[] = [];
  let i = 0;
  let j = 0;
  while (i < n || j < m) {
    if (i < n && j < m && a[i] === b[j]) {
      ops.push({ kind: ' ', line: a[i]! });
      i++;
      j++;
    } else if (j < m && (i === n || table[i]![j + 1]! >= table[i + 1]![j]!))
      ops.push({ kind: '+', line: b[j++]! });
    else ops.push({ kind: '-', line: a[i++]! });
  }
  return ops;
}

/**
 * `before`/`after` null: the file does not exist. Returns '' when nothing
 * differs. A missing final newline is marked as diff(1) marks it.
 */
export function unifiedDiff(path: string, before: string | null, after: string | null, context = 3): string {
  if (before === after) return '';
  const a = splitLines(before ?? '');
  const b = splitLines(after ?? '');
  const ops = lcsOps(a, b);
  const out = [
    `--- ${before === null ? '/dev/null' : `a${path}`}`,
    `+++ ${after === null ? '/dev/null' : `b${path}`}`,
  ];
  // group changes with their context into hunks
  let k = 0;
  while (k < ops.length) {
    if (ops[k]!.kind === ' ') {
      k++;
      continue;
    }
    const start = Math.max(0, k - context);
    let end = k;
    let lastChange = k;
    while (end < ops.length && (ops[end]!.kind !== ' ' || end - lastChange <= context * 2)) {
      if (ops[end]!.kind !== ' ') lastChange = end;
      end++;
    }
    end = Math.min(ops.length, lastChange + context + 1);
    let aLine = 0;
    let bLine = 0;
    for (let x = 0; x < start; x++) {
      if (ops[x]!.kind !== '+') aLine++;
      if (ops[x]!.kind !== '-') bLine++;
    }
    const hunk = ops.slice(start, end);
    const aCount = hunk.filter((o) => o.kind !== '+').length;
    const bCount = hunk.filter((o) => o.kind !== '-').length;
    out.push(`@@ -${aCount ? aLine + 1 : aLine},${aCount} +${bCount ? bLine + 1 : bLine},${bCount} @@`);
    for (const o of hunk) out.push(show(o.kind, o.line));
    k = end;
  }
  return `${out.join('\n')}\n`;
}
