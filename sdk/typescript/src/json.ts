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
const BACKSLASH = 92; // \

function isNumberStart(code: number): boolean {
  return code === 45 || (code >= 48 && code <= 57); // - or a digit
}

function isNumberPart(code: number): boolean {
  // digits, '.', 'e', 'E', '+', '-'
  return (code >= 48 && code <= 57) || code === 46 || code === 101 || code === 69 || code === 43 || code === 45;
}

/** `JSON.parse`, except that non-integer numbers arrive as their exact text. */
export function decodeJson(text: string): Json {
  let out: string[] | null = null;
  let copied = 0;
  const length = text.length;
  let i = 0;
  while (i < length) {
    const code = text.charCodeAt(i);
    if (code === QUOTE) {
      // Skip the string, escapes included.
      i += 1;
      while (i < length) {
        const c = text.charCodeAt(i);
        if (c === BACKSLASH) {
          i += 2;
        } else if (c === QUOTE) {
          i += 1;
          break;
        } else {
          i += 1;
        }
      }
      continue;
    }
    if (isNumberStart(code)) {
      const start = i;
      let decimal = false;
      while (i < length) {
        const c = text.charCodeAt(i);
        if (!isNumberPart(c)) {
          break;
        }
        if (c === 46 || c === 101 || c === 69) {
          decimal = true;
        }
        i += 1;
      }
      if (decimal) {
        if (out === null) {
          out = [];
        }
        out.push(text.slice(copied, start), '"', text.slice(start, i), '"');
        copied = i;
      }
      continue;
    }
    i += 1;
  }
  if (out === null) {
    return JSON.parse(text) as Json;
  }
  out.push(text.slice(copied));
  return JSON.parse(out.join("")) as Json;
}

/** Compact JSON (no spaces), the exact text that is signed and sent. */
export function encodeJson(value: unknown): string {
  return JSON.stringify(value);
}

/** Whether a JSON value is an object (not an array, not null). */
export function isObject(value: unknown): value is JsonObject {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}
