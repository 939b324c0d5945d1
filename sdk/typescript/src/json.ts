/**
 * JSON in and out without binary floating point for decimals.
 *
 * `decodeJson` reads every JSON number that has a fraction or an exponent (`0.87`, `1e-3`) as
 * the string of its digits, exactly as sent, before `JSON.parse` could round it to a double;
 * integers (sizes, counts, sequence numbers) stay numbers. That is what the Python SDK does with
 * `json.loads(parse_float=Decimal)`. The models then normalise those strings
 * (`decimal.normalize`).
 */

/** A JSON value as `decodeJson` returns it (decimals as strings). */
export type Json = null | boolean | number | string | Json[] | JsonObject;
/** A JSON object. */
export interface JsonObject {
  [key: string]: Json;
}

const QUOTE = 34; // "
const BACKSLASH = 92; // \\

/** Whether the quote at `at` is escaped (an odd run of backslashes before it). */
function escaped(text: string, at: number): boolean {
  let count = 0;
  for (let i = at - 1; i >= 0 && text.charCodeAt(i) === BACKSLASH; i -= 1) {
    count += 1;
  }
  return count % 2 === 1;
}

/** `JSON.parse`, except that non-integer numbers arrive as their exact text. */
export function decodeJson(text: string): Json {
  let out = "";
  let copied = 0;
  const length = text.length;
  let i = 0;
  while (i < length) {
    const code = text.charCodeAt(i);
    if (code === QUOTE) {
      // Jump over the string (natively), escaped quotes included.
      let end = text.indexOf('"', i + 1);
      while (end !== -1 && escaped(text, end)) {
        end = text.indexOf('"', end + 1);
      }
      i = end === -1 ? length : end + 1;
    } else if (code === 45 || (code >= 48 && code <= 57)) {
      // A number: '-', digits, '.', 'e', 'E', '+'.
      const start = i;
      let decimal = false;
      for (i += 1; i < length; i += 1) {
        const c = text.charCodeAt(i);
        if (c === 46 || c === 101 || c === 69) {
          decimal = true;
        } else if (!((c >= 48 && c <= 57) || c === 43 || c === 45)) {
          break;
        }
      }
      if (decimal) {
        out += `${text.slice(copied, start)}"${text.slice(start, i)}"`;
        copied = i;
      }
    } else {
      i += 1;
    }
  }
  return JSON.parse(copied === 0 ? text : out + text.slice(copied)) as Json;
}

/** Compact JSON (no spaces), the exact text that is signed and sent. */
export function encodeJson(value: unknown): string {
  return JSON.stringify(value);
}

/** Whether a JSON value is an object (not an array, not null). */
export function isObject(value: unknown): value is JsonObject {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}
