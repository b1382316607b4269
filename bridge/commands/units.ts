import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { plan, UNIT_DIR } from '../../units/generate.js';
import { loadConfig } from '../config.js';
import { EXIT } from '../exit.js';
import { type Command, UsageError } from './command.js';
import { PATHS_HELP, pathOptions, pathsOf } from './options.js';

export const unitsCommand: Command = {
  name: 'units',
  usage: '--out DIR',
  summary: 'write the generated systemd unit files (and drop-ins) into a directory',
  options: { out: { type: 'string', short: 'o' }, ...pathOptions },
  help: `
Writes the unit files and drop-ins that \`offsite install\` would put in
/etc/systemd/system, laid out the same way under DIR, and nothing else (no
links, no crypttab/fstab, no udev rule). For reading, packaging, or checking
with \`systemd-analyze verify DIR/offsite-backup@.service\`.

Options:
  -o, --out DIR  where to write (created if missing)${PATHS_HELP}
`,
  async run(ctx) {
    const out = ctx.values.out;
    if (typeof out !== 'string') throw new UsageError('where to? e.g. offsite units --out ./units');
    const config = loadConfig(ctx.configFile);
    for (const f of plan(config, pathsOf(ctx)).files.filter((f) => f.unit)) {
      const file = join(resolve(out), relative(UNIT_DIR, f.path));
      mkdirSync(dirname(file), { recursive: true });
      writeFileSync(file, f.content, { mode: f.mode });
      ctx.stdout.write(`${file}\n`);
    }
    return EXIT.ok;
  },
};
