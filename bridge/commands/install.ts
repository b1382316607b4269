import { existsSync } from 'node:fs';
import { ledWanted, plan } from '../../units/generate.js';
import { applyInstall, describe, InstallError, planInstall } from '../../units/install.js';
import { afterInstall } from '../../units/live.js';
import { BlockError } from '../../units/managed-block.js';
import { bridgeCli, hiddenFromServices, ledCli } from '../../units/paths.js';
import { loadConfig } from '../config.js';
import { EXIT } from '../exit.js';
import type { Command } from './command.js';
import { PATHS_HELP, pathOptions, pathsOf, rootOf, rootOption } from './options.js';

export const installCommand: Command = {
  name: 'install',
  usage: '[--dry-run] [--root DIR]',
  summary: 'write the systemd units, crypttab/fstab lines and udev rule for the configuration',
  options: { ...rootOption, ...pathOptions, 'dry-run': { type: 'boolean' } },
  help: `
Generates from the configuration, and writes where they differ:

  /etc/systemd/system/offsite-backup@.service     the backup (offsite run <drive>)
  /etc/systemd/system/offsite-failure@.service    its OnFailure= reporter
  /etc/systemd/system/offsite-check.{service,timer}  the daily overdue check
  /etc/systemd/system/offsite-led.service         the LED agent (with an MQTT broker; it also keeps Home Assistant whole)
  dev-disk-by\\x2duuid-<uuid>.device.wants/offsite-backup@<drive>.service
                                                  starts a backup when the drive appears
  systemd-cryptsetup@<mapper>.service.d/offsite.conf  unlock timeout
  /etc/crypttab, /etc/fstab                       noauto lines in an offsite block;
                                                  every other line is left as it is
  /etc/udev/rules.d/70-offsite-*.rules, /etc/sysusers.d/offsite.conf
                                                  the LED's device for the agent's group

Running it again changes nothing unless the configuration changed; things an
earlier install wrote and the configuration no longer needs are removed. What
was written is listed in /var/lib/offsite/installed.json, so that
\`offsite uninstall\` removes exactly that. On the live system (no --root),
systemd and udev are reloaded afterwards.

Options:
  --dry-run      print what would change as a diff; write nothing
  --root DIR     write into DIR instead of / (packaging, tests); nothing is reloaded${PATHS_HELP}

See docs/units.md for what each unit does and why.
`,
  async run(ctx) {
    const config = loadConfig(ctx.configFile);
    const root = rootOf(ctx);
    const paths = pathsOf(ctx);
    const dryRun = Boolean(ctx.values['dry-run']);
    for (const [what, file] of [
      ['the offsite command', bridgeCli(paths)],
      ['the LED agent', ledCli(paths)],
    ] as const)
      if (!existsSync(file))
        ctx.log.warn(`${what} is not at ${file} (build it with npm run build, or pass --prefix)`);
    for (const file of [paths.node, paths.prefix])
      if (hiddenFromServices(file) && ledWanted(config))
        ctx.log.warn(
          `${file} is under a home directory, which the sandboxed LED agent cannot see (ProtectHome=yes): install Node.js and offsite system-wide`,
        );

    let result: ReturnType<typeof planInstall>;
    try {
      result = planInstall(root, plan(config, paths), paths);
    } catch (e) {
      if (e instanceof InstallError || e instanceof BlockError) {
        ctx.log.error(e.message);
        return EXIT.failed;
      }
      throw e;
    }
    if (!result.changes.length) {
      ctx.stdout.write(`nothing to change in ${root}\n`);
      if (!dryRun) applyInstall(root, result);
      return EXIT.ok;
    }
    for (const change of result.changes) ctx.stdout.write(describe(change));
    if (dryRun) {
      ctx.stdout.write(`--dry-run: ${result.changes.length} change(s) not written\n`);
      return EXIT.ok;
    }
    applyInstall(root, result);
    ctx.stdout.write(`${result.changes.length} change(s) written under ${root}\n`);
    if (root !== '/') return EXIT.ok;
    const reloaded = await afterInstall(ctx.log, result.changes, ledWanted(config));
    if (reloaded) ctx.stdout.write('next: offsite doctor\n');
    return reloaded ? EXIT.ok : EXIT.failed;
  },
};
