import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import {
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { unifiedDiff } from '../../units/diff.js';
import { BLOCK_BEGIN, BLOCK_END, readBlock, removeBlock, setBlock } from '../../units/managed-block.js';
import { ALPHA_UUID, BRAVO_UUID, configFile, offsite, offsiteHere } from './cli.js';

/** Every path under root with its type, mode and content or link target: two equal snapshots are identical trees. */
function snapshot(root: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const rel of readdirSync(root, { recursive: true }).map(String).sort()) {
    const full = join(root, rel);
    const st = lstatSync(full);
    const mode = (st.mode & 0o7777).toString(8);
    if (st.isSymbolicLink()) out[rel] = `link -> ${readlinkSync(full)}`;
    else if (st.isDirectory()) out[rel] = `dir ${mode}`;
    else out[rel] = `file ${mode} ${readFileSync(full, 'base64')}`;
  }
  return out;
}

const FSTAB = `# /etc/fstab: static file system information.
#
# <file system> <mount point>   <type>  <options>       <dump>  <pass>
UUID=5b2c1f7a-0000-4000-8000-000000000001 /               ext4    errors=remount-ro 0       1
UUID=5b2c1f7a-0000-4000-8000-000000000002 none            swap    sw              0       0
/dev/sr0        /media/cdrom0   udf,iso9660 user,noauto     0       0
#  a comment with trailing spaces   \t
`;
// no newline at the end: restored exactly that way
const CRYPTTAB =
  '# <target name>\t<source device>\t\t<key file>\t<options>\nsdb1_crypt UUID=aaaa none luks,discard';

function root(): string {
  const r = mkdtempSync(join(tmpdir(), 'offsite-root-'));
  mkdirSync(join(r, 'etc'), { mode: 0o755 });
  writeFileSync(join(r, 'etc', 'fstab'), FSTAB, { mode: 0o644 });
  writeFileSync(join(r, 'etc', 'crypttab'), CRYPTTAB, { mode: 0o600 });
  return r;
}

function config(drives: string, extra = ''): string {
  return configFile(`# the NAS
source:
  path: /srv/backup
led:
  driver: blinkstick
${extra}drives:
${drives}`).file;
}

const ALPHA = `  - {name: alpha, luks_uuid: ${ALPHA_UUID}, key_file: /etc/offsite/keys/alpha.key, mount_point: /mnt/offsite/alpha}\n`;
const BRAVO = `  - {name: bravo, luks_uuid: ${BRAVO_UUID}, key_file: /etc/offsite/keys/bravo.key, mount_point: /mnt/offsite/bravo}\n`;

const install = (cfg: string, r: string, ...more: string[]) =>
  offsiteHere(['install', '--config', cfg, '--root', r, '--node', process.execPath, ...more]);
const uninstall = (cfg: string, r: string, ...more: string[]) =>
  offsiteHere(['uninstall', '--config', cfg, '--root', r, ...more]);

