/**
 * rsync's exclude patterns (the subset `source.exclude` documents), so verify
 * leaves out exactly what rsync left out:
 *   - a leading `/` anchors the pattern at the top of the source;
 *     otherwise it matches the end of the path, at any depth
 *   - a trailing `/` matches directories only
 *   - `*` any run of characters but `/`, `**` anything, `?` one character but
 *     `/`, `[...]` a class, `dir/***` the directory and everything in it
 *   - `\` escapes a wildcard character
 * An excluded directory hides everything under it (rsync does not descend).
 * Like rsync's, the matching is on bytes: paths are byte strings
 * (byte-path.ts), and so is each pattern before it is compiled.
 */
import { type BytePath, bytePath } from './byte-path.js';

export type ExcludeMatcher = (relPath: BytePath, isDir: boolean) => boolean;

function toRegex(glob: string): string {
  let re = '';
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i]!;
    if (c === '\\' && i + 1 < glob.length) {
      re += escapeChar(glob[++i]!);
    } else if (c === '*') {
      if (glob.startsWith('***', i) && i === glob.length - 3 && glob[i - 1] === '/') {
        // "dir/***": the directory itself too, so drop the slash already emitted
        re = `${re.slice(0, -1)}(?:/.*)?`;
        i += 2;
      } else if (glob[i + 1] === '*') {
        re += '.*';
        i++;
      } else {
        re += '[^/]*';
      }
    } else if (c === '?') {
      re += '[^/]';
    } else if (c === '[') {
      const end = glob.indexOf(']', i + 2);
      if (end < 0) {
        re += '\\[';
      } else {
        let cls = glob.slice(i + 1, end);
        if (cls.startsWith('!')) cls = `^${cls.slice(1)}`;
        re += `[${cls.replace(/\\/g, '\\\\')}]`;
        i = end;
      }
    } else {
      re += escapeChar(c);
    }
  }
  return re;
}

function escapeChar(c: string): string {
  return /[.+^${}()|[\]\\*?]/.test(c) ? `\\${c}` : c;
}

export function excludeMatcher(patterns: readonly string[]): ExcludeMatcher {
  const rules = patterns
    .filter((p) => p.trim().length > 0)
    .map((raw) => {
      let p = bytePath(raw);
      const dirOnly = p.endsWith('/') && !p.endsWith('\\/');
      if (dirOnly) p = p.slice(0, -1);
      const anchored = p.startsWith('/');
      if (anchored) p = p.slice(1);
      const re = new RegExp(`${anchored ? '^' : '(?:^|/)'}${toRegex(p)}$`, 's');
      return { re, dirOnly };
    });
  if (!rules.length) return () => false;
  return (relPath, isDir) => rules.some((r) => (!r.dirOnly || isDir) && r.re.test(relPath));
}
