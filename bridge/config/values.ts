/**
 * The kinds of value a configuration holds, each with the strict character
 * set it may use. Values reach unit files, crypttab, fstab, a udev rule and
 * the arguments of mount, umount and cryptsetup: a line break, a space or a
 * leading "-" there would change what those mean, so none gets past loading.
 */
import { z } from 'zod';
import { DRIVE_NAME, NODE_ID } from '../protocol.js';
import { cryptsetupUnit, mountUnit } from '../systemd.js';

const CONTROL = /[\u0000-\u001f\u007f]/;

/** Free text (an SMTP user name, a lock command word): anything but control characters. */
export const text = z
  .string()
  .min(1, 'a value, not an empty string')
  .refine((s) => !CONTROL.test(s), 'text without control characters (no line breaks or tabs)');

const PATH_CHARS = /^[A-Za-z0-9._@+:/-]+$/;

/**
 * Absolute and normalized (no "//", no "." or ".." part, no trailing "/"),
 * of letters, digits and . _ - + @ : only: nothing a unit file, fstab,
 * crypttab or a command line would read as more than one path.
 */
export const absolutePath = z
  .string()
  .max(1024, 'a path of at most 1024 characters')
  .superRefine((p, ctx) => {
    const fail = (message: string) => ctx.addIssue({ code: 'custom', message });
    if (!p.startsWith('/')) return fail('an absolute path, starting with /');
    if (!PATH_CHARS.test(p))
      return fail('a path of letters, digits and . _ - + @ : only (no spaces, quotes or line breaks)');
    if (
      p !== '/' &&
      (p.endsWith('/') ||
        p
          .split('/')
          .slice(1)
          .some((s) => s === '' || s === '.' || s === '..'))
    )
      return fail('a normalized path: no "//", "." or ".." parts and no trailing /');
  });

/** systemd refuses a unit name longer than this, and a mount point or mapper becomes one */
const UNIT_NAME_MAX = 255;

/** True also when there is no name to make: the value's other problem is reported instead. */
function unitNameFits(name: () => string): boolean {
  try {
    return name().length <= UNIT_NAME_MAX;
  } catch {
    return true;
  }
}

/** A mount point: fstab makes a mount unit of it, whose name systemd limits. */
export const mountPoint = absolutePath
  .refine(
    (p) => unitNameFits(() => mountUnit(p)),
    `a shorter path: systemd's mount unit name for it would pass ${UNIT_NAME_MAX} characters`,
  )
  // systemd refuses a mount unit named with a ":" ("Couldn't process aliases": fast-check found /media/d0/:)
  .refine((p) => !p.includes(':'), 'a mount point without ":" (systemd cannot name its mount unit)');

export const driveName = z
  .string()
  .max(64, 'a name of at most 64 characters')
  .regex(DRIVE_NAME, 'a name of lower-case letters, digits and _');

export const nodeId = z
  .string()
  .max(64)
  .regex(
    NODE_ID,
    'lower-case letters, digits and - (no _: Home Assistant would take nas_1 and nas-1 for one device)',
  );

/** A device-mapper name: /dev/mapper/<name>, an argument of cryptsetup, a crypttab field. */
export const mapperName = z
  .string()
  .max(127, 'a device-mapper name of at most 127 characters')
  .regex(
    /^[A-Za-z0-9_][A-Za-z0-9_-]*$/,
    'a device-mapper name: letters, digits, _ and -, not starting with -',
  )
  .refine(
    (m) => unitNameFits(() => cryptsetupUnit(m)),
    `a shorter name: its systemd-cryptsetup unit name would pass ${UNIT_NAME_MAX} characters`,
  );

const UUID = /^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/;
export const uuid = z.string().regex(UUID, 'a UUID like 0b1c2d3e-4f50-6172-8394-a5b6c7d8e9f0');

