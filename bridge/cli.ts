#!/usr/bin/env node
// The `offsite` executable. Nothing but the Node version check is loaded before
// the check has passed: a too-old Node gets a sentence, not a SyntaxError from
// deep inside (see bridge/node-version.ts; keep this file as plain as that one).
import { nodeTooOld } from './node-version.js';

const tooOld = nodeTooOld(process.versions.node, 'offsite', process.execPath);
if (tooOld) {
  process.stderr.write(tooOld);
  process.exitCode = 2;
} else {
  import('./main.js')
    .then((m) => m.main(process.argv.slice(2)))
    .then(
      (code) => {
        process.exitCode = code;
      },
      (e) => {
        process.stderr.write(`offsite: ${e instanceof Error ? e.stack : e}\n`);
        process.exitCode = 1;
      },
    );
}
