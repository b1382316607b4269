import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { mountAt } from '../../bridge/mounts.js';
import { makeExt4 } from '../helpers/loop.js';
import { ALPHA_UUID, configFile, offsiteHere } from './cli.js';

describe('offsite cleanup (the ExecStopPost= safety net)', () => {
  it('unmounts a drive left mounted, lazily when it is busy, and is quiet the second time', async () => {
    const img = makeExt4(16);
    const mountPoint = mkdtempSync(join(tmpdir(), 'offsite-stale-'));
    try {
      const { file } = configFile(`source: {path: /srv/backup}
drives:
  - {name: plain, uuid: ${img.uuid}, mount_point: ${mountPoint}}
  - {name: alpha, luks_uuid: ${ALPHA_UUID}, key_file: /etc/offsite/keys/alpha.key, mount_point: /mnt/offsite/never}
`);
      execFileSync('mount', [img.device, mountPoint]);
      writeFileSync(join(mountPoint, 'open.txt'), 'x');
      // an open file keeps the filesystem busy, as a half-finished rsync would
      const fd = openSync(join(mountPoint, 'open.txt'), 'r');
      try {
        const r = await offsiteHere(['cleanup', 'plain', '--config', file]);
        assert.equal(r.exitCode, 0, r.stderr);
        assert.match(r.stdout, new RegExp(`cleanup plain: unmounted ${mountPoint}`));
        assert.equal(mountAt(mountPoint), null);
      } finally {
        closeSync(fd);
      }
      const again = await offsiteHere(['cleanup', 'plain', '--config', file]);
      assert.equal(again.exitCode, 0);
      assert.equal(again.stdout, '');
      // a LUKS drive with nothing open: nothing to do, nothing said
      const luks = await offsiteHere(['cleanup', 'alpha', '--config', file]);
      assert.equal(luks.exitCode, 0, luks.stderr);
      assert.equal(`${luks.stdout}${luks.stderr}`, '');
    } finally {
      img.detach();
    }
  });
});
