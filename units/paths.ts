/**
 * Where offsite really lives on this machine: the Node.js binary that runs it
 * and the package's built entry points. Units point at these, so an install
 * from a checkout, from `npm pack`'s tarball, globally or into /opt/offsite
 * all produce units that start the code that is actually there.
 */
import { realpathSync } from 'node:fs';
import { basename, dirname, isAbsolute, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export interface InstallPaths {
  /** the Node.js binary (>= 20) */
  node: string;
  /** the package directory (holds dist/ and docs/) */
  prefix: string;
  /** the configuration file, as units pass it in $OFFSITE_CONFIG */
  config: string;
}

function real(p: string): string {
  try {
    return realpathSync(p);
  } catch {
    return resolve(p);
  }
}

/** The package directory this module belongs to, whether run from dist/ or from source. */
export function packageRoot(): string {
  const here = dirname(fileURLToPath(import.meta.url)); // <pkg>/dist/units or <pkg>/units
  const up = dirname(here);
  return real(basename(up) === 'dist' ? dirname(up) : up);
}

export function installPaths(opts: { config: string; node?: string; prefix?: string }): InstallPaths {
  return {
    node: real(opts.node ?? process.execPath),
    prefix: real(opts.prefix ?? packageRoot()),
    config: resolve(opts.config),
  };
}

export function bridgeCli(p: InstallPaths): string {
  return join(p.prefix, 'dist', 'bridge', 'cli.js');
}

export function ledCli(p: InstallPaths): string {
  return join(p.prefix, 'dist', 'led-agent', 'cli.js');
}

/** Paths the sandboxed LED agent cannot reach (ProtectHome=yes hides them). */
export function hiddenFromServices(path: string): boolean {
  return isAbsolute(path) && /^\/(home|root|run\/user)(\/|$)/.test(path);
}
