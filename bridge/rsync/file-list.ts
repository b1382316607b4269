/**
 * The files rsync names on stderr when it exits 23 or 24 (unreadable,
 * vanished, attributes not set), made relative to the source so a warning
 * reads like the tree the user knows.
 */
import { type BytePath, bytePath, shown } from './byte-path.js';

export const MAX_LISTED_FILES = 50;

/** rsync prints unprintable bytes as \#ooo (octal): `s` and the result are byte strings (byte-path.ts) */
export function unescapeRsync(s: BytePath): BytePath {
  return s.replace(/\\#([0-7]{3})/g, (_, octal: string) =>
    String.fromCharCode(Number.parseInt(octal, 8) & 0xff),
  );
}

/** strip the source or destination root so "/srv/backup/data/1" reads "data/1" (byte strings) */
function relative(path: BytePath, roots: readonly string[]): BytePath {
  for (const text of roots) {
    const root = bytePath(text);
    const r = root.endsWith('/') ? root : `${root}/`;
    if (path.startsWith(r)) return path.slice(r.length) || '.';
    if (path === root.replace(/\/$/, '')) return '.';
  }
  return path;
}

const NOT_FILES = [
  /^rsync error:/,
  /^rsync warning:/,
  /^IO error encountered/,
  /^rsync: \[\w+\] write error/,
];

/**
 * One entry per file problem: `{ file, reason }`, `file` a byte string
 * relative to the roots (rsync's stderr, read as bytes: LineSplitter's
 * `bytes`), `reason` text. Lines that name no file (the summary, "IO error
 * encountered -- skipping file deletion") are left out.
 */
export function problemFiles(stderr: string, roots: readonly string[]): { file: BytePath; reason: string }[] {
  const seen = new Set<string>();
  const out: { file: BytePath; reason: string }[] = [];
  for (const line of stderr.split('\n')) {
    if (!line || NOT_FILES.some((re) => re.test(line))) continue;
    const vanished = /^file has vanished: "(.*)"$/.exec(line);
    // the first non-empty quoted name (some messages quote twice: lsetxattr(""/path"",...))
    const quoted = vanished ?? (line.startsWith('rsync: ') ? /"([^"]+)"/.exec(line) : null);
    if (!quoted) continue;
    const file = relative(unescapeRsync(quoted[1]!), roots);
    if (seen.has(file)) continue;
    seen.add(file);
    const reason = vanished
      ? 'vanished during the copy'
      : (/: ([^:]+ \(\d+\))\s*$/.exec(line)?.[1] ?? line.replace(/^rsync: (\[\w+\] )?/, ''));
    out.push({ file, reason: shown(reason) });
  }
  return out;
}

/** The list for a warning: "path (reason)", capped, with a last line saying how many more. */
export function warningFileList(
  problems: readonly { file: BytePath; reason: string }[],
  max = MAX_LISTED_FILES,
): string[] {
  const list = problems.slice(0, max).map((p) => `${shown(p.file)} (${p.reason})`);
  if (problems.length > max) list.push(`... and ${problems.length - max} more`);
  return list;
}
