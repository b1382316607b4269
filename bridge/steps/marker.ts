/**
 * The marker file that names a drive, and the enrolment token that proves it
 * (docs/architecture.md, "Enrolment"). `offsite prepare-drive` and
 * `offsite enrol` write both: the marker with a random token at the drive's
 * root, the token's copy in state_dir, readable by root only. A run refuses
 * any drive whose marker is missing, names another drive, or carries another
 * token: nothing is written to it, and the refusal says which command enrols
 * it. No drive is ever enrolled by a run.
 *
 * The marker is the drive's, so it is untrusted: read without following a
 * symbolic link, only a small regular file, parsed with a schema.
 */
import { randomBytes, timingSafeEqual } from 'node:crypto';
import {
  chmodSync,
  closeSync,
  constants,
  fstatSync,
  fsyncSync,
  lstatSync,
  mkdirSync,
  openSync,
  readSync,
  renameSync,
  rmSync,
} from 'node:fs';
import { dirname, join } from 'node:path';
import { z } from 'zod';
import { errorMessage } from '../error-message.js';
import { DRIVE_NAME, isoNow } from '../protocol.js';
import { createNewFile } from '../state-file.js';
import { StepError } from './step.js';

export const MARKER_FILE = '.offsite-drive.json';
/** a marker is a few hundred bytes; anything bigger is not one */
const MARKER_MAX_BYTES = 4096;
/** 256 random bits, hex */
const TOKEN = /^[0-9a-f]{64}$/;

const markerSchema = z.object({
  drive: z.string().regex(DRIVE_NAME, 'a drive name'),
  /** absent in markers written before enrolment tokens: such a drive is refused until re-enrolled */
  token: z.string().regex(TOKEN, '64 hex digits').optional(),
  created: z.string().max(64).optional(),
  luks_uuid: z.string().max(64).optional(),
  uuid: z.string().max(64).optional(),
});

export type Marker = z.infer<typeof markerSchema>;

export function markerPath(root: string): string {
  return join(root, MARKER_FILE);
}

export function newToken(): string {
  return randomBytes(32).toString('hex');
}

/** The marker cannot be trusted as a marker (a link, not a file, too big, not JSON, the wrong shape). */
export class BadMarker extends Error {
  override name = 'BadMarker';
}

/** Up to `max` + 1 bytes of a regular file, never through a symbolic link; null when there is none. */
function readSmallFile(file: string, max: number, what: string): Buffer | null {
  let st: ReturnType<typeof lstatSync>;
  try {
    st = lstatSync(file);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw e;
  }
  if (st.isSymbolicLink()) throw new BadMarker(`${what} ${file} is a symbolic link (not followed)`);
  if (!st.isFile()) throw new BadMarker(`${what} ${file} is not a regular file`);
  if (st.size > max) throw new BadMarker(`${what} ${file} is ${st.size} bytes (at most ${max})`);
  // O_NOFOLLOW and O_NONBLOCK: swapped for a link or a FIFO since the lstat, the open fails instead of following or hanging
  const fd = openSync(file, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  try {
    const now = fstatSync(fd);
    if (!now.isFile() || now.ino !== st.ino || now.dev !== st.dev)
      throw new BadMarker(`${what} ${file} changed while it was read`);
    const buf = Buffer.alloc(max + 1);
    let n = 0;
    for (let r = -1; r !== 0 && n <= max; n += r) r = readSync(fd, buf, n, buf.length - n, null);
    if (n > max) throw new BadMarker(`${what} ${file} is over ${max} bytes`);
    return buf.subarray(0, n);
  } finally {
    closeSync(fd);
  }
}

/** The marker at `root`, or null when there is none; BadMarker when it cannot be trusted as one. */
export function readMarker(root: string): Marker | null {
  const file = markerPath(root);
  let bytes: Buffer | null;
  try {
    bytes = readSmallFile(file, MARKER_MAX_BYTES, 'the marker');
  } catch (e) {
    if (e instanceof BadMarker) throw e;
    throw new BadMarker(`the marker ${file} is unreadable (${(e as NodeJS.ErrnoException).code ?? e})`);
  }
  if (!bytes) return null;
  let json: unknown;
  try {
    json = JSON.parse(bytes.toString('utf8'));
  } catch {
    throw new BadMarker(`the marker ${file} is not JSON`);
  }
  const parsed = markerSchema.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new BadMarker(
      `the marker ${file} is not one: ${issue.path.join('.') || '(top)'}: ${issue.message}`,
    );
  }
  return parsed.data;
}

/**
 * Write the marker atomically without following anything already at its
 * path: a new temporary file (O_EXCL, which refuses a link), renamed over
 * the marker (a rename replaces a link, never writes through it).
 */
