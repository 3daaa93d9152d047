import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { arrayLiteral } from '../../lib/sink/dialects/postgres-arrays.js';
import { copyText } from '../../lib/sink/dialects/postgres-copy.js';

const same = (v: string | null) => v;

describe('PostgreSQL array literals and COPY text', () => {
  it('quotes every element, escapes quotes and backslashes, and writes NULL bare', () => {
    assert.equal(arrayLiteral(['a', 'b c'], same), '{"a","b c"}');
    assert.equal(arrayLiteral(['say "hi"', 'C:\\x', null], same), '{"say \\"hi\\"","C:\\\\x",NULL}');
    assert.equal(arrayLiteral([], same), '{}');
  });

  it('writes values that cannot hold a quote (GUIDs, numbers, times) without searching them', () => {
    assert.equal(
      arrayLiteral(['1', null, '2026-01-01T00:00:00.000Z'], same, false),
      '{"1",NULL,"2026-01-01T00:00:00.000Z"}',
    );
    assert.equal(arrayLiteral(['12', '13'], same, false), '{"12","13"}');
  });

  it('writes upsert rows as COPY text: tab-separated, \\N for NULL, control characters escaped', () => {
    const text = copyText([
      { id: 'a', rowVersion: '5', modifiedOn: null, cells: ['x\ty', 'back\\slash', null] },
      { id: 'b', rowVersion: null, modifiedOn: '2026-01-01T00:00:00.000Z', cells: ['line\nbreak\r', '\\N', 'plain'] },
    ]);
    assert.equal(
      text,
      'a\t5\t\\N\tx\\ty\tback\\\\slash\t\\N\nb\t\\N\t2026-01-01T00:00:00.000Z\tline\\nbreak\\r\t\\\\N\tplain\n',
    );
  });
});
