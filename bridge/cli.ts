#!/usr/bin/env node
import { EXIT } from './commands/command.js';
import { main } from './main.js';

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (e) => {
    process.stderr.write(`offsite: ${(e as Error).stack ?? e}\n`);
    process.exitCode = EXIT.failed;
  },
);
