import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { editDistance, nearest } from '../../bridge/nearest.js';

describe('nearest: "did you mean"', () => {
  it('counts inserts, deletes, replacements and a swap of neighbours as one edit each', () => {
    assert.equal(editDistance('config', 'config'), 0);
    assert.equal(editDistance('conifg', 'config'), 1);
    assert.equal(editDistance('dryrun', 'dry-run'), 1);
    assert.equal(editDistance('verbos', 'verbose'), 1);
    assert.equal(editDistance('kitten', 'sitting'), 3);
    assert.equal(editDistance('', 'abc'), 3);
  });

  it('suggests a near word and nothing for an unrelated one', () => {
    const options = ['config', 'help', 'verbose', 'dry-run', 'root'];
    assert.equal(nearest('conifg', options), 'config');
    assert.equal(nearest('dryrun', options), 'dry-run');
    assert.equal(nearest('Verbose', options), 'verbose');
    assert.equal(nearest('x', options), undefined);
    assert.equal(nearest('frobnicate', options), undefined);
  });
});
