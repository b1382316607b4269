/**
 * Every program offsite runs on a device, a mapper or a mount point gets "--"
 * before those: a value that starts with "-" is then never read as an option
 * (the configuration refuses such values too; this is the second fence).
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';

const REPO = join(import.meta.dirname, '..', '..');
const PROGRAMS = ['cryptsetup', 'mount', 'umount', 'mkfs.ext4', 'blkid', 'sync', 'systemctl', 'rm'];

function sources(dir: string): string[] {
  return readdirSync(join(REPO, dir), { recursive: true })
    .map(String)
    .filter((f) => f.endsWith('.ts'))
    .map((f) => join(dir, f));
}

/** run('<program>', [...]) and the array literal it is given, or the `args` variable's */
function calls(file: string): Array<{ program: string; args: string; line: number }> {
  const text = readFileSync(join(REPO, file), 'utf8');
  const out: Array<{ program: string; args: string; line: number }> = [];
  for (const m of text.matchAll(/\brun\('([\w.]+)',\s*(\[[^\]]*\]|\w+)/g)) {
    const program = m[1]!;
    if (!PROGRAMS.includes(program)) continue;
    let args = m[2]!;
    // a variable: its last assignment before the call
    if (!args.startsWith('[')) {
      const before = text.slice(0, m.index);
      const decl = [...before.matchAll(new RegExp(`\\b${args}\\s*=\\s*(\\[[^\\]]*\\])`, 'g'))].pop();
      args = decl?.[1] ?? args;
    }
    out.push({ program, args, line: text.slice(0, m.index).split('\n').length });
  }
  return out;
}

describe('arguments of the programs offsite runs', () => {
  it('cryptsetup, mount, umount and the rest get "--" before their devices, mappers and paths', () => {
    const found = [...sources('bridge'), ...sources('units')].flatMap((f) =>
      calls(f).map((c) => ({ ...c, file: f })),
    );
    assert.ok(found.filter((c) => c.program === 'cryptsetup').length >= 5, 'the cryptsetup calls are found');
    assert.ok(found.some((c) => c.program === 'mount'));
    assert.ok(found.some((c) => c.program === 'umount'));
    const missing = found
      .filter((c) => !c.args.includes("'--'"))
      // blkid -t UUID=<uuid> takes no positional argument
      .filter((c) => !(c.program === 'blkid' && c.args.includes("'-t'")))
      .map((c) => `${c.file}:${c.line} ${c.program} ${c.args.replace(/\s+/g, ' ')}`);
    assert.deepEqual(missing, []);
  });
});
