/** What no single key can say on its own: names used twice, drives placed badly, LED nodes. */
import type { z } from 'zod';
import { placeProblems } from './places.js';
import type { ConfigFields } from './schema.js';

export function crossChecks(c: ConfigFields, ctx: z.RefinementCtx): void {
  const seen = new Set<string>();
  c.drives.forEach((d, i) => {
    if (seen.has(d.name))
      ctx.addIssue({
        code: 'custom',
        path: ['drives', i, 'name'],
        message: `a unique name; "${d.name}" is used twice`,
      });
    seen.add(d.name);
  });
  // zod runs this on a config with other problems too: a drive may lack its path
  const places = c.drives
    .map((d, i) =>
      d.kind === 'directory'
        ? { key: ['drives', i, 'directory'], path: d.directory }
        : { key: ['drives', i, 'mount_point'], path: d.mountPoint },
    )
    .filter((p) => typeof p.path === 'string');
  const fixed = [
    { key: ['source', 'path'], path: c.source.path },
    { key: ['state_dir'], path: c.state_dir },
  ];
  for (const p of placeProblems(places, fixed))
    ctx.addIssue({ code: 'custom', path: [...p.key], message: p.message });
  c.led.nodes?.forEach((entry, i) => {
    const { node, drives } = typeof entry === 'string' ? { node: entry, drives: undefined } : entry;
    if (node !== c.node_id && !drives)
      ctx.addIssue({
        code: 'custom',
        path: ['led', 'nodes', i],
        message: `"${node}" is another node: name the drives the LED may follow, e.g. { node: ${node}, drives: [alpha] }`,
      });
    if (node === c.node_id)
      drives?.forEach((d, j) => {
        if (!seen.has(d))
          ctx.addIssue({
            code: 'custom',
            path: ['led', 'nodes', i, 'drives', j],
            message: `"${d}" is not one of the drives in drives:`,
          });
      });
  });
  if (c.led.driver === 'sysfs' && !c.led.path)
    ctx.addIssue({
      code: 'custom',
      path: ['led', 'path'],
      message: 'the LED class directory for the sysfs driver',
    });
}
