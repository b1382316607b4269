/**
 * Adding an enrolled drive to the configuration file without losing its
 * comments or layout (yaml's Document API), and only if the result is still
 * a valid configuration.
 */
import { readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { isMap, isSeq, parseDocument } from 'yaml';
import { ConfigError, parseConfig } from '../../bridge/config.js';

export type DriveEntry =
  | { name: string; luks_uuid: string; key_file: string; mount_point: string }
  | { name: string; uuid: string; mount_point: string };

export function addDrive(text: string, entry: DriveEntry, file = 'config'): string {
  const doc = parseDocument(text);
  if (doc.errors.length)
    throw new ConfigError(file, '', `invalid YAML: ${doc.errors[0]!.message.split('\n')[0]}`);
  if (!isMap(doc.contents)) throw new ConfigError(file, '', 'expected a mapping at the top');
  const drives = doc.get('drives');
  if (drives === undefined || drives === null) doc.set('drives', doc.createNode([entry]));
  else if (isSeq(drives)) {
    // the example's `drives: []` becomes a list of one drive per entry, not one long [ {...} ]
    drives.flow = false;
    drives.add(doc.createNode(entry));
  } else throw new ConfigError(file, 'drives', 'expected a list of drives');
  const out = doc.toString();
  parseConfig(parseDocument(out).toJS(), file);
  return out;
}

export function addDriveToFile(file: string, entry: DriveEntry): void {
  const out = addDrive(readFileSync(file, 'utf8'), entry, file);
  const tmp = `${file}.offsite-${process.pid}.tmp`;
  writeFileSync(tmp, out, { mode: statSync(file).mode & 0o777 });
  renameSync(tmp, file);
}