export function writeMarker(root: string, marker: Marker): void {
  const file = markerPath(root);
  const tmp = `${file}.${randomBytes(6).toString('hex')}.tmp`;
  createNewFile(tmp, `${JSON.stringify({ created: isoNow(), ...marker }, null, 2)}\n`, 0o600);
  renameSync(tmp, file);
  const dir = openSync(root, constants.O_RDONLY | constants.O_DIRECTORY);
  try {
    fsyncSync(dir);
  } finally {
    closeSync(dir);
  }
}

/** Where this NAS keeps drive `name`'s token: state_dir/drives/<name>.token, 0600 in a 0700 directory. */
export function tokenFile(stateDir: string, name: string): string {
  return join(stateDir, 'drives', `${name}.token`);
}

/** The token this NAS holds for drive `name`, or null (never enrolled here, or state_dir was lost). */
export function readToken(stateDir: string, name: string): string | null {
  const file = tokenFile(stateDir, name);
  const bytes = readSmallFile(file, 128, 'the enrolment token');
  if (!bytes) return null;
  const token = bytes.toString('utf8').trim();
  if (!TOKEN.test(token)) throw new BadMarker(`the enrolment token ${file} is damaged`);
  return token;
}

/**
 * Put a new token in state_dir in two moves: `stageToken` writes it beside
 * its place (proving state_dir is writable before the drive is touched),
 * `commit` renames it into place once the drive's marker holds it.
 */
export function stageToken(stateDir: string, name: string, token: string): { commit(): void; abort(): void } {
  const file = tokenFile(stateDir, name);
  const dir = dirname(file);
  mkdirSync(stateDir, { recursive: true, mode: 0o755 });
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  chmodSync(dir, 0o700);
  const tmp = `${file}.${randomBytes(6).toString('hex')}.tmp`;
  createNewFile(tmp, `${token}\n`, 0o600);
  return {
    commit: () => renameSync(tmp, file),
    abort: () => rmSync(tmp, { force: true }),
  };
}

/** What the marker at a drive's root says about it, relative to this NAS's token. */
export type Standing =
  | { is: 'enrolled' }
  | { is: 'unmarked' }
  | { is: 'unreadable'; why: string }
  | { is: 'other-drive'; names: string }
  | { is: 'no-token' }
  | { is: 'token-unknown' }
  | { is: 'token-differs' };

export function standing(root: string, stateDir: string, drive: string): Standing {
  let marker: Marker | null;
  try {
    marker = readMarker(root);
  } catch (e) {
    if (e instanceof BadMarker) return { is: 'unreadable', why: e.message };
    throw e;
  }
  if (!marker) return { is: 'unmarked' };
  if (marker.drive !== drive) return { is: 'other-drive', names: marker.drive };
  if (!marker.token) return { is: 'no-token' };
  const ours = readToken(stateDir, drive);
  if (!ours) return { is: 'token-unknown' };
  const same = timingSafeEqual(Buffer.from(ours, 'hex'), Buffer.from(marker.token, 'hex'));
  return same ? { is: 'enrolled' } : { is: 'token-differs' };
}

/** Why a drive is refused, and the command that enrols it; null when it is enrolled. */
export function refusal(s: Standing, root: string, stateDir: string, drive: string): string | null {
  const enrol = `offsite enrol ${drive}`;
  switch (s.is) {
    case 'enrolled':
      return null;
    case 'unmarked':
      return `not enrolled: there is no marker (${markerPath(root)}), so this is not the enrolled drive "${drive}"; nothing was written. If it should be "${drive}": ${enrol}`;
    case 'unreadable':
      return `wrong drive: ${s.why}; nothing was written. To enrol this disk as "${drive}" anyway: ${enrol} --force`;
    case 'other-drive':
      return `wrong drive: its marker names drive "${s.names}", not "${drive}"; nothing was written. To make this disk "${drive}" instead: ${enrol} --force`;
    case 'no-token':
      return `not enrolled: its marker names "${drive}" but carries no enrolment token (written by an offsite from before tokens); nothing was written. Re-enrol it once: ${enrol}`;
    case 'token-unknown':
      return `not enrolled: this NAS holds no enrolment token for "${drive}" (${tokenFile(stateDir, drive)}); nothing was written. If this disk is "${drive}": ${enrol} --force`;
    case 'token-differs':
      return `wrong drive: its marker names "${drive}" but its enrolment token is not the one this NAS holds (a copied marker, or a drive enrolled elsewhere); nothing was written. If this disk is "${drive}": ${enrol} --force`;
  }
}

/** Refuse (StepError) unless `root` is drive `drive` as enrolled on this NAS. */
export function checkEnrolled(root: string, stateDir: string, drive: string): void {
  let s: Standing;
  try {
    s = standing(root, stateDir, drive);
  } catch (e) {
    // the token in state_dir could not be read: the drive cannot be proved
    throw new StepError(
      `not enrolled: ${errorMessage(e)}; nothing was written. To enrol it again: offsite enrol ${drive} --force`,
      { cause: e },
    );
  }
  const why = refusal(s, root, stateDir, drive);
  if (why) throw new StepError(why);
}