describe('offsite install / uninstall into a root', () => {
  it('installing twice gives identical trees; the second run changes nothing', async () => {
    const r = root();
    const cfg = config(ALPHA + BRAVO);
    // the first run through the real executable, the rest in-process
    const first = await offsite(['install', '--config', cfg, '--root', r, '--node', process.execPath]);
    assert.equal(first.exitCode, 0, first.stderr);
    const once = snapshot(r);
    const second = await install(cfg, r);
    assert.equal(second.exitCode, 0, second.stderr);
    assert.match(second.stdout, /nothing to change/);
    assert.deepEqual(snapshot(r), once);
    assert.ok(once['etc/systemd/system/offsite-backup@.service']);
    assert.equal(
      once[
        `etc/systemd/system/dev-disk-by\\x2duuid-${BRAVO_UUID.replace(/-/g, '\\x2d')}.device.wants/offsite-backup@bravo.service`
      ],
      'link -> /etc/systemd/system/offsite-backup@.service',
    );
    const fstab = readFileSync(join(r, 'etc', 'fstab'), 'utf8');
    assert.ok(fstab.startsWith(FSTAB), 'every line before the block is untouched');
    assert.deepEqual(readBlock(fstab), [
      '/dev/mapper/offsite_alpha /mnt/offsite/alpha ext4 noauto,nofail,noatime 0 0',
      '/dev/mapper/offsite_bravo /mnt/offsite/bravo ext4 noauto,nofail,noatime 0 0',
    ]);
    const crypttab = readFileSync(join(r, 'etc', 'crypttab'), 'utf8');
    assert.ok(crypttab.startsWith(`${CRYPTTAB}\n${BLOCK_BEGIN}\n`));
    assert.equal(lstatSync(join(r, 'etc', 'crypttab')).mode & 0o777, 0o600, 'crypttab keeps its mode');
  });

  it('uninstall restores crypttab and fstab byte for byte and removes everything else it added', async () => {
    const r = root();
    const before = snapshot(r);
    const cfg = config(ALPHA + BRAVO);
    assert.equal((await install(cfg, r)).exitCode, 0);
    assert.notDeepEqual(snapshot(r), before);
    const u = await uninstall(cfg, r);
    assert.equal(u.exitCode, 0, u.stderr);
    assert.deepEqual(snapshot(r), before);
    assert.equal(readFileSync(join(r, 'etc', 'crypttab'), 'utf8'), CRYPTTAB);
    assert.equal(readFileSync(join(r, 'etc', 'fstab'), 'utf8'), FSTAB);
  });

  it('a root without crypttab or fstab gets them, and loses them again on uninstall', async () => {
    const r = mkdtempSync(join(tmpdir(), 'offsite-root-'));
    const cfg = config(ALPHA);
    assert.equal((await install(cfg, r)).exitCode, 0);
    assert.equal(readFileSync(join(r, 'etc', 'crypttab'), 'utf8').split('\n')[0], BLOCK_BEGIN);
    assert.equal((await uninstall(cfg, r)).exitCode, 0);
    assert.deepEqual(readdirSync(r), []);
  });

  it('--dry-run prints the diff and writes nothing', async () => {
    const r = root();
    const before = snapshot(r);
    const out = await install(config(ALPHA), r, '--dry-run');
    assert.equal(out.exitCode, 0, out.stderr);
    assert.deepEqual(snapshot(r), before);
    assert.match(out.stdout, /^\+\+\+ b\/etc\/systemd\/system\/offsite-backup@\.service$/m);
    assert.match(
      out.stdout,
      /^\+offsite_alpha UUID=0b1c2d3e-4f50-6172-8394-a5b6c7d8e9f0 \/etc\/offsite\/keys\/alpha\.key luks,noauto,headless=true$/m,
    );
    assert.match(out.stdout, /^ \/dev\/sr0/m, 'context lines from fstab');
    assert.match(
      out.stdout,
      /^link .*offsite-backup@alpha\.service -> \/etc\/systemd\/system\/offsite-backup@\.service$/m,
    );
    // after a real install, an uninstall dry run shows the removal and removes nothing
    assert.equal((await install(config(ALPHA), r)).exitCode, 0);
    const installed = snapshot(r);
    const dry = await uninstall(config(ALPHA), r, '--dry-run');
    assert.match(dry.stdout, /^-offsite_alpha UUID=/m);
    assert.deepEqual(snapshot(r), installed);
  });

  it('a changed configuration updates the block in place and removes what is no longer needed', async () => {
    const r = root();
    assert.equal((await install(config(ALPHA + BRAVO), r)).exitCode, 0);
    // a line the admin added after the block stays where it is
    writeFileSync(
      join(r, 'etc', 'fstab'),
      `${readFileSync(join(r, 'etc', 'fstab'), 'utf8')}tmpfs /scratch tmpfs defaults 0 0\n`,
    );
    const changed = await install(config(ALPHA), r);
    assert.equal(changed.exitCode, 0, changed.stderr);
    const fstab = readFileSync(join(r, 'etc', 'fstab'), 'utf8');
    assert.equal(
      fstab,
      `${FSTAB}${BLOCK_BEGIN}\n/dev/mapper/offsite_alpha /mnt/offsite/alpha ext4 noauto,nofail,noatime 0 0\n${BLOCK_END}\ntmpfs /scratch tmpfs defaults 0 0\n`,
    );
    const tree = Object.keys(snapshot(r));
    assert.equal(
      tree.some((p) => p.includes('bravo')),
      false,
      'bravo link and drop-in are gone',
    );
    assert.equal(
      tree.some((p) => p.includes(BRAVO_UUID.slice(0, 8))),
      false,
      'and the emptied .wants directory',
    );
    assert.equal((await uninstall(config(ALPHA), r)).exitCode, 0);
    assert.equal(
      readFileSync(join(r, 'etc', 'fstab'), 'utf8'),
      `${FSTAB}tmpfs /scratch tmpfs defaults 0 0\n`,
    );
  });

  it('refuses to overwrite a unit file offsite did not write', async () => {
    const r = root();
    mkdirSync(join(r, 'etc', 'systemd', 'system'), { recursive: true });
    writeFileSync(join(r, 'etc', 'systemd', 'system', 'offsite-check.timer'), '[Timer]\nOnCalendar=hourly\n');
    const before = snapshot(r);
    const out = await install(config(ALPHA), r);
    assert.equal(out.exitCode, 1);
    assert.match(out.stderr, /offsite-check\.timer exists and was not written by offsite/);
    assert.deepEqual(snapshot(r), before);
  });

  it('uninstall leaves a unit changed by hand in place and says so', async () => {
    const r = root();
    const cfg = config(ALPHA);
    assert.equal((await install(cfg, r)).exitCode, 0);
    const timer = join(r, 'etc', 'systemd', 'system', 'offsite-check.timer');
    writeFileSync(timer, readFileSync(timer, 'utf8').replace('OnCalendar=daily', 'OnCalendar=weekly'));
    const out = await uninstall(cfg, r);
    assert.equal(out.exitCode, 1);
    assert.match(out.stderr, /offsite-check\.timer was changed since offsite installed it: left in place/);
    assert.match(readFileSync(timer, 'utf8'), /OnCalendar=weekly/);
    assert.equal(readFileSync(join(r, 'etc', 'fstab'), 'utf8'), FSTAB);
  });
});

