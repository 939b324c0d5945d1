/**
 * Decimal strings: how prices and money travel through the SDK (docs/adr/0012-typescript-sdk-decimal-strings.md).
 *
 * Models carry prices and money as canonical decimal strings (`"0.87"`, `"50000"`, `"-12.5"`):
 * plain notation, no exponent, no trailing zeros after the point, `"0"` for zero. Two canonical
 * strings are equal exactly when their values are, so `===` compares them. `decimal` does the
 * little arithmetic a client needs, exactly, on `bigint`s: never through binary floating point.
 */

/** A price or an amount of money, as a canonical decimal string (`"0.87"`). */
export type DecimalString = string;

/** What the SDK accepts for a price or amount: a decimal string (recommended) or a number. */
export type Numeric = string | number;

/** `value = coefficient / 10^scale`. */
interface Parts {
  readonly coefficient: bigint;
  readonly scale: number;
}

const DECIMAL_TEXT = /^([+-]?)(\d+)?(?:\.(\d*))?(?:[eE]([+-]?\d+))?$/;
const MAX_EXPONENT = 1000; // a sanity bound on exponents: "1e999999999" is not a price

/** The digits of a decimal string or a number, or `null` if it is not a finite decimal. */
function parse(value: Numeric | bigint): Parts | null {
  if (typeof value === "bigint") {
    return { coefficient: value, scale: 0 };
  }
  let text: string;
  if (typeof value === "number") {
    if (!Number.isFinite(value)) {
      return null;
    }
    // The shortest text that reads back as the same double: 0.87 → "0.87", as Python's str().
    text = String(value);
  } else if (typeof value === "string") {
    text = value.trim();
  } else {
    return null;
  }
  const match = DECIMAL_TEXT.exec(text);
  if (match === null) {
    return null;
  }
  const [, sign = "", whole = "", fraction = "", exponentText] = match;
  if (whole === "" && fraction === "") {
    return null;
  }
  const exponent = exponentText === undefined ? 0 : Number(exponentText);
  if (!Number.isSafeInteger(exponent) || Math.abs(exponent) > MAX_EXPONENT) {
    return null;
  }
  let coefficient = BigInt(`${whole}${fraction}` || "0");
  let scale = fraction.length - exponent;
  if (scale < 0) {
    coefficient *= 10n ** BigInt(-scale);
    scale = 0;
  }
  if (sign === "-") {
    coefficient = -coefficient;
  }
  return trim({ coefficient, scale });
}

/** The same value with no trailing zeros in the coefficient's fraction. */
function trim(parts: Parts): Parts {
  let { coefficient, scale } = parts;
  if (coefficient === 0n) {
    return { coefficient: 0n, scale: 0 };
  }
  while (scale > 0 && coefficient % 10n === 0n) {
    coefficient /= 10n;
    scale -= 1;
  }
  return { coefficient, scale };
}

function format(parts: Parts): DecimalString {
  const { coefficient, scale } = trim(parts);
  const negative = coefficient < 0n;
  const digits = (negative ? -coefficient : coefficient).toString();
  if (scale === 0) {
    return negative ? `-${digits}` : digits;
  }
  const padded = digits.padStart(scale + 1, "0");
  const text = `${padded.slice(0, padded.length - scale)}.${padded.slice(padded.length - scale)}`;
  return negative ? `-${text}` : text;
}

function need(value: Numeric | bigint, what = "value"): Parts {
  const parts = parse(value);
  if (parts === null) {
    throw new TypeError(`${what} must be a finite decimal number or string, not ${String(value)}`);
  }
  return parts;
}

/** Both values on one scale. */
function align(a: Parts, b: Parts): [bigint, bigint, number] {
  const scale = Math.max(a.scale, b.scale);
  return [a.coefficient * 10n ** BigInt(scale - a.scale), b.coefficient * 10n ** BigInt(scale - b.scale), scale];
}

