/** Options shared by `offsite install`, `uninstall`, `units` and `doctor`. */
import { resolve } from 'node:path';
import { type InstallPaths, installPaths } from '../../units/paths.js';
import type { CommandContext } from './command.js';

export const rootOption = { root: { type: 'string' } } as const;
export const pathOptions = { node: { type: 'string' }, prefix: { type: 'string' } } as const;

export const PATHS_HELP = `
  --node PATH    the Node.js binary the units run (default: the one running
                 this command, ${process.execPath})
  --prefix DIR   the offsite package directory (default: where this copy is
                 installed); units run DIR/dist/bridge/cli.js`;

export function rootOf(ctx: CommandContext): string {
  const root = ctx.values.root;
  return typeof root === 'string' ? resolve(root) : '/';
}

export function pathsOf(ctx: CommandContext): InstallPaths {
  const str = (k: string) => (typeof ctx.values[k] === 'string' ? (ctx.values[k] as string) : undefined);
  return installPaths({ config: ctx.configFile, node: str('node'), prefix: str('prefix') });
}