describe('the managed block', () => {
  const line = fc.string({ maxLength: 20 }).map((s) => s.replace(/\n/g, ''));
  const file = fc
    .tuple(fc.array(line, { maxLength: 8 }), fc.boolean())
    .map(([lines, eol]) => lines.join('\n') + (eol && lines.length ? '\n' : ''))
    .filter((t) => !t.includes(BLOCK_BEGIN) && !t.includes(BLOCK_END));
  const block = fc.array(
    line.filter((l) => l !== BLOCK_BEGIN && l !== BLOCK_END),
    { minLength: 1, maxLength: 4 },
  );

  it('set then remove gives back any file byte for byte; replacing keeps everything else', () => {
    fc.assert(
      fc.property(file, block, block, (text, a, b) => {
        const first = setBlock(text, a);
        assert.deepEqual(readBlock(first.text), a);
        const second = setBlock(first.text, b);
        assert.equal(second.addedNewline, false);
        assert.deepEqual(readBlock(second.text), b);
        assert.equal(removeBlock(second.text, first.addedNewline), text);
      }),
      { numRuns: 2000 },
    );
  });

  it('refuses a block without its end marker', () => {
    assert.throws(() => setBlock(`a\n${BLOCK_BEGIN}\nx\n`, ['y'], '/etc/fstab'), /never closed/);
  });
});

describe('the dry-run diff', () => {
  it('applied with patch(1), turns the old file into the new one', () => {
    const dir = mkdtempSync(join(tmpdir(), 'offsite-diff-'));
    const text = fc.array(fc.constantFrom('a', 'b', 'c', 'd', '', 'e f'), { maxLength: 12 });
    fc.assert(
      fc.property(text, text, fc.boolean(), fc.boolean(), (a, b, eolA, eolB) => {
        const before = a.join('\n') + (eolA || !a.length ? (a.length ? '\n' : '') : '');
        const after = b.join('\n') + (eolB || !b.length ? (b.length ? '\n' : '') : '');
        const file = join(dir, 'f');
        writeFileSync(file, before);
        const diff = unifiedDiff('/f', before, after);
        if (before === after) return assert.equal(diff, '');
        const r = spawnSync('patch', ['-s', '-p1', '-d', dir], { input: diff, encoding: 'utf8' });
        assert.equal(r.status, 0, `${r.stdout}${r.stderr}\n${diff}`);
        assert.equal(readFileSync(file, 'utf8'), after);
      }),
      { numRuns: 300 },
    );
  });
});
