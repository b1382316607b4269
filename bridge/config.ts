/**
 * Configuration (docs/design.md §10): YAML, validated with zod. An error names the
 * file, the key path and what was expected; nothing runs on an invalid config.
 */
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseDocument, type YAMLError } from 'yaml';
import type { z } from 'zod';
import { ConfigError, type Problem, problemsOf } from './config/errors.js';
import { type Drive, type emailSchema, type mqttSchema, schema } from './config/schema.js';
import { describeKey as describeSchemaKey } from './config/walk.js';
import { errorMessage } from './error-message.js';

export { ConfigError, type Problem } from './config/errors.js';
export { readSecret } from './secret.js';

export const DEFAULT_CONFIG_PATH = '/etc/offsite/config.yaml';

export type Config = z.infer<typeof schema> & { file: string };
export type LedConfig = Config['led'];
export type MqttConfig = z.infer<typeof mqttSchema>;
export type EmailConfig = z.infer<typeof emailSchema>;
export { type Drive, sanitizeNodeId } from './config/schema.js';

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

/** What a key is for, from the schema's description: "drives[0].mount_point" or "source.path". */
export function describeKey(key: string): string | undefined {
  return describeSchemaKey(schema, key);
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
    throw new ConfigError(file, '', `invalid YAML: ${errorMessage(e)}`);
  }
  return parseConfig(raw, file);
}

/** `--config FILE`, else `$OFFSITE_CONFIG`, else /etc/offsite/config.yaml. */
export function configPath(flag: string | undefined, env: NodeJS.ProcessEnv = process.env): string {
  return flag ?? env.OFFSITE_CONFIG ?? DEFAULT_CONFIG_PATH;
}

export function findDrive(config: Config, name: string): Drive | undefined {
  return config.drives.find((d) => d.name === name);
}
