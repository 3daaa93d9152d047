import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseLosslessJson } from '../../lib/dataverse/webhook/lossless-json.js';
import { decimalText } from '../../lib/dataverse/webhook/values.js';
import { AppError } from '../../lib/errors.js';

describe('parseLosslessJson', () => {
  it('keeps the digits of numbers a double would round, and leaves small integers as numbers', () => {
    const { value, numberText } = parseLosslessJson(
      '{"a":12345678901234567890.1234567891,"b":9223372036854775807,"c":42,"d":-0.10,"e":1E+400,"f":[1.5,2]}',
    );
    const v = value as Record<string, unknown>;
    assert.equal(numberText(v.a), '12345678901234567890.1234567891');
    assert.equal(numberText(v.b), '9223372036854775807');
    assert.equal(v.c, 42);
    assert.equal(numberText(v.c), '42');
    assert.equal(numberText(v.d), '-0.10');
    assert.equal(numberText(v.e), '1E+400');
    assert.deepEqual((v.f as unknown[]).map(numberText), ['1.5', '2']);
  });

  it('leaves numbers inside strings alone, across escaped quotes and backslashes', () => {
    const { value, numberText } = parseLosslessJson('{"s":"a \\" 1.5 \\\\","t":"\\\\","n":2.5}');
    const v = value as Record<string, unknown>;
    assert.equal(v.s, 'a " 1.5 \\');
    assert.equal(v.t, '\\');
    assert.equal(numberText(v.s), undefined);
    assert.equal(numberText(v.n), '2.5');
  });

  it('cannot mistake a string for a number, even one that starts with the tag it would use', () => {
    const { value, numberText } = parseLosslessJson('{"s":"\\ufdd01.5","r":"\ufdd11.5","n":3.25}');
    const v = value as Record<string, unknown>;
    assert.equal(numberText(v.s), undefined);
    assert.equal(numberText(v.r), undefined);
    assert.equal(numberText(v.n), '3.25');
  });

  it('answers MALFORMED_JSON quoting the reason given for the original text', () => {
    assert.throws(
      () => parseLosslessJson('{"a": 1.25, "b": }'),
      (err: unknown) => err instanceof AppError && err.code === 'MALFORMED_JSON' && err.message.includes('"b": }'),
    );
    for (const bad of ['', '{', '{"a":-}', '{"a":1.}', '{"a":.5}', '{"a":1e}', '{"a":"x}', '{"a":1.5 2}']) {
      assert.throws(() => parseLosslessJson(bad), { code: 'MALFORMED_JSON' }, bad);
    }
  });
});

describe('decimalText', () => {
  it('expands exponents into plain digits and leaves other literals as written', () => {
    assert.equal(decimalText('1.5E+20', 'x'), '150000000000000000000');
    assert.equal(decimalText('1E-3', 'x'), '0.001');
    assert.equal(decimalText('-2.5e-7', 'x'), '-0.00000025');
    assert.equal(decimalText('12.34e1', 'x'), '123.4');
    assert.equal(decimalText('0.00e2', 'x'), '0');
    assert.equal(decimalText('1234567.8900', 'x'), '1234567.8900');
  });

  it('refuses an absurd exponent', () => {
    assert.throws(() => decimalText('1e999999999', 'Attributes[0].value'), { code: 'VALIDATION_FAILED' });
  });
});
