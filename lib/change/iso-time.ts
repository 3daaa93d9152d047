/**
 * The one shape of time both the Web API reader and the sink pass on, `YYYY-MM-DDTHH:mm:ss.sssZ` (UTC),
 * recognised character by character: this runs for every time of every row, where a regex with captures
 * and a Date.parse cost more than the rest of the value's handling.
 */

const DAYS_IN_MONTH = [0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];

/** Digits at `text[from, from + count)` as a number, or -1 when one of them is not a digit. */
function digitsAt(text: string, from: number, count: number): number {
  let n = 0;
  for (let i = from; i < from + count; i++) {
    const d = text.charCodeAt(i) - 0x30;
    if (d < 0 || d > 9) return -1;
    n = n * 10 + d;
  }
  return n;
}

/**
 * Whether `text` is already in that shape (the sink's `toUtcIso` then has nothing to do) with every field in
 * range. The calendar is checked here because Date.parse rolls `02-30` over into March instead of refusing it.
 */
export function isCanonicalUtc(text: string): boolean {
  if (text.length !== 24) return false;
  if (
    text.charCodeAt(4) !== 0x2d /* - */ ||
    text.charCodeAt(7) !== 0x2d ||
    text.charCodeAt(10) !== 0x54 /* T */ ||
    text.charCodeAt(13) !== 0x3a /* : */ ||
    text.charCodeAt(16) !== 0x3a ||
    text.charCodeAt(19) !== 0x2e /* . */ ||
    text.charCodeAt(23) !== 0x5a /* Z */
  ) {
    return false;
  }
  const year = digitsAt(text, 0, 4);
  const month = digitsAt(text, 5, 2);
  const day = digitsAt(text, 8, 2);
  const hour = digitsAt(text, 11, 2);
  const minute = digitsAt(text, 14, 2);
  const second = digitsAt(text, 17, 2);
  if (year < 0 || month < 1 || month > 12 || day < 1 || hour < 0 || hour > 23) return false;
  if (minute < 0 || minute > 59 || second < 0 || second > 59 || digitsAt(text, 20, 3) < 0) return false;
  const leap = year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0);
  return day <= (month === 2 && leap ? 29 : DAYS_IN_MONTH[month]);
}
