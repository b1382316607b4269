#!/usr/bin/env node
// The `offsite-led` executable: the Node version check first, then the agent
// (led-agent/main.ts). Kept as plain as bridge/node-version.ts, for the same reason.
import { nodeTooOld } from '../bridge/node-version.js';

const tooOld = nodeTooOld(process.versions.node, 'offsite-led', process.execPath);
if (tooOld) {
  process.stderr.write(tooOld);
  process.exit(2);
} else {
  import('./main.js')
    .then((m) => m.main(process.argv.slice(2)))
    .then(
      (code) => process.exit(code),
      (e) => {
        process.stderr.write(`offsite-led: ${e instanceof Error ? e.stack : e}\n`);
        process.exit(1);
      },
    );
}
