/**
 * `borg check --repository-only` of a copy, for `offsite scrub`: the check
 * Borg itself trusts for segment integrity, run against the drive rather than
 * the NAS. Never on the copy itself: borg rewrites the `config` file of the
 * repository it checks (same bytes, a new time; borg 1.2.4) and makes its lock
 * files there, and a copy that changes is a copy the next run sees as changed.
 * It runs on a throwaway view: a tree of hard links to the copy's files (borg
 * without --repair writes none of them: a test checks every file's time and
 * contents), with a file of its own for `config`. The view lives in
 * `snapshots/.borg-view` and is removed afterwards (or by the next run's tidy).
 */
import { copyFileSync, readFileSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';
import { run, which } from '../exec.js';
import { lstatIn, removeDriveTree } from './drive-path.js';

export const BORG_VIEW = '.borg-view';

export function isBorgRepository(dir: string): boolean {
  try {
    return /^\s*\[repository\]\s*$/m.test(readFileSync(join(dir, 'config'), 'utf8'));
  } catch {
    return false;
  }
}

export type BorgCheckResult = { ran: true; output: string } | { ran: false; reason: string };

export type BorgCheckMode = 'auto' | 'always' | 'never';

export class BorgCheckError extends Error {
  override name = 'BorgCheckError';
}

export interface BorgView {
  /** the drive's target (mount point or directory): nothing outside it is touched */
  target: string;
  /** the copy to check (a directory below the target) */
  copy: string;
  /** where the throwaway view is made (a directory below the target) */
  view: string;
}

/**
 * `auto`: run when the copy is a Borg repository and borg is installed,
 * otherwise say why not. `always`: a missing borg, or a copy that is not a
 * repository, is an error. `never`: skip.
 */
export async function borgCheck(
  where: BorgView,
  mode: BorgCheckMode,
  opts: { signal?: AbortSignal; borg?: string } = {},
): Promise<BorgCheckResult> {
  const borg = opts.borg ?? 'borg';
  if (mode === 'never') return { ran: false, reason: 'verify.borg_check is never' };
  const config = join(where.copy, 'config');
  if (!lstatIn(where.target, config)?.isFile() || !isBorgRepository(where.copy)) {
    if (mode === 'always')
      throw new BorgCheckError(
        `borg check: ${where.copy} is not a Borg repository (no [repository] in its config file)`,
      );
    return { ran: false, reason: 'the copy is not a Borg repository' };
  }
  if (!(await which(borg))) {
    if (mode === 'always')
      throw new BorgCheckError('borg check: borg is not installed (verify.borg_check is always)');
    return { ran: false, reason: 'borg is not installed' };
  }
  await removeDriveTree(where.target, where.view);
  try {
    // cp -a never follows a symlink in the copy; -l links files instead of copying them
    await run('cp', ['-al', '--', where.copy, where.view], { signal: opts.signal, timeoutMs: 3600_000 });
    const own = join(where.view, 'config');
    unlinkSync(own);
    copyFileSync(config, own);
    const r = await run(borg, ['check', '--repository-only', where.view], {
      signal: opts.signal,
      okCodes: [0],
      env: {
        // the view is the same repository at another path: not a relocation attack
        BORG_RELOCATED_REPO_ACCESS_IS_OK: 'yes',
        BORG_UNKNOWN_UNENCRYPTED_REPO_ACCESS_IS_OK: 'yes',
      },
    }).catch((e: Error) => {
      throw new BorgCheckError(`borg check --repository-only failed on the copy: ${e.message}`);
    });
    return { ran: true, output: `${r.stdout}${r.stderr}`.trim() };
  } finally {
    await removeDriveTree(where.target, where.view);
  }
}
