import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { progressLine } from '../../dev/progress.js';

describe('the npm start progress bar', () => {
  it('shows share, counts, rate and ETA of an entity being copied', () => {
    const line = progressLine('Sales', {
      entity: 'contact',
      syncState: 'InProgress',
      rowsCopied: 30_000,
      rowsEstimated: 120_000,
      rowsPerSecond: 15_000.4,
      etaSeconds: 6,
    });
    assert.match(line, /Sales · contact/);
    assert.match(line, / 25% 30,000\/120,000 15,000 rows\/s ETA 6 s$/);
    assert.equal((line.match(/█/g) ?? []).length, 6);
  });

  it('shows the copied count alone while the size is unknown', () => {
    const line = progressLine('Sales', { entity: 'account', syncState: 'Queued', rowsCopied: 0, rowsEstimated: null });
    assert.match(line, / {2}0% 0$/);
  });

  it('names the partitions a large entity is read in, the count being their sum already', () => {
    const line = progressLine('Sales', {
      entity: 'contact',
      syncState: 'InProgress',
      rowsCopied: 60_000,
      rowsEstimated: 120_000,
      partitions: [{ done: true }, { done: false }, { done: false }],
    });
    assert.match(line, / 50% 60,000\/120,000 · 1\/3 partitions$/);
  });
});
