/**
 * docs/restore.md, run: its Borg sections with the real borg against a real
 * repository that a real `offsite run` copied onto an ext4 drive on a loop
 * device, opened read-only by `offsite open`. The page's paths are moved into
 * a temporary directory, nothing else of its commands is changed, and what it
 * quotes Borg saying is what Borg says. Its LUKS sections run in the VM suite
 * (test/e2e/restore.test.ts); every shell block is one or the other's.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, cpSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { stringify } from 'yaml';
import { mountAt } from '../../bridge/mounts.js';
import {
  blocksUnder,
  docBlocks,
  placed,
  RESTORE_IN_VM,
  RESTORE_ON_HOST,
  RESTORE_PAGE,
} from '../helpers/doc-blocks.js';
import { type LoopImage, makeExt4 } from '../helpers/loop.js';
import { tempDir } from '../helpers/trees.js';

const REPO = resolve(import.meta.dirname, '..', '..');
const ARCHIVE = 'nas-2026-11-28';
const RECIPE = 'home/anna/recettes/tarte.txt';

describe('docs/restore.md, run', () => {
  let dir: string;
  let img: LoopImage;
  let env: NodeJS.ProcessEnv;
  let moves: Array<[string, string]>;
  const at = (p: string) => placed(p, moves);

  /** A command as the page's reader runs it: bash, as root, borg's passphrase given. */
  function sh(script: string, input = ''): { status: number | null; stdout: string; stderr: string } {
    const r = spawnSync('bash', ['-e', '-c', script], { env, input, encoding: 'utf8', cwd: dir });
    return { status: r.status, stdout: r.stdout, stderr: r.stderr };
  }

  /** Every shell block under `section`, the page's paths moved, as one script; it must succeed. */
  function runSection(section: string): string {
    const script = blocksUnder(RESTORE_PAGE, section)
      .map((b) => at(b.text))
      .join('\n');
    const r = sh(script);
    assert.equal(r.status, 0, `docs/${RESTORE_PAGE}, "${section}":\n${script}\n${r.stderr}`);
    return r.stdout + r.stderr;
  }

  /** What the page quotes under `section` (its text blocks), its paths moved. */
  const quoted = (section: string) => blocksUnder(RESTORE_PAGE, section, 'text').map((b) => at(b.text));

  before(() => {
    dir = tempDir('offsite-restore-doc-');
    moves = [
      ['/mnt/offsite/', `${dir}/mnt/offsite/`],
      ['/srv/', `${dir}/srv/`],
      ['/root/', `${dir}/root/`],
    ];
    // `offsite` on the PATH, as docs/setup.md installs it, here from the sources
    mkdirSync(join(dir, 'bin'));
    writeFileSync(
      join(dir, 'bin', 'offsite'),
      `#!/bin/sh\ncd '${REPO}' && exec '${process.execPath}' --import tsx bridge/cli.ts "$@"\n`,
    );
    chmodSync(join(dir, 'bin', 'offsite'), 0o755);
    env = {
      ...process.env,
      PATH: `${join(dir, 'bin')}:${process.env.PATH}`,
      HOME: join(dir, 'home'),
      BORG_PASSPHRASE: 'correct horse battery staple',
      OFFSITE_CONFIG: join(dir, 'config.yaml'),
      JOURNAL_STREAM: '',
    };
    mkdirSync(join(dir, 'home'));
    mkdirSync(join(dir, 'root'));
    // the NAS: a Borg repository with one archive of Anna's recipes, made by its backup user
    mkdirSync(join(dir, 'data', 'home/anna/recettes'), { recursive: true });
    writeFileSync(join(dir, 'data', RECIPE), 'pâte brisée, pommes, 180 °C\n');
    mkdirSync(join(dir, 'srv'));
    assert.equal(sh(`borg init --encryption=repokey ${at('/srv/backup')}`).status, 0);
    assert.equal(sh(`cd data && borg create ${at('/srv/backup')}::${ARCHIVE} home`).status, 0);
    // drive alpha: a copy of it by `offsite run`
    img = makeExt4(64);
    writeFileSync(
      env.OFFSITE_CONFIG!,
      stringify({
        state_dir: join(dir, 'state'),
        source: { path: at('/srv/backup') },
        drives: [{ name: 'alpha', uuid: img.uuid, mount_point: at('/mnt/offsite/alpha') }],
        mqtt: { enabled: false },
      }),
    );
    for (const step of ['offsite enrol alpha', 'offsite run alpha']) {
      const r = sh(step);
      assert.equal(r.status, 0, `${step}: ${r.stderr}`);
    }
    // the NAS goes on: its Borg has seen the repository newer than the drive's copy
    assert.equal(sh(`cd data && borg create ${at('/srv/backup')}::nas-2026-11-29 home`).status, 0);
  });

  after(() => {
    img?.detach();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('every shell block of the page is run, here or in the VM suite', () => {
    for (const block of docBlocks(RESTORE_PAGE).filter((b) => b.kind === 'sh'))
      assert.ok(
        [...RESTORE_ON_HOST, ...RESTORE_IN_VM].includes(block.section),
        `the block at docs/${RESTORE_PAGE}:${block.line} ("${block.section}") is run by no test`,
      );
  });

  it('restoring one file: read from the read-only copy, the file as it was, the drive closed after', () => {
    runSection('Restoring one file');
    assert.equal(
      readFileSync(join(at('/srv/restored'), RECIPE), 'utf8'),
      readFileSync(join(dir, 'data', RECIPE), 'utf8'),
    );
    assert.equal(mountAt(at('/mnt/offsite/alpha')), null, 'closed');
  });

  it("why a directory of Borg's own: as the NAS's backup user, Borg asks whether it moved, then refuses the older copy", () => {
    // on a copy of that user's notes: answering would change them
    cpSync(join(dir, 'home'), join(dir, 'home-copy'), { recursive: true });
    const asUser = (cmd: string) => sh(`HOME='${join(dir, 'home-copy')}' ${cmd}`);
    assert.equal(sh('offsite open alpha').status, 0);
    try {
      const copy = at('/mnt/offsite/alpha/current');
      const asked = asUser(`borg list --bypass-lock ${copy}`);
      assert.notEqual(asked.status, 0);
      assert.match(
        asked.stderr,
        /was previously located at .*\/srv\/backup\nDo you want to continue\? \[yN\] Aborting/,
      );
      const refused = asUser(`BORG_RELOCATED_REPO_ACCESS_IS_OK=yes borg list --bypass-lock ${copy}`);
      assert.notEqual(refused.status, 0);
      assert.match(
        refused.stderr,
        /Cache, or information obtained from the security directory is newer than repository/,
      );
    } finally {
      assert.equal(sh('offsite close alpha').status, 0);
    }
  });

  it('restoring the whole repository: put back, what Borg says, the answer, and backups go on', () => {
    const section = 'Restoring the whole Borg repository';
    const [putBack, answer, ...more] = blocksUnder(RESTORE_PAGE, section);
    assert.ok(putBack && answer && !more.length, `two shell blocks under "${section}"`);
    const put = sh(at(putBack.text));
    assert.equal(put.status, 0, put.stderr);
    assert.equal(mountAt(at('/mnt/offsite/alpha')), null, 'closed');
    // what Borg says then, as the page quotes it
    const complaint = sh(`borg list ${at('/srv/backup')}`);
    assert.notEqual(complaint.status, 0);
    assert.ok(complaint.stderr.includes(quoted(section)[0]!), complaint.stderr);
    // the answer: the copy's archives, not those made after the drive's run
    const answered = sh(at(answer.text));
    assert.equal(answered.status, 0, answered.stderr);
    assert.match(answered.stdout, new RegExp(`^${ARCHIVE} `, 'm'));
    assert.doesNotMatch(answered.stdout, /nas-2026-11-29|nas-2026-11-30/);
    // and the NAS's backups go on from there
    assert.equal(sh(`borg check ${at('/srv/backup')}`).status, 0);
    const next = sh(`cd data && borg create ${at('/srv/backup')}::nas-2026-12-01 home`);
    assert.equal(next.status, 0, next.stderr);
  });

  it('put back at another path: what Borg asks, the answer, and the repository there as the copy had it', () => {
    const section = 'Put back at another path: "The repository … was previously located at …"';
    const [putBack, answer, ...more] = blocksUnder(RESTORE_PAGE, section);
    assert.ok(putBack && answer && !more.length, `two shell blocks under "${section}"`);
    const put = sh(at(putBack.text));
    assert.equal(put.status, 0, put.stderr);
    // asked with nobody to answer (a timer): the question as the page quotes it, then no
    const asked = sh(`borg list ${at('/srv/backup2')}`);
    assert.notEqual(asked.status, 0);
    for (const line of quoted(section)[0]!.split('\n')) assert.ok(asked.stderr.includes(line), asked.stderr);
    assert.match(asked.stderr, /Aborting/);
    const answered = sh(at(answer.text));
    assert.equal(answered.status, 0, answered.stderr);
    assert.match(answered.stdout, new RegExp(`^${ARCHIVE} `, 'm'));
    // and from then on Borg knows it there: no question, no answer given
    const next = sh(`cd data && borg create ${at('/srv/backup2')}::nas-2026-12-02 home`);
    assert.equal(next.status, 0, next.stderr);
  });

  it('every section the tests claim has its shell blocks', () => {
    for (const section of [...RESTORE_ON_HOST, ...RESTORE_IN_VM])
      assert.ok(blocksUnder(RESTORE_PAGE, section).length);
  });
});
