import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { planColumnChange } from '../../lib/sink/column-widening.js';

describe('column widening plan', () => {
  it('widens a longer text, a text grown unlimited, and int to bigint', () => {
    assert.deepEqual(planColumnChange('name', { kind: 'text', maxLength: 160 }, { kind: 'text', maxLength: 400 }), {
      action: 'widen',
      to: { kind: 'text', maxLength: 400 },
    });
    assert.deepEqual(planColumnChange('notes', { kind: 'text', maxLength: 4000 }, { kind: 'text' }), {
      action: 'widen',
      to: { kind: 'text' },
    });
    assert.deepEqual(planColumnChange('count', { kind: 'integer' }, { kind: 'bigint' }), {
      action: 'widen',
      to: { kind: 'bigint' },
    });
  });

  it('never narrows: a shorter text, an int for a bigint, fewer digits keep the column', () => {
    assert.deepEqual(planColumnChange('name', { kind: 'text', maxLength: 400 }, { kind: 'text', maxLength: 100 }), {
      action: 'keep',
    });
    assert.deepEqual(planColumnChange('name', { kind: 'text' }, { kind: 'text', maxLength: 100 }), { action: 'keep' });
    assert.deepEqual(planColumnChange('count', { kind: 'bigint' }, { kind: 'integer' }), { action: 'keep' });
    assert.deepEqual(
      planColumnChange(
        'x',
        { kind: 'decimal', precision: 38, scale: 10 },
        { kind: 'decimal', precision: 12, scale: 2 },
      ),
      { action: 'keep' },
    );
  });

  it('widens a decimal to hold both its integer digits and the larger scale', () => {
    // decimal(12,2) has 10 integer digits; a scale of 4 on 8 integer digits needs decimal(14,4) to lose neither.
    assert.deepEqual(
      planColumnChange('x', { kind: 'decimal', precision: 12, scale: 2 }, { kind: 'decimal', precision: 12, scale: 4 }),
      { action: 'widen', to: { kind: 'decimal', precision: 14, scale: 4 } },
    );
  });

  it('refuses what would lose values or change the type, saying what changed and what to do', () => {
    const retyped = planColumnChange('numberofemployees', { kind: 'integer' }, { kind: 'text', maxLength: 100 });
    assert.equal(retyped.action, 'refuse');
    assert.match(
      retyped.action === 'refuse' ? retyped.reason : '',
      /describes numberofemployees as text\(100\) but its column is integer.*Alter or drop the column by hand/,
    );
    const tooWide = planColumnChange(
      'x',
      { kind: 'decimal', precision: 38, scale: 2 },
      { kind: 'decimal', precision: 38, scale: 10 },
    );
    assert.equal(tooWide.action, 'refuse');
    assert.match(tooWide.action === 'refuse' ? tooWide.reason : '', /needs 46 digits, more than the 38/);
  });
});
