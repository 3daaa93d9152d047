/** The bound on parsed pages awaiting apply: a new read waits while the bound is reached, and goes once one is applied. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ParsedPages } from '../../lib/sync/partitioned-copy.js';

describe('parsed pages awaiting apply', () => {
  it('lets a read start only while fewer pages than the bound wait, and wakes it when one is applied', async () => {
    const pages = new ParsedPages(2);
    await pages.room();
    pages.add();
    await pages.room();
    pages.add();
    let started = false;
    const next = pages.room().then(() => {
      started = true;
    });
    await Promise.resolve();
    await Promise.resolve();
    assert.equal(started, false, 'two pages wait: no third read starts');
    pages.remove();
    await next;
    assert.equal(started, true);
    assert.equal(pages.inUse, 1);
  });
});
