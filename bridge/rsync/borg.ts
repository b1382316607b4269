/**
 * `borg check --repository-only` on the copy, when the source is a Borg
 * repository: the check Borg itself trusts for segment integrity, run against
 * the drive rather than the NAS.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { run, which } from '../exec.js';

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

/**
 * `auto`: run when the source is a Borg repository and borg is installed,
 * otherwise say why not. `always`: a missing borg, or a source that is not a
 * repository, is an error. `never`: skip.
 */
export async function borgCheck(
  source: string,
  copy: string,
  mode: BorgCheckMode,
  opts: { signal?: AbortSignal; borg?: string } = {},
): Promise<BorgCheckResult> {
  const borg = opts.borg ?? 'borg';
  if (mode === 'never') return { ran: false, reason: 'verify.borg_check is never' };
  if (!isBorgRepository(source)) {
    if (mode === 'always')
      throw new BorgCheckError(
        `borg check: ${source} is not a Borg repository (no [repository] in its config file)`,
      );
    return { ran: false, reason: 'the source is not a Borg repository' };
  }
  if (!(await which(borg))) {
    if (mode === 'always')
      throw new BorgCheckError('borg check: borg is not installed (verify.borg_check is always)');
    return { ran: false, reason: 'borg is not installed' };
  }
  const r = await run(borg, ['check', '--repository-only', copy], {
    signal: opts.signal,
    okCodes: [0],
    env: {
      // the copy is the same repository at another path: not a relocation attack
      BORG_RELOCATED_REPO_ACCESS_IS_OK: 'yes',
      BORG_UNKNOWN_UNENCRYPTED_REPO_ACCESS_IS_OK: 'yes',
    },
  }).catch((e: Error) => {
    throw new BorgCheckError(`borg check --repository-only failed on the copy: ${e.message}`);
  });
  return { ran: true, output: `${r.stdout}${r.stderr}`.trim() };
}
