import { readFileSync } from 'node:fs';

/** package.json's version, read once (the file ships next to dist/ and the sources alike). */
function find(): string {
  for (const rel of ['../package.json', '../../package.json']) {
    try {
      return JSON.parse(readFileSync(new URL(rel, import.meta.url), 'utf8')).version as string;
    } catch {}
  }
  return '0.0.0';
}
export default { version: find() };
