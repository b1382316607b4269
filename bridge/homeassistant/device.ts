/**
 * Who the entities belong to: one Home Assistant device per NAS (node), and
 * the origin that says which software published them. Ids are built from the
 * node id alone, so they stay the same across restarts and display-name changes.
 */
import { readFileSync } from 'node:fs';
import type { Config } from '../config.js';
import version from '../version.js';

/** Entity ids allow only [a-z0-9_]; node ids hold `-` and never `_` (protocol.ts), so this keeps them apart. */
export function nodeKey(nodeId: string): string {
  return nodeId.replace(/-/g, '_');
}

export function deviceId(nodeId: string): string {
  return `offsite_${nodeKey(nodeId)}`;
}

/** The device name Home Assistant shows; entity names read after it ("Offsite nas alpha age"). */
export function deviceName(nodeId: string): string {
  return `Offsite ${nodeId}`;
}

export function device(config: Pick<Config, 'node_id'>) {
  return {
    ids: [deviceId(config.node_id)],
    name: deviceName(config.node_id),
    mf: 'offsite',
    mdl: 'Rotating off-site backup drives',
    sw: version.version,
  };
}

/** package.json's homepage, when it has one: Home Assistant shows it as the support link. */
function homepage(): string | undefined {
  for (const rel of ['../../package.json', '../../../package.json']) {
    try {
      const pkg = JSON.parse(readFileSync(new URL(rel, import.meta.url), 'utf8')) as {
        name?: string;
        homepage?: string;
      };
      if (pkg.name === 'offsite') return pkg.homepage;
    } catch {}
  }
  return undefined;
}

const SUPPORT_URL = homepage();

export function origin() {
  return { name: 'offsite', sw: version.version, ...(SUPPORT_URL ? { url: SUPPORT_URL } : {}) };
}