function compare(a: Numeric, b: Numeric): -1 | 0 | 1 {
  const [x, y] = align(need(a), need(b));
  return x < y ? -1 : x > y ? 1 : 0;
}

export type RoundingMode = "half-even" | "half-up" | "down" | "up" | "floor" | "ceiling";

function roundParts(parts: Parts, places: number, mode: RoundingMode): Parts {
  if (parts.scale <= places) {
    return parts;
  }
  const divisor = 10n ** BigInt(parts.scale - places);
  const { coefficient } = parts;
  let quotient = coefficient / divisor; // truncated toward zero
  const remainder = coefficient % divisor;
  if (remainder !== 0n) {
    const negative = coefficient < 0n;
    const twice = (remainder < 0n ? -remainder : remainder) * 2n;
    let away: boolean;
    switch (mode) {
      case "down":
        away = false;
        break;
      case "up":
        away = true;
        break;
      case "floor":
        away = negative;
        break;
      case "ceiling":
        away = !negative;
        break;
      case "half-up":
        away = twice >= divisor;
        break;
      default: {
        const odd = (quotient < 0n ? -quotient : quotient) % 2n === 1n;
        away = twice > divisor || (twice === divisor && odd);
      }
    }
    if (away) {
      quotient += negative ? -1n : 1n;
    }
  }
  return { coefficient: quotient, scale: places };
}

/**
 * Exact decimal arithmetic on decimal strings (or numbers, read as their shortest text).
 * Every result is a canonical {@link DecimalString}.
 *
 * ```ts
 * decimal.add("0.1", "0.2")          // "0.3"
 * decimal.mul(order.price, 1000)     // "870"
 * decimal.cmp(book.bestBid, "0.86")  // -1, 0 or 1
 * ```
 */
