/**
 * The lines offsite owns in a file it shares with the system (/etc/crypttab,
 * /etc/fstab): one block between two marker comments, replaced in place and
 * removed exactly, with every other byte of the file left as it was.
 */
export const BLOCK_BEGIN = '# BEGIN offsite (managed by offsite install; do not edit)';
export const BLOCK_END = '# END offsite';

export class BlockError extends Error {
  override name = 'BlockError';
}

interface Found {
  /** offset of the first byte of the BEGIN line */
  start: number;
  /** offset just past the END line's newline (or the end of the text) */
  end: number;
}

function findBlock(text: string, file: string): Found | null {
  const lines = text.split('\n');
  let offset = 0;
  let start = -1;
  let found: Found | null = null;
  for (const line of lines) {
    const next = offset + line.length + 1;
    const trimmed = line.replace(/\r$/, '');
    if (trimmed === BLOCK_BEGIN) {
      if (start >= 0 || found)
        throw new BlockError(`${file}: more than one "${BLOCK_BEGIN}" line; fix it by hand`);
      start = offset;
    } else if (trimmed === BLOCK_END) {
      if (start < 0)
        throw new BlockError(`${file}: "${BLOCK_END}" without a BEGIN line before it; fix it by hand`);
      found = { start, end: Math.min(next, text.length) };
      start = -1;
    }
    offset = next;
  }
  if (start >= 0)
    throw new BlockError(`${file}: "${BLOCK_BEGIN}" is never closed by "${BLOCK_END}"; fix it by hand`);
  return found;
}

export function renderBlock(lines: readonly string[]): string {
  return `${[BLOCK_BEGIN, ...lines, BLOCK_END].join('\n')}\n`;
}

/** The block's lines as they are now in `text`, or null when there is no block. */
export function readBlock(text: string, file = 'file'): string[] | null {
  const found = findBlock(text, file);
  if (!found) return null;
  return text.slice(found.start, found.end).replace(/\n$/, '').split('\n').slice(1, -1);
}

export interface BlockEdit {
  text: string;
  /** a newline was added after the file's last line so the block could start on a line of its own */
  addedNewline: boolean;
}

/**
 * Put `lines` into the block: in place when there is one, at the end
 * otherwise. No lines removes the block.
 */
export function setBlock(text: string, lines: readonly string[], file = 'file'): BlockEdit {
  const found = findBlock(text, file);
  if (found) {
    const replacement = lines.length ? renderBlock(lines) : '';
    // a block at the very end of a file without a final newline keeps that shape
    const tail =
      found.end === text.length && !text.endsWith('\n') && replacement
        ? replacement.slice(0, -1)
        : replacement;
    return { text: text.slice(0, found.start) + tail + text.slice(found.end), addedNewline: false };
  }
  if (!lines.length) return { text, addedNewline: false };
  const needsNewline = text.length > 0 && !text.endsWith('\n');
  return { text: `${text}${needsNewline ? '\n' : ''}${renderBlock(lines)}`, addedNewline: needsNewline };
}

/** Remove the block; `addedNewline` undoes the newline setBlock added before it. */
export function removeBlock(text: string, addedNewline: boolean, file = 'file'): string {
  const found = findBlock(text, file);
  if (!found) return text;
  let before = text.slice(0, found.start);
  const after = text.slice(found.end);
  if (addedNewline && after === '' && before.endsWith('\n')) before = before.slice(0, -1);
  return before + after;
}
