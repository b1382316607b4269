import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { execa } from 'execa';
import { MINIMUM_NODE, nodeTooOld } from '../../bridge/node-version.js';
import { offsite, offsiteHere } from '../units/cli.js';

describe('offsite help <command>', () => {
  it("prints that command's help, as <command> --help does", async () => {
    const r = await offsiteHere(['help', 'run']);
    assert.equal(r.exitCode, 0);
    assert.match(r.stdout, /^Usage: offsite run <drive> \[options\]/);
    assert.equal(r.stdout, (await offsiteHere(['run', '--help'])).stdout);
  });

  it('names the command meant when the name is mistyped', async () => {
    for (const args of [['help', 'stauts'], ['stauts']]) {
      const r = await offsiteHere(args);
      assert.equal(r.exitCode, 2);
      assert.equal(
        r.stderr,
        'offsite: unknown command "stauts", did you mean "status"? (see offsite --help)\n',
      );
    }
  });
});

describe('a wrong option', () => {
  it('gets one line naming the nearest option, not the parser text and the whole help', async () => {
    const r = await offsite(['run', 'alpha', '--conifg', '/etc/offsite/config.yaml']);
    assert.equal(r.exitCode, 2);
    assert.equal(r.stdout, '');
    assert.equal(
      r.stderr,
      'offsite run: unknown option --conifg, did you mean --config? (see offsite help run)',
    );
  });

  it('each kind of mistake in its own words', async () => {
    const cases: Array<[string[], string]> = [
      [['status', '-x'], 'unknown option -x'],
      [['status', '-jsn'], 'unknown option -jsn, did you mean --json?'],
      [['status', '--json=yes'], '--json takes no value'],
      [['status', '--config'], '--config needs a value'],
      [
        ['status', '--config', '--json'],
        '--config needs a value, and --json looks like an option (write --config=--json if it is the value)',
      ],
    ];
    for (const [args, message] of cases) {
      const r = await offsiteHere(args);
      assert.equal(r.exitCode, 2, args.join(' '));
      assert.equal(r.stderr, `offsite status: ${message} (see offsite help status)\n`);
    }
  });
});

describe('a Node.js older than 20.10', () => {
  it('is refused, and any newer one accepted', () => {
    assert.equal(MINIMUM_NODE, '20.10');
    for (const old of ['18.19.0', '12.22.12', '20.9.0', 'v20.9.9'])
      assert.match(
        nodeTooOld(old, 'offsite', '/usr/bin/node') ?? '',
        /^offsite needs Node\.js 20\.10 or newer; \/usr\/bin\/node is Node\.js v?\d/,
      );
    for (const fine of ['20.10.0', '20.19.2', '22.0.0', '24.1.0'])
      assert.equal(nodeTooOld(fine, 'offsite', 'node'), undefined);
  });

  it('gets a clear message and exit 2 from both programs, before the rest is loaded', async () => {
    const fake = `data:text/javascript,Object.defineProperty(process,"versions",{value:{...process.versions,node:"18.19.0"}})`;
    for (const [program, entry] of [
      ['offsite', 'bridge/cli.ts'],
      ['offsite-led', 'led-agent/cli.ts'],
    ] as const) {
      const r = await execa(process.execPath, ['--import', 'tsx', '--import', fake, entry, '--version'], {
        reject: false,
      });
      assert.equal(r.exitCode, 2, `${program}: ${r.stderr}`);
      assert.equal(r.stdout, '');
      assert.equal(
        r.stderr,
        `${program} needs Node.js 20.10 or newer; ${process.execPath} is Node.js 18.19.0.\n` +
          `Install Node.js 20 as docs/setup.md (step 1) shows, and run ${program} with it.`,
      );
    }
  });

  it('the executables import nothing else before the check (an older Node could not even parse the rest)', () => {
    for (const entry of ['bridge/cli.ts', 'led-agent/cli.ts']) {
      const text = readFileSync(entry, 'utf8');
      const imports = [...text.matchAll(/^import .* from '(.*)';$/gm)].map((m) => m[1]);
      assert.deepEqual(
        imports.map((i) => i?.replace(/^.*\//, '')),
        ['node-version.js'],
        entry,
      );
      assert.doesNotMatch(text, /\?\.|\?\?/, `${entry}: optional chaining or ?? (Node 14 syntax)`);
    }
  });
});
