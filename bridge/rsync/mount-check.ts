/** Is this directory really a mount point (not the bare directory under it)? */
import { statSync } from 'node:fs';
import { dirname } from 'node:path';
import { mountAt } from '../mounts.js';

export function isMountPoint(path: string): boolean {
  try {
    if (mountAt(path)) return true;
  } catch {
    // no /proc: fall back on device numbers
  }
  try {
    const here = statSync(path);
    const parent = statSync(dirname(path));
    return here.dev !== parent.dev || here.ino === parent.ino;
  } catch {
    return false;
  }
}
