/**
 * JSON for Dataverse bodies without losing digits. The Web API prints money and decimals as JSON numbers
 * with up to ~22 significant digits, more than a double holds, and Node 20's JSON.parse offers no access
 * to the source text. So a number literal with more than 15 significant digits is handed over as its exact
 * text (a string); every other number stays a number (it round-trips through a double unchanged).
 */

/** Significant digits a double always represents exactly in decimal. */
const SAFE_DIGITS = 15;

/** Quick pre-check: some run of 16+ digits/dots exists (else nothing can lose precision). */
const MAYBE_LONG_NUMBER = /[0-9][0-9.]{15}/;

function significantDigits(literal: string): number {
  const mantissa = literal.replace(/^-/, '').split(/[eE]/)[0].replace('.', '');
  return mantissa.replace(/^0+/, '').length;
}

/** JSON.parse, except that long number literals arrive as their exact text. */
export function parseJsonLossless(text: string): unknown {
  if (!MAYBE_LONG_NUMBER.test(text)) return JSON.parse(text);
  let out = '';
  let last = 0;
  let i = 0;
  const n = text.length;
  while (i < n) {
    const c = text.charCodeAt(i);
    if (c === 0x22 /* " */) {
      i++;
      while (i < n) {
        const d = text.charCodeAt(i);
        if (d === 0x5c /* \ */) i += 2;
        else if (d === 0x22) break;
        else i++;
      }
      i++;
    } else if (c === 0x2d /* - */ || (c >= 0x30 && c <= 0x39)) {
      const start = i;
      i++;
      while (i < n) {
        const d = text.charCodeAt(i);
        if ((d >= 0x30 && d <= 0x39) || d === 0x2e || d === 0x65 || d === 0x45 || d === 0x2b || d === 0x2d) i++;
        else break;
      }
      const literal = text.slice(start, i);
      if (significantDigits(literal) > SAFE_DIGITS) {
        out += `${text.slice(last, start)}"${literal}"`;
        last = i;
      }
    } else {
      i++;
    }
  }
  return JSON.parse(last === 0 ? text : out + text.slice(last));
}

/**
 * A JSON number (or its exact text) as plain decimal text, never in exponent form:
 * 1e-7 → "0.0000001", "1.5E+3" → "1500".
 */
export function decimalText(value: number | string): string {
  const text = typeof value === 'number' ? String(value) : value.trim();
  const m = /^(-?)(\d*)(?:\.(\d*))?(?:[eE]([+-]?\d+))?$/.exec(text);
  if (!m) throw new TypeError(`not a decimal number: ${JSON.stringify(value)}`);
  const [, sign, intPart, fracPart = '', exp] = m;
  if (!exp) return `${sign}${intPart || '0'}${fracPart ? `.${fracPart}` : ''}`;
  const digits = intPart + fracPart;
  const point = intPart.length + Number(exp);
  let result: string;
  if (point <= 0) result = `0.${'0'.repeat(-point)}${digits}`;
  else if (point >= digits.length) result = digits + '0'.repeat(point - digits.length);
  else result = `${digits.slice(0, point)}.${digits.slice(point)}`;
  result = result.replace(/^0+(?=\d)/, '');
  if (result.includes('.')) result = result.replace(/\.?0+$/, '');
  return sign + result;
}
