/**
 * File names as the filesystem has them: bytes. Linux allows any byte but `/`
 * and NUL in a name, UTF-8 or not (a share written by an old Windows or Mac
 * client, an archive unpacked with another locale). A JavaScript string read
 * as UTF-8 turns bytes that are not UTF-8 into U+FFFD, and a path built from
 * it names no file: a copy with such a name could never be verified.
 *
 * So the paths a copy is checked by (rsync's list of what it wrote, verify's
 * walk, the rolling scrub, the read-back) are *byte strings*: each character
 * one byte (Node's `latin1`), turned into a Buffer for every system call and
 * into readable text (`shown`) for every message.
 */

/** a relative path, one character per byte of its name */
export type BytePath = string;

/** a path given as text (the configuration, an rsync pattern) as a byte string */
export function bytePath(text: string): BytePath {
  return Buffer.from(text, 'utf8').toString('latin1');
}

/** the name the system call needs: `root` (text) joined with `rel` (bytes) */
export function under(root: string, rel: BytePath): string | Buffer {
  const joined = rel ? (root.endsWith('/') ? `${root}${rel}` : `${root}/${rel}`) : root;
  // ASCII is the same as text and as bytes: most names, no Buffer needed
  if (!NOT_ASCII.test(rel)) return joined;
  const base = Buffer.from(root.endsWith('/') ? root : `${root}/`, 'utf8');
  return Buffer.concat([base, Buffer.from(rel, 'latin1')]);
}

const NOT_ASCII = /[\u0080-\uffff]/;

/**
 * A byte string for a message: UTF-8 where it is UTF-8, and each byte that is
 * not (or is a control character, a newline say) written `\#ooo` (octal), as
 * rsync writes it.
 */
export function shown(path: BytePath): string {
  const bytes = Buffer.from(path, 'latin1');
  const text = bytes.toString('utf8');
  if (!bytes.some(isControl) && Buffer.from(text, 'utf8').equals(bytes)) return text;
  const decoder = new TextDecoder('utf-8', { fatal: true });
  let out = '';
  let i = 0;
  while (i < bytes.length) {
    const b = bytes[i]!;
    const len = sequenceLength(bytes, i);
    if (len === 1 && !isControl(b)) {
      out += String.fromCharCode(b);
      i++;
      continue;
    }
    if (len > 1) {
      try {
        out += decoder.decode(bytes.subarray(i, i + len));
        i += len;
        continue;
      } catch {}
    }
    out += `\\#${b.toString(8).padStart(3, '0')}`;
    i++;
  }
  return out;
}

function isControl(b: number): boolean {
  return b < 0x20 || b === 0x7f;
}

/** the length of the UTF-8 sequence its lead byte announces at `i`, if the bytes are there; 0 otherwise */
function sequenceLength(bytes: Buffer, i: number): number {
  const b = bytes[i]!;
  const len =
    b < 0x80 ? 1 : b >= 0xc2 && b < 0xe0 ? 2 : b >= 0xe0 && b < 0xf0 ? 3 : b >= 0xf0 && b < 0xf5 ? 4 : 0;
  if (!len || i + len > bytes.length) return 0;
  for (let k = 1; k < len; k++) if ((bytes[i + k]! & 0xc0) !== 0x80) return 0;
  return len;
}
