/**
 * Configuration (docs/design.md §10): YAML, validated with zod. An error names the
 * file, the key path and what was expected; nothing runs on an invalid config.
 */
import { existsSync, readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { basename, isAbsolute, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseDocument, type YAMLError } from 'yaml';
import { z } from 'zod';
import { scrubBudget } from './config/budget.js';
import { ConfigError, type Problem, problemsOf } from './config/errors.js';
import { placeProblems } from './config/places.js';
import {
  absolutePath,
  brokerUrl,
  driveName,
  hexColor,
  host,
  mailAddress,
  mapperName,
  mountOptions,
  mountPoint,
  nodeId,
  secretRef,
  serial,
  text,
  topicLevel,
  topicPath,
  uuid,
} from './config/values.js';
import { DEFAULT_BASE_TOPIC } from './protocol.js';

export { ConfigError, type Problem } from './config/errors.js';

export const DEFAULT_CONFIG_PATH = '/etc/offsite/config.yaml';

export function sanitizeNodeId(raw: string): string {
  const id = raw
    .toLowerCase()
    .replace(/[^a-z0-9-]+/g, '-')
    .replace(/^-+|-+$/g, '');
  return id || 'nas';
}

const driveFields = z
  .object({
    name: driveName,
    /** a LUKS container: partition UUID of the container (what udev sees when it is plugged in) */
    luks_uuid: uuid.optional(),
    key_file: absolutePath.optional(),
    /** device-mapper name for the unlocked container */
    mapper: mapperName.optional(),
    /** an unencrypted filesystem: its filesystem UUID */
    uuid: uuid.optional(),
    mount_point: mountPoint.optional(),
    /** a plain directory target: no unlock, no mount (demo, tests) */
    directory: absolutePath.optional(),
    mount_options: mountOptions.default('noatime'),
  })
  .strict();

function driveKind(d: z.infer<typeof driveFields>, ctx: z.RefinementCtx): void {
  const kinds = [d.luks_uuid && 'luks_uuid', d.uuid && 'uuid', d.directory && 'directory'].filter(Boolean);
  if (kinds.length !== 1) {
    ctx.addIssue({
      code: 'custom',
      message: `exactly one of luks_uuid (encrypted drive), uuid (plain filesystem) or directory; found ${kinds.length ? kinds.join(', ') : 'none'}`,
    });
    return;
  }
  if (d.luks_uuid && !d.key_file)
    ctx.addIssue({ code: 'custom', path: ['key_file'], message: 'required for a LUKS drive (luks_uuid)' });
  if ((d.luks_uuid || d.uuid) && !d.mount_point)
    ctx.addIssue({
      code: 'custom',
      path: ['mount_point'],
      message: 'required for a drive with a filesystem (luks_uuid or uuid)',
    });
}

export type Drive =
  | {
      kind: 'luks';
      name: string;
      luksUuid: string;
      keyFile: string;
      mapper: string;
      mountPoint: string;
      mountOptions: string;
    }
  | { kind: 'filesystem'; name: string; uuid: string; mountPoint: string; mountOptions: string }
  | { kind: 'directory'; name: string; directory: string };

const driveSchema = driveFields.superRefine(driveKind).transform((d): Drive => {
  if (d.luks_uuid)
    return {
      kind: 'luks',
      name: d.name,
      luksUuid: d.luks_uuid.toLowerCase(),
      keyFile: d.key_file!,
      mapper: d.mapper ?? `offsite_${d.name}`,
      mountPoint: d.mount_point!,
      mountOptions: d.mount_options,
    };
  if (d.uuid)
    return {
      kind: 'filesystem',
      name: d.name,
      uuid: d.uuid.toLowerCase(),
      mountPoint: d.mount_point!,
      mountOptions: d.mount_options,
    };
  return { kind: 'directory', name: d.name, directory: d.directory! };
});

const ledStateStyle = z
  .object({
    color: hexColor,
    pattern: z.enum(['steady', 'blink', 'pulse', 'off']),
  })
  .strict();

const ledNodeSchema = z
  .object({
    node: nodeId,
    drives: z.array(driveName).optional(),
  })
  .strict();

const ledSchema = z
  .object({
    driver: z.enum(['blinkstick', 'sysfs', 'console', 'none']).default('none'),
    index: z.number().int().min(0).max(63).default(0),
    channel: z.number().int().min(0).max(2).default(0),
    brightness: z.number().min(1).max(100).default(100),
    /** sysfs: the LED's class directory, e.g. /sys/class/leds/nas:rgb:status */
    path: absolutePath
      .refine(
        (p) => /^[A-Za-z0-9:_.-]+$/.test(basename(p)),
        'an LED class directory like /sys/class/leds/nas:rgb:status',
      )
      .optional(),
    /** serial number of the BlinkStick to use when several are plugged in */
    serial: serial.optional(),
    /**
     * nodes to follow (default: this node with its drives). Another node must
     * name its drives: the LED follows only drives it knows (docs/led.md)
     */
    nodes: z.array(z.union([nodeId, ledNodeSchema])).optional(),
    states: z
      .object({
        running: ledStateStyle.default({ color: '#33c280', pattern: 'steady' }),
        success: ledStateStyle.default({ color: '#00ff00', pattern: 'steady' }),
        failed: ledStateStyle.default({ color: '#ff0000', pattern: 'steady' }),
        overdue: ledStateStyle.default({ color: '#ffbf00', pattern: 'pulse' }),
        idle: ledStateStyle.default({ color: '#000000', pattern: 'off' }),
      })
      .strict()
      .default({
        running: { color: '#33c280', pattern: 'steady' },
        success: { color: '#00ff00', pattern: 'steady' },
        failed: { color: '#ff0000', pattern: 'steady' },
        overdue: { color: '#ffbf00', pattern: 'pulse' },
        idle: { color: '#000000', pattern: 'off' },
      }),
  })
  .strict();

const mqttSchema = z
  .object({
    url: brokerUrl.default('mqtt://127.0.0.1:1883'),
    base_topic: topicPath.default(DEFAULT_BASE_TOPIC),
    discovery_prefix: topicLevel.default('homeassistant'),
    username: text.optional(),
    /** a file holding the password, or a credential name under $CREDENTIALS_DIRECTORY */
    password_file: secretRef.optional(),
    ca_file: absolutePath.optional(),
    client_id: topicLevel.optional(),
    /** false: the demo and tests may run with no broker at all */
    enabled: z.boolean().default(true),
  })
  .strict();

const emailSchema = z
  .object({
    smtp: z
      .object({
        host: host.default('127.0.0.1'),
        port: z.number().int().min(1).max(65535).default(25),
        secure: z.boolean().default(false),
        user: text.optional(),
        password_file: secretRef.optional(),
        /** DANGEROUS: let the login go in clear to a server that is not this machine (docs/email.md) */
        allow_plaintext_login: z.boolean().default(false),
      })
      .strict()
      .default({ host: '127.0.0.1', port: 25, secure: false, allow_plaintext_login: false }),
    from: mailAddress,
    to: z.array(mailAddress).min(1, 'at least one recipient'),
    on: z
      .array(z.enum(['failure', 'success', 'overdue', 'warning']))
      .default(['failure', 'overdue', 'warning']),
  })
  .strict();

const schema = z
  .object({
    node_id: nodeId.default(() => sanitizeNodeId(hostname())),
    state_dir: absolutePath.default('/var/lib/offsite'),
    source: z
      .object({
        path: absolutePath,
        lock: z.array(text).min(1).optional(),
        exclude: z.array(text).default([]),
        /** extra rsync options, e.g. ["--bwlimit=20M"] for a slow USB bus */
        rsync_args: z.array(text.regex(/^-/, 'an rsync option starting with -')).default([]),
      })
      .strict(),
    overdue_after_days: z.number().positive().default(35),
    // none yet is valid: docs/setup.md removes the example drives before prepare-drive adds the real ones
    drives: z.array(driveSchema).default([]),
    verify: z
      .object({
        /** how much of the copy a run reads back beyond what it wrote (the rolling scrub) */
        scrub: scrubBudget.default({ percent: 2 }),
        /** replaced by scrub; still accepted so that older files load */
        checksum_sample: z.number().int().min(0).optional(),
        borg_check: z.enum(['auto', 'always', 'never']).default('auto'),
      })
      .strict()
      .default({ scrub: { percent: 2 }, borg_check: 'auto' }),
    mqtt: mqttSchema.optional(),
    email: emailSchema.optional(),
    led: ledSchema.default(ledSchema.parse({})),
  })
  .strict()
  .superRefine((c, ctx) => {
    const seen = new Set<string>();
    c.drives.forEach((d, i) => {
      if (seen.has(d.name))
        ctx.addIssue({
          code: 'custom',
          path: ['drives', i, 'name'],
          message: `a unique name; "${d.name}" is used twice`,
        });
      seen.add(d.name);
    });
    // zod runs this on a config with other problems too: a drive may lack its path
    const places = c.drives
      .map((d, i) =>
        d.kind === 'directory'
          ? { key: ['drives', i, 'directory'], path: d.directory }
          : { key: ['drives', i, 'mount_point'], path: d.mountPoint },
      )
      .filter((p) => typeof p.path === 'string');
    const fixed = [
      { key: ['source', 'path'], path: c.source.path },
      { key: ['state_dir'], path: c.state_dir },
    ];
    for (const p of placeProblems(places, fixed))
      ctx.addIssue({ code: 'custom', path: [...p.key], message: p.message });
    c.led.nodes?.forEach((entry, i) => {
      const { node, drives } = typeof entry === 'string' ? { node: entry, drives: undefined } : entry;
      if (node !== c.node_id && !drives)
        ctx.addIssue({
          code: 'custom',
          path: ['led', 'nodes', i],
          message: `"${node}" is another node: name the drives the LED may follow, e.g. { node: ${node}, drives: [alpha] }`,
        });
      if (node === c.node_id)
        drives?.forEach((d, j) => {
          if (!seen.has(d))
            ctx.addIssue({
              code: 'custom',
              path: ['led', 'nodes', i, 'drives', j],
              message: `"${d}" is not one of the drives in drives:`,
            });
        });
    });
    if (c.led.driver === 'sysfs' && !c.led.path)
      ctx.addIssue({
        code: 'custom',
        path: ['led', 'path'],
        message: 'the LED class directory for the sysfs driver',
      });
  });

export type Config = z.infer<typeof schema> & { file: string };
export type LedConfig = Config['led'];
export type MqttConfig = z.infer<typeof mqttSchema>;
export type EmailConfig = z.infer<typeof emailSchema>;

/** Validate an already-parsed object (tests and the demo build configs in code). */
export function parseConfig(raw: unknown, file = '(inline)'): Config {
  const data = raw ?? {};
  if (typeof data !== 'object' || Array.isArray(data))
    throw new ConfigError(
      file,
      '',
      `the top level: a mapping of keys (source:, drives:, ...), not ${Array.isArray(data) ? 'a list' : `a ${typeof data}`}`,
    );
  const parsed = schema.safeParse(data);
  if (!parsed.success) throw new ConfigError(file, problemsOf(parsed.error.issues, data, schema));
  return { ...parsed.data, file };
}

/** The example configuration shipped with the package, if it is there. */
export function exampleConfigPath(): string | null {
  // bridge/config.ts in a checkout, dist/bridge/config.js in a build
  for (const rel of ['../docs/config.example.yaml', '../../docs/config.example.yaml']) {
    const path = fileURLToPath(new URL(rel, import.meta.url));
    if (existsSync(path)) return path;
  }
  return null;
}

/** "Map keys must be unique at line 2, column 1:" is "line 2, column 1: Map keys must be unique". */
function yamlProblem(err: YAMLError): Problem {
  const first = err.message
    .split('\n')[0]!
    .replace(/\s+at line \d+, column \d+:?\s*$/, '')
    .replace(/:$/, '');
  const where = err.linePos ? ` at line ${err.linePos[0].line}, column ${err.linePos[0].col}` : '';
  return { keyPath: '', expected: `invalid YAML${where}: ${first}` };
}

export function loadConfig(file: string): Config {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    const example = exampleConfigPath() ?? 'docs/config.example.yaml in the offsite package';
    throw new ConfigError(
      file,
      '',
      code === 'ENOENT'
        ? `no such file. Start from the example: cp ${example} ${file} (or pass --config FILE, or set OFFSITE_CONFIG)`
        : `cannot read: ${code}`,
    );
  }
  const doc = parseDocument(text, { prettyErrors: true });
  if (doc.errors.length) throw new ConfigError(file, doc.errors.map(yamlProblem));
  let raw: unknown;
  try {
    raw = doc.toJS();
  } catch (e) {
    // an alias without its anchor, or so many aliases that expanding them would exhaust memory
    throw new ConfigError(file, '', `invalid YAML: ${(e as Error).message}`);
  }
  return parseConfig(raw, file);
}