/** The fourth field of an fstab line and the argument of mount -o. */
export const mountOptions = z
  .string()
  .regex(
    /^[A-Za-z0-9_=.:][A-Za-z0-9_=,.:-]*$/,
    'mount options of letters, digits and _ = , . : - (e.g. noatime,errors=remount-ro), not starting with -',
  );

/** A systemd credential name (LoadCredential=name:path), which is also a file name. */
const CREDENTIAL_NAME = /^[A-Za-z0-9_][A-Za-z0-9_.@-]*$/;

/** A file holding a secret: an absolute path, or the name of a systemd credential. */
export const secretRef = z
  .string()
  .max(1024)
  .superRefine((ref, ctx) => {
    if (ref.startsWith('/')) {
      const r = absolutePath.safeParse(ref);
      if (!r.success) ctx.addIssue({ code: 'custom', message: r.error.issues[0]!.message });
      else if (!CREDENTIAL_NAME.test(ref.split('/').pop()!))
        ctx.addIssue({ code: 'custom', message: 'a file name that can be a systemd credential name' });
    } else if (!CREDENTIAL_NAME.test(ref))
      ctx.addIssue({
        code: 'custom',
        message: 'an absolute path, or a systemd credential name (letters, digits and _ . @ -)',
      });
  });

/** A host name or an IP address (IPv6 in brackets or bare). */
export const host = z
  .string()
  .max(253)
  .regex(/^[A-Za-z0-9._:[\]-]+$/, 'a host name or IP address')
  .refine((h) => !h.startsWith('-'), 'a host name or IP address, not starting with -');

/** One or more topic levels of letters, digits, _ and -. */
export const topicPath = z
  .string()
  .max(128)
  .regex(
    /^[A-Za-z0-9_-]+(\/[A-Za-z0-9_-]+)*$/,
    'topic levels of letters, digits, _ and -, separated by single / (no wildcards, no leading or trailing /)',
  );

export const topicLevel = z
  .string()
  .max(64)
  .regex(/^[A-Za-z0-9_-]+$/, 'a single topic level of letters, digits, _ and -');

/** An e-mail address as it may appear in a mail header: no line break can start another header. */
const ADDRESS = '[^\\s@<>",;()\\\\]+@[A-Za-z0-9.-]+';
export const mailAddress = z
  .string()
  .max(254)
  .regex(
    new RegExp(`^(${ADDRESS}|[A-Za-z0-9 ._'-]* ?<${ADDRESS}>)$`),
    'an e-mail address like nas@example.org or NAS <nas@example.org>',
  );

/**
 * The broker's address. Never with a user name or password in it: the URL is
 * printed (the journal, doctor, the failure email) and the file is world-readable.
 */
export const brokerUrl = z.string().superRefine((raw, ctx) => {
  const fail = (message: string) => ctx.addIssue({ code: 'custom', message });
  let url: URL;
  try {
    if (CONTROL.test(raw) || /\s/.test(raw)) throw new Error('white space');
    url = new URL(raw);
  } catch {
    return fail('a URL like mqtt://127.0.0.1:1883');
  }
  if (!['mqtt:', 'mqtts:', 'ws:', 'wss:', 'tcp:', 'ssl:'].includes(url.protocol))
    return fail('a URL starting mqtt://, mqtts://, ws:// or wss://');
  if (url.username || url.password || /^[a-z]+:\/\/[^/]*@/i.test(raw))
    return fail(
      'a URL without a user name or password in it (it is printed in logs and mails): put the user in mqtt.username and the password in a file named by mqtt.password_file',
    );
  if (!url.hostname) return fail('a URL with a host, like mqtt://127.0.0.1:1883');
  if (url.search || url.hash) return fail('a URL without a query (?...) or fragment (#...)');
});

export const hexColor = z.string().regex(/^#[0-9a-fA-F]{6}$/, 'a colour like "#33c280"');

/** A BlinkStick serial number, e.g. BS012345-3.0 */
export const serial = z
  .string()
  .max(64)
  .regex(/^[A-Za-z0-9._-]+$/, 'a serial number like BS012345-3.0');
