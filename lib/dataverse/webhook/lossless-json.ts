import { AppError } from '../../errors.js';

/**
 * JSON.parse that keeps the exact text of every number a double cannot hold. Dataverse writes Decimal,
 * Money and Int64 (versionnumber) values as bare number literals, and JSON.parse would round
 * `12345678901234567890.1234567891`. A pre-pass turns each such
 * literal (a fraction, an exponent, or 16+ digits) into a string that starts with a Unicode noncharacter
 * the body does not contain; small integers stay numbers. The tag therefore cannot collide with real text.
 * (Node 22's reviver source text does the same job, but `npm run bench -- json` measures it about 4× slower.)
 */
export interface LosslessJson {
  value: unknown;
  /** The literal text of a number in `value` (a plain JS number or a tagged literal), else undefined. */
  numberText(value: unknown): string | undefined;
}

const NUMBER = /-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?/y;
const QUOTE = 0x22;
const BACKSLASH = 0x5c;

export function parseLosslessJson(text: string): LosslessJson {
  const tag = pickTag(text);
  let value: unknown;
  try {
    value = JSON.parse(tagPreciseNumbers(text, tag));
  } catch (err) {
    throw malformed(text, err);
  }
  const tagCode = tag.charCodeAt(0);
  return {
    value,
    numberText: (v) =>
      typeof v === 'number' ? String(v) : typeof v === 'string' && v.charCodeAt(0) === tagCode ? v.slice(1) : undefined,
  };
}

/** The first noncharacter of U+FDD0..U+FDEF that appears in the text neither raw nor as a `\u` escape. */
function pickTag(text: string): string {
  const lower = text.includes('\\u') ? text.toLowerCase() : undefined;
  for (let code = 0xfdd0; code <= 0xfdef; code++) {
    const ch = String.fromCharCode(code);
    if (text.includes(ch)) continue;
    if (lower?.includes(`\\u${code.toString(16)}`)) continue;
    return ch;
  }
  throw new AppError(
    'VALIDATION_FAILED',
    'The request body contains every Unicode noncharacter U+FDD0..U+FDEF; it cannot be a Dataverse payload.',
  );
}

function tagPreciseNumbers(text: string, tag: string): string {
  let out = '';
  let copied = 0;
  let i = 0;
  const n = text.length;
  while (i < n) {
    const c = text.charCodeAt(i);
    if (c === QUOTE) {
      i = endOfString(text, i + 1);
      continue;
    }
    if (c === 0x2d || (c >= 0x30 && c <= 0x39)) {
      NUMBER.lastIndex = i;
      const match = NUMBER.exec(text);
      if (!match) {
        i++; // not a number: JSON.parse will report it
        continue;
      }
      const literal = match[0];
      const end = i + literal.length;
      if (isImprecise(literal)) {
        out += text.slice(copied, i) + '"' + tag + literal + '"';
        copied = end;
      }
      i = end;
      continue;
    }
    i++;
  }
  return copied === 0 ? text : out + text.slice(copied);
}

/** True for literals JSON.parse could round: any fraction or exponent, or an integer of 16+ digits. */
function isImprecise(literal: string): boolean {
  const digits = literal.charCodeAt(0) === 0x2d ? literal.length - 1 : literal.length;
  if (digits > 15) return true;
  for (let k = 0; k < literal.length; k++) {
    const c = literal.charCodeAt(k);
    if (c === 0x2e || c === 0x65 || c === 0x45) return true;
  }
  return false;
}

/** Index just past the closing quote of the string whose body starts at `from`. */
function endOfString(text: string, from: number): number {
  let j = from;
  for (;;) {
    const q = text.indexOf('"', j);
    if (q < 0) return text.length;
    let k = q - 1;
    while (text.charCodeAt(k) === BACKSLASH) k--;
    if ((q - 1 - k) % 2 === 0) return q + 1;
    j = q + 1;
  }
}

function malformed(text: string, err: unknown): AppError {
  // Report positions in the text we were given, not in the rewritten one.
  let cause = err;
  try {
    JSON.parse(text);
  } catch (original) {
    cause = original;
  }
  const reason = cause instanceof Error ? cause.message : String(cause);
  return new AppError('MALFORMED_JSON', `The webhook body is not valid JSON: ${reason}`, {
    cause,
    details: [{ field: 'body', message: reason }],
  });
}
