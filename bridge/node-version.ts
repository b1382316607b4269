/**
 * The oldest Node.js that offsite runs on, and the sentence that refuses an
 * older one. The executables (bridge/cli.ts, led-agent/cli.ts) import this
 * before anything else, so it is kept to syntax and APIs that every Node with
 * ES modules understands (Debian 12's own nodejs is 18, Debian 11's is 12).
 */
export const MINIMUM_NODE = '20.10';

/** Why Node `version` (e.g. "18.19.0") cannot run `program`, or undefined when it can. */
export function nodeTooOld(version: string, program: string, execPath: string): string | undefined {
  const have = version.replace(/^v/, '').split('.').map(Number);
  const need = MINIMUM_NODE.split('.').map(Number);
  for (let i = 0; i < need.length; i++) {
    const h = have[i] || 0;
    const n = need[i] || 0;
    if (h > n) return undefined;
    if (h < n) {
      return (
        `${program} needs Node.js ${MINIMUM_NODE} or newer; ${execPath} is Node.js ${version}.\n` +
        `Install Node.js 20 as docs/setup.md (step 1) shows, and run ${program} with it.\n`
      );
    }
  }
  return undefined;
}