/** `--config FILE`, else `$OFFSITE_CONFIG`, else /etc/offsite/config.yaml. */
export function configPath(flag: string | undefined, env: NodeJS.ProcessEnv = process.env): string {
  return flag ?? env.OFFSITE_CONFIG ?? DEFAULT_CONFIG_PATH;
}

/**
 * Secrets come from files, or from systemd credentials (LoadCredential=).
 * Under systemd the credential (named after the file) is preferred: the unit
 * may run unprivileged and unable to read the root-only original. A bare name
 * is only ever a credential. Trailing newlines are dropped.
 */
export function readSecret(ref: string, env: NodeJS.ProcessEnv = process.env): string {
  const credential = env.CREDENTIALS_DIRECTORY ? join(env.CREDENTIALS_DIRECTORY, basename(ref)) : null;
  const candidates = [credential, isAbsolute(ref) ? ref : null].filter((f): f is string => Boolean(f));
  for (const file of candidates) {
    if (existsSync(file)) return readFileSync(file, 'utf8').replace(/\r?\n$/, '');
  }
  throw new Error(
    `secret ${ref} not found (looked in ${candidates.join(', ') || 'nowhere: a bare name needs $CREDENTIALS_DIRECTORY'})`,
  );
}

export function findDrive(config: Config, name: string): Drive | undefined {
  return config.drives.find((d) => d.name === name);
}
