/**
 * JSON for Dataverse bodies without losing digits. The Web API prints money and decimals as JSON numbers
 * with up to ~22 significant digits, more than a double holds. So a number literal with more than 15
 * significant digits is handed over as its exact text (a string); every other number stays a number (it
 * round-trips through a double unchanged). Node 22's JSON.parse reviver can read each number's source text,
 * but `npm run bench -- json` measures it about 4× slower on 5,000-row pages than this pre-pass plus a plain
 * JSON.parse, so the pre-pass stays.
 */

/** Significant digits a double always represents exactly in decimal. */
const SAFE_DIGITS = 15;

/** Some run of 16+ digits/dots exists (else nothing can lose precision). */
const MAYBE_LONG_NUMBER = /[0-9][0-9.]{15}/;

/**
 * Characters of the mantissa (before `e`/`E`, without a leading `-` or the first `.`) after its leading
 * zeros: the significant digits of a well-formed literal.
 */
function significantDigits(literal: string): number {
  let count = 0;
  let leading = true;
  let pointSeen = false;
  for (let i = literal.charCodeAt(0) === 0x2d /* - */ ? 1 : 0; i < literal.length; i++) {
    const c = literal.charCodeAt(i);
    if (c === 0x65 || c === 0x45 /* e E */) break;
    if (c === 0x2e /* . */ && !pointSeen) {
      pointSeen = true;
    } else if (!(leading && c === 0x30) /* 0 */) {
      leading = false;
      count++;
    }
  }
  return count;
}

/** True for the characters a number literal is read as: digits, `.`, `e`, `E`, `+`, `-`. */
function isNumberChar(c: number): boolean {
  return (c >= 0x30 && c <= 0x39) || c === 0x2e || c === 0x65 || c === 0x45 || c === 0x2b || c === 0x2d;
}

/** Index of the `"` that closes the string whose content starts at `from`, or -1 when it is not closed. */
function closingQuote(text: string, from: number): number {
  let q = text.indexOf('"', from);
  while (q !== -1) {
    let slashes = 0;
    while (text.charCodeAt(q - 1 - slashes) === 0x5c /* \ */) slashes++;
    if (slashes % 2 === 0) return q;
    q = text.indexOf('"', q + 1);
  }
  return -1;
}

/** JSON.parse, except that long number literals arrive as their exact text. */
export function parseJsonLossless(text: string): unknown {
  // One pass that jumps from quote to quote (indexOf is native): a literal of 16+ significant digits needs
  // 16+ characters, so only a stretch of that length between two strings can hold one.
  let out = '';
  let last = 0;
  let checked = false;
  const n = text.length;
  let i = 0;
  while (i < n) {
    const open = text.indexOf('"', i);
    const end = open < 0 ? n : open;
    if (end - i > SAFE_DIGITS) {
      while (i < end) {
        const c = text.charCodeAt(i);
        if (c !== 0x2d /* - */ && (c < 0x30 || c > 0x39)) {
          i++;
          continue;
        }
        const start = i;
        i++;
        while (i < end && isNumberChar(text.charCodeAt(i))) i++;
        if (i - start <= SAFE_DIGITS) continue;
        const literal = text.slice(start, i);
        if (significantDigits(literal) <= SAFE_DIGITS) continue;
        // Only text with a run of 16 digits/dots somewhere was ever rewritten; keep that for malformed input.
        checked ||= MAYBE_LONG_NUMBER.test(literal) || MAYBE_LONG_NUMBER.test(text);
        if (!checked) return JSON.parse(text);
        out += `${text.slice(last, start)}"${literal}"`;
        last = i;
      }
    }
    if (open < 0) break;
    const close = closingQuote(text, open + 1);
    if (close < 0) break;
    i = close + 1;
  }
  return JSON.parse(last === 0 ? text : out + text.slice(last));
}

/** True for `-?digits(.digits)?`: text that is plain decimal already (a long literal, as a rule). */
function isPlainDecimal(text: string): boolean {
  let i = text.charCodeAt(0) === 0x2d /* - */ ? 1 : 0;
  let digits = 0;
  let point = -1;
  for (; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c >= 0x30 && c <= 0x39) digits++;
    else if (c === 0x2e /* . */ && point < 0 && digits > 0) point = i;
    else return false;
  }
  return digits > 0 && point !== text.length - 1;
}

/**
 * A JSON number (or its exact text) as plain decimal text, never in exponent form:
 * 1e-7 → "0.0000001", "1.5E+3" → "1500".
 */
export function decimalText(value: number | string): string {
  if (typeof value === 'number') {
    const printed = String(value);
    // A finite number prints in plain decimal unless it is tiny or huge (then with an exponent).
    if (Number.isFinite(value) && !printed.includes('e')) return printed;
  } else if (isPlainDecimal(value)) {
    return value;
  }
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
