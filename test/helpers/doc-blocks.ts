/**
 * The shell blocks of a page in docs/ (```sh fences) and the output it quotes
 * (```text fences), each with the heading it stands under, so that a test can
 * run exactly what the page tells people to type, and check what it says
 * they will read.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

export interface DocBlock {
  /** the heading above it, without the #s */
  section: string;
  /** `sh` or `text` */
  kind: string;
  text: string;
  /** 1-based line of its opening fence */
  line: number;
}

export function docPath(page: string): string {
  return fileURLToPath(new URL(`../../docs/${page}`, import.meta.url));
}

export function docBlocks(page: string): DocBlock[] {
  const lines = readFileSync(docPath(page), 'utf8').split('\n');
  const blocks: DocBlock[] = [];
  let section = '';
  for (let i = 0; i < lines.length; i++) {
    const heading = /^#+ (.*)$/.exec(lines[i]!);
    if (heading) {
      section = heading[1]!;
      continue;
    }
    const fence = /^```(\w*)$/.exec(lines[i]!);
    if (!fence) continue;
    const start = i;
    const body: string[] = [];
    for (i++; i < lines.length && lines[i] !== '```'; i++) body.push(lines[i]!);
    blocks.push({ section, kind: fence[1] || 'text', text: body.join('\n'), line: start + 1 });
  }
  return blocks;
}

/** The `kind` blocks under `section`, in order. */
export function blocksUnder(page: string, section: string, kind = 'sh'): DocBlock[] {
  const found = docBlocks(page).filter((b) => b.section === section && b.kind === kind);
  if (!found.length) throw new Error(`docs/${page} has no ${kind} block under "${section}"`);
  return found;
}

/** The page's paths moved to where a test has them: each [from, to] prefix, in order. */
export function placed(text: string, moves: ReadonlyArray<readonly [string, string]>): string {
  return moves.reduce((t, [from, to]) => t.split(from).join(to), text);
}

/** docs/restore.md: which sections the host test runs, and which the VM suite runs (on LUKS drives). */
export const RESTORE_PAGE = 'restore.md';
export const RESTORE_ON_HOST = [
  'Restoring one file',
  'Restoring the whole Borg repository',
  'Put back at another path: "The repository … was previously located at …"',
];
export const RESTORE_IN_VM = [
  'Opening a drive: `offsite open`',
  'Closing it: `offsite close`',
  'When the NAS is gone: on another Linux machine',
  'A damaged LUKS header',
];