export const decimal = {
  /** The canonical spelling of a value (`"0.870"` → `"0.87"`, `1e-3` → `"0.001"`). */
  normalize(value: Numeric): DecimalString {
    return format(need(value));
  },
  /** Whether the value is a finite decimal number or decimal string. */
  isValid(value: unknown): value is Numeric {
    return (typeof value === "string" || typeof value === "number") && parse(value) !== null;
  },
  add(a: Numeric, b: Numeric): DecimalString {
    const [x, y, scale] = align(need(a), need(b));
    return format({ coefficient: x + y, scale });
  },
  sub(a: Numeric, b: Numeric): DecimalString {
    const [x, y, scale] = align(need(a), need(b));
    return format({ coefficient: x - y, scale });
  },
  mul(a: Numeric, b: Numeric): DecimalString {
    const x = need(a);
    const y = need(b);
    return format({ coefficient: x.coefficient * y.coefficient, scale: x.scale + y.scale });
  },
  /** `a / b`, rounded to `places` decimal places (default 18) with `mode` (half-even). */
  div(a: Numeric, b: Numeric, places = 18, mode: RoundingMode = "half-even"): DecimalString {
    const x = need(a);
    const y = need(b);
    if (y.coefficient === 0n) {
      throw new RangeError("division by zero");
    }
    // x / y = (cx / cy) * 10^(sy - sx): the quotient with one spare digit, then rounded.
    const k = places + 1 + y.scale - x.scale;
    let numerator = k >= 0 ? x.coefficient * 10n ** BigInt(k) : x.coefficient;
    let denominator = k >= 0 ? y.coefficient : y.coefficient * 10n ** BigInt(-k);
    if (denominator < 0n) {
      numerator = -numerator;
      denominator = -denominator;
    }
    const quotient = numerator / denominator;
    const remainder = numerator % denominator;
    // A sticky digit keeps "exactly half" apart from "just over half" when rounding below.
    const sticky = remainder === 0n ? 0n : numerator < 0n ? -1n : 1n;
    const exact = { coefficient: quotient * 10n + sticky, scale: places + 2 };
    return format(roundParts(exact, places, mode));
  },
  neg(a: Numeric): DecimalString {
    const x = need(a);
    return format({ coefficient: -x.coefficient, scale: x.scale });
  },
  abs(a: Numeric): DecimalString {
    const x = need(a);
    return format({ coefficient: x.coefficient < 0n ? -x.coefficient : x.coefficient, scale: x.scale });
  },
  /** `-1`, `0` or `1` as `a` is less than, equal to or greater than `b`. */
  cmp(a: Numeric, b: Numeric): -1 | 0 | 1 {
    return compare(a, b);
  },
  eq(a: Numeric, b: Numeric): boolean {
    return compare(a, b) === 0;
  },
  lt(a: Numeric, b: Numeric): boolean {
    return compare(a, b) < 0;
  },
  lte(a: Numeric, b: Numeric): boolean {
    return compare(a, b) <= 0;
  },
  gt(a: Numeric, b: Numeric): boolean {
    return compare(a, b) > 0;
  },
  gte(a: Numeric, b: Numeric): boolean {
    return compare(a, b) >= 0;
  },
  isZero(a: Numeric): boolean {
    return need(a).coefficient === 0n;
  },
  /** Whether `a` is a whole multiple of `step` (a price on a tick grid of `step`). */
  isMultipleOf(a: Numeric, step: Numeric): boolean {
    const [x, y] = align(need(a), need(step));
    if (y === 0n) {
      throw new RangeError("step must not be zero");
    }
    return x % y === 0n;
  },
  /** Round to `places` decimal places (default mode half-even). */
  round(a: Numeric, places: number, mode: RoundingMode = "half-even"): DecimalString {
    if (!Number.isInteger(places) || places < 0) {
      throw new RangeError("places must be a whole number >= 0");
    }
    return format(roundParts(need(a), places, mode));
  },
  /** Round down to a multiple of `step` (`floor` toward -∞; e.g. snap a bid onto the tick grid). */
  snap(a: Numeric, step: Numeric, mode: "floor" | "ceiling" | "half-even" = "floor"): DecimalString {
    const ticks = decimal.div(a, step, 0, mode);
    return decimal.mul(ticks, step);
  },
  /** The value as a JavaScript number (lossy: for display and statistics, not for orders). */
  toNumber(a: Numeric): number {
    return Number(format(need(a)));
  },
  /** Fixed-point text with exactly `places` decimals (`toFixed("0.5", 3)` → `"0.500"`). */
  toFixed(a: Numeric, places: number, mode: RoundingMode = "half-even"): string {
    const rounded = roundParts(need(a), places, mode);
    const text = format(rounded);
    if (places === 0) {
      return text;
    }
    const point = text.indexOf(".");
    const decimals = point < 0 ? 0 : text.length - point - 1;
    return `${text}${point < 0 ? "." : ""}${"0".repeat(places - decimals)}`;
  },
  min(a: Numeric, b: Numeric): DecimalString {
    return compare(a, b) <= 0 ? decimal.normalize(a) : decimal.normalize(b);
  },
  max(a: Numeric, b: Numeric): DecimalString {
    return compare(a, b) >= 0 ? decimal.normalize(a) : decimal.normalize(b);
  },
} as const;

// Already canonical: no sign but a minus, no leading zeros, no trailing zeros after the point.
const CANONICAL = /^-?(?:0|[1-9]\d*)(?:\.\d*[1-9])?$/;

/** @internal The canonical text of a value, or `null` when it is not a finite decimal. */
export function tryNormalize(value: unknown): DecimalString | null {
  if (typeof value === "string") {
    if (CANONICAL.test(value) && value !== "-0") {
      return value; // the common case, from the server: no arithmetic needed
    }
  } else if (typeof value === "number") {
    if (Number.isSafeInteger(value)) {
      return value === 0 ? "0" : String(value);
    }
  } else {
    return null;
  }
  const parts = parse(value);
  return parts === null ? null : format(parts);
}
