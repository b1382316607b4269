import { applyUninstall, describe, InstallError, planUninstall, readManifest } from '../../units/install.js';
import { afterUninstall, beforeUninstall } from '../../units/live.js';
import { BlockError } from '../../units/managed-block.js';
import { EXIT } from '../exit.js';
import type { Command } from './command.js';
import { rootOf, rootOption } from './options.js';

export const uninstallCommand: Command = {
  name: 'uninstall',
  usage: '[--dry-run] [--root DIR]',
  summary: 'remove exactly what offsite install wrote',
  options: { ...rootOption, 'dry-run': { type: 'boolean' } },
  help: `
Removes the units, links, drop-ins, udev rule and the offsite block in
/etc/crypttab and /etc/fstab that \`offsite install\` wrote (as listed in
/var/lib/offsite/installed.json). crypttab and fstab are left byte for byte
as they were before the first install. A file changed by hand since it was
installed is left in place and named. The configuration, key files, header
backups and run history are not touched.

Options:
  --dry-run      print what would be removed as a diff; remove nothing
  --root DIR     work in DIR instead of /
`,
  async run(ctx) {
    const root = rootOf(ctx);
    const dryRun = Boolean(ctx.values['dry-run']);
    let result: ReturnType<typeof planUninstall>;
    try {
      if (!readManifest(root)) {
        ctx.stdout.write(
          `offsite is not installed in ${root} (no ${root === '/' ? '' : root}/var/lib/offsite/installed.json)\n`,
        );
        return EXIT.ok;
      }
      result = planUninstall(root);
    } catch (e) {
      if (e instanceof InstallError || e instanceof BlockError) {
        ctx.log.error(e.message);
        return EXIT.failed;
      }
      throw e;
    }
    for (const change of result.changes) ctx.stdout.write(describe(change));
    for (const path of result.kept)
      ctx.log.warn(`${path} was changed since offsite installed it: left in place`);
    if (dryRun) {
      ctx.stdout.write(`--dry-run: ${result.changes.length} change(s) not made\n`);
      return EXIT.ok;
    }
    if (root === '/') await beforeUninstall(ctx.log);
    applyUninstall(root, result);
    ctx.stdout.write(`${result.changes.length} change(s) made under ${root}\n`);
    const reloaded = root === '/' ? await afterUninstall(ctx.log, result.changes) : true;
    return reloaded && !result.kept.length ? EXIT.ok : EXIT.failed;
  },
};
