/**
 * systemd's unit-name escaping (systemd-escape, systemd-escape --path) and its
 * inverse, so that no UUID or mount point is ever escaped by hand. Works on
 * UTF-8 bytes, as systemd does: "é" becomes \xc3\xa9.
 */

const encoder = new TextEncoder();
const decoder = new TextDecoder('utf-8', { fatal: true });

function isPlain(byte: number): boolean {
  return (
    (byte >= 0x30 && byte <= 0x39) || // 0-9
    (byte >= 0x41 && byte <= 0x5a) || // A-Z
    (byte >= 0x61 && byte <= 0x7a) || // a-z
    byte === 0x3a || // :
    byte === 0x5f || // _
    byte === 0x2e // .
  );
}

function hexByte(byte: number): string {
  return `\\x${byte.toString(16).padStart(2, '0')}`;
}

/** `systemd-escape <s>`: "/" becomes "-", everything outside [A-Za-z0-9:_.] becomes \xNN. */
export function systemdEscape(s: string): string {
  const bytes = encoder.encode(s);
  let out = '';
  bytes.forEach((byte, i) => {
    // a leading "." would make a hidden unit file
    if (i === 0 && byte === 0x2e) out += hexByte(byte);
    else if (byte === 0x2f) out += '-';
    else out += isPlain(byte) ? String.fromCharCode(byte) : hexByte(byte);
  });
  return out;
}

// the names systemd's own tools use (they shadow the legacy globals only for importers that ask)
export { systemdEscape as escape, systemdUnescape as unescape };

/**
 * The path as systemd normalizes it: duplicate slashes and "." components
 * dropped, no trailing slash. ".." is refused (systemd refuses it too).
 */
export function normalizePath(path: string): string {
  if (!path.startsWith('/')) throw new Error(`not an absolute path: "${path}"`);
  const parts = path.split('/').filter((p) => p !== '' && p !== '.');
  if (parts.includes('..')) throw new Error(`not a normalized path (contains ".."): "${path}"`);
  return `/${parts.join('/')}`;
}

/** `systemd-escape --path <p>`: "/" is "-", "/mnt/offsite/alpha" is "mnt-offsite-alpha". */
export function escapePath(path: string): string {
  const normal = normalizePath(path);
  return normal === '/' ? '-' : systemdEscape(normal.slice(1));
}

/** `systemd-escape --unescape <s>`: "-" becomes "/", \xNN becomes its byte. */
export function systemdUnescape(s: string): string {
  const bytes: number[] = [];
  for (let i = 0; i < s.length; i++) {
    const c = s[i]!;
    if (c === '-') bytes.push(0x2f);
    else if (c === '\\') {
      const hex = s.slice(i + 2, i + 4);
      if (s[i + 1] !== 'x' || !/^[0-9a-fA-F]{2}$/.test(hex))
        throw new Error(`invalid escape at position ${i} in "${s}"`);
      const byte = Number.parseInt(hex, 16);
      if (byte === 0) throw new Error(`"${s}" escapes a NUL byte`);
      bytes.push(byte);
      i += 3;
    } else bytes.push(...encoder.encode(c));
  }
  try {
    return decoder.decode(new Uint8Array(bytes));
  } catch {
    throw new Error(`"${s}" does not unescape to UTF-8 text`);
  }
}

/** `systemd-escape --unescape --path <s>`: "mnt-offsite-alpha" is "/mnt/offsite/alpha". */
export function unescapePath(s: string): string {
  if (s === '') throw new Error('an empty escaped path');
  if (s === '-') return '/';
  const inner = systemdUnescape(s);
  if (inner.startsWith('/') || inner.endsWith('/'))
    throw new Error(`"${s}" has a leading or trailing slash once unescaped`);
  const path = `/${inner}`;
  if (normalizePath(path) !== path) throw new Error(`"${s}" is not a normalized path once unescaped`);
  return path;
}

/** `systemd-escape --template=<t> <s>`, e.g. instance("offsite-backup@.service", "alpha"). */
export function instance(template: string, value: string): string {
  const at = template.indexOf('@');
  if (at < 0 || template[at + 1] !== '.') throw new Error(`not a template unit name: ${template}`);
  return `${template.slice(0, at + 1)}${systemdEscape(value)}${template.slice(at + 1)}`;
}

/** The device unit udev creates for /dev/disk/by-uuid/<uuid>. */
export function byUuidDeviceUnit(uuid: string): string {
  return `${escapePath(`/dev/disk/by-uuid/${uuid}`)}.device`;
}

/** The mount unit systemd derives from a mount point. */
export function mountUnit(mountPoint: string): string {
  return `${escapePath(mountPoint)}.mount`;
}

/** The unit systemd's crypttab generator makes for a mapping, e.g. systemd-cryptsetup@offsite\x2dalpha.service. */
export function cryptsetupUnit(mapper: string): string {
  return instance('systemd-cryptsetup@.service', mapper);
}
