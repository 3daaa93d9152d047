import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { compareVersions } from '../../lib/change/version.js';

describe('compareVersions', () => {
  it('compares row versions as 64-bit integers, not strings', () => {
    assert.equal(compareVersions({ rowVersion: '10' }, { rowVersion: '9' }), 1);
    assert.equal(compareVersions({ rowVersion: '9223372036854775806' }, { rowVersion: '9223372036854775807' }), -1);
  });
  it('prefers row versions over modification times when both sides have them', () => {
    const a = { rowVersion: '5', modifiedOn: '2026-01-01T00:00:00Z' };
    const b = { rowVersion: '6', modifiedOn: '2025-01-01T00:00:00Z' };
    assert.equal(compareVersions(a, b), -1);
  });
  it('falls back to modification times', () => {
    assert.equal(compareVersions({ modifiedOn: '2026-01-01T00:00:01Z' }, { modifiedOn: '2026-01-01T00:00:00Z' }), 1);
  });
  it('never compares a row version with a time', () => {
    assert.equal(compareVersions({ rowVersion: '5' }, { modifiedOn: '2026-01-01T00:00:00Z' }), undefined);
  });
});
