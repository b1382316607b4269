import { doctor } from '../../units/doctor.js';
import { loadConfig } from '../config.js';
import { EXIT } from '../exit.js';
import type { Command } from './command.js';
import { PATHS_HELP, pathOptions, pathsOf, rootOf, rootOption } from './options.js';

export const doctorCommand: Command = {
  name: 'doctor',
  usage: '',
  summary: 'check everything a backup needs and print what to fix',
  options: { ...rootOption, ...pathOptions },
  help: `
Checks, and prints each problem with the command that fixes it:

  key files        each LUKS drive's key file exists, mode 0400 or 0600, owned by root
  header backups   <state_dir>/headers/<drive>.luksheader exists for each LUKS drive
  enrolment        <state_dir>/drives/<drive>.token exists for each drive, root only
  installed units  units, links, crypttab and fstab agree with the configuration
  programs         rsync, mount, cryptsetup (LUKS drives), the lock command (e.g. borg);
                   a warning without setpriv (util-linux: rsync then outlives a kill -9 of its run)
  source           source.path is a readable directory
  MQTT broker      connects (with mqtt.username / password_file)
  broker access    a warning when a client without a login may publish under offsite's topics
  SMTP server      answers EHLO (and accepts the login, when configured)
  notifications    a warning when neither email nor MQTT is configured
  LED              the BlinkStick is plugged in, or the sysfs LED is there

Exit codes: 0 all good (warnings allowed), 1 a problem was found, 2 configuration error.

Options:
  --root DIR     check an installation under DIR instead of /${PATHS_HELP}
`,
  async run(ctx) {
    const config = loadConfig(ctx.configFile);
    const findings = await doctor({ config, root: rootOf(ctx), paths: pathsOf(ctx), timeoutMs: 5000 });
    for (const f of findings) {
      const label = f.warning ? 'WARN' : f.ok ? 'ok' : 'FAIL';
      ctx.stdout.write(`${label.padEnd(6)}${f.what}\n${f.fix ? `      fix: ${f.fix}\n` : ''}`);
    }
    const problems = findings.filter((f) => !f.ok).length;
    const warnings = findings.filter((f) => f.warning).length;
    const also = warnings ? `, ${warnings} warning(s)` : '';
    ctx.stdout.write(problems ? `\n${problems} problem(s)${also}\n` : `\nall good${also}\n`);
    return problems ? EXIT.failed : EXIT.ok;
  },
};
