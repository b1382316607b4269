/** The rsync command line for one copy (docs/sync.md explains each choice). */

export interface RsyncPlan {
  /** the source directory (read-only to offsite) */
  source: string;
  /** the staging directory the new copy is built in */
  staging: string;
  /** the previous complete copy: unchanged files are hard-linked from it */
  linkDest: string | null;
  exclude: readonly string[];
  /** the user's own options (source.rsync_args), e.g. --bwlimit */
  extra?: readonly string[];
}

export function rsyncArgs(plan: RsyncPlan): string[] {
  const args = [
    // -a with hard links, ACLs, xattrs: a copy that restores as the original
    '-a',
    '-H',
    '-A',
    '-X',
    // ids as numbers: the drive may be read on a machine with other users
    '--numeric-ids',
    '--delete',
    // compare times to the nanosecond: a file rewritten within the same second at the same size
    // would otherwise be taken as unchanged (and hard-linked from the previous copy, stale)
    '--modify-window=-1',
    // the whole file list first: a percent and ETA that do not jump back, and -H
    // sees every link of a file before it transfers it
    '--no-inc-recursive',
    '--info=progress2',
    // a line per item on stdout ("%i": what changed), so verify reads back exactly the files this copy wrote
    '--out-format=%i %n',
    // names on stderr raw (UTF-8), not \#ooo-escaped, for the warning file list
    '-8',
  ];
  if (plan.linkDest) args.push(`--link-dest=${plan.linkDest}`);
  for (const pattern of plan.exclude) args.push(`--exclude=${pattern}`);
  args.push(...(plan.extra ?? []));
  // the trailing slash copies the directory's contents, not the directory itself
  args.push(
    '--',
    plan.source.endsWith('/') ? plan.source : `${plan.source}/`,
    `${plan.staging.replace(/\/$/, '')}/`,
  );
  return args;
}

/**
 * The same copy as a question: would `rsync` change anything in `copy` (the
 * previous complete copy)? Same options and filters, so rsync's answer is the
 * one the real copy would act on; `--itemize-changes` prints one line per
 * difference (nothing when there is none), and `--delete-excluded` makes a
 * name the copy still has but the filters now leave out count as a change
 * (a new copy would not have it).
 */
export function rsyncCheckArgs(plan: Omit<RsyncPlan, 'staging' | 'linkDest'> & { copy: string }): string[] {
  const args = rsyncArgs({ ...plan, staging: plan.copy, linkDest: null }).filter(
    (a) => a !== '--info=progress2',
  );
  const end = args.indexOf('--');
  args.splice(end, 0, '--dry-run', '--itemize-changes', '--delete-excluded');
  return args;
}
