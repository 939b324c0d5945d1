/** Decimal strings and the JSON decoder that keeps decimals out of binary floating point. */

import assert from "node:assert/strict";
import { test } from "node:test";
import { decimal, decodeJson } from "@ballast/sdk";

test("normalize gives one spelling per value", () => {
  const cases: [string | number, string][] = [
    ["0.870", "0.87"],
    [0.87, "0.87"],
    ["50000.0", "50000"],
    ["1e-3", "0.001"],
    [1e-7, "0.0000001"],
    ["-0.0", "0"],
    ["+12.50", "12.5"],
    [".5", "0.5"],
    ["5.", "5"],
    ["1.5E+3", "1500"],
    [123456789.123, "123456789.123"],
  ];
  for (const [input, expected] of cases) {
    assert.equal(decimal.normalize(input), expected, String(input));
  }
  for (const bad of ["", "abc", "1..2", "0x10", "NaN", "1e", Number.NaN, Number.POSITIVE_INFINITY]) {
    assert.throws(() => decimal.normalize(bad), TypeError, String(bad));
    assert.equal(decimal.isValid(bad), false);
  }
});

test("arithmetic is exact", () => {
  assert.equal(decimal.add("0.1", "0.2"), "0.3");
  assert.equal(decimal.add(0.1, 0.2), "0.3"); // each number read as its shortest text first
  assert.equal(decimal.sub("0.875", "0.865"), "0.01");
  assert.equal(decimal.mul("0.87", 1000), "870");
  assert.equal(decimal.mul("-1.5", "0.2"), "-0.3");
  assert.equal(decimal.div("1", "3", 6), "0.333333");
  assert.equal(decimal.div("2", "3", 6), "0.666667");
  assert.equal(decimal.div("1.740", 2), "0.87");
  assert.equal(decimal.div("-1", "8", 2), "-0.12"); // half-even
  assert.equal(decimal.div("-1", "8", 2, "half-up"), "-0.13");
  assert.equal(decimal.div("10", "-4"), "-2.5");
  assert.throws(() => decimal.div("1", "0"), RangeError);
  assert.equal(decimal.round("0.8650", 2), "0.86");
  assert.equal(decimal.round("0.8750", 2), "0.88");
  assert.equal(decimal.round("0.8651", 2, "down"), "0.86");
  assert.equal(decimal.round("-0.861", 2, "floor"), "-0.87");
  assert.equal(decimal.toFixed("0.5", 3), "0.500");
  assert.equal(decimal.toFixed("12", 2), "12.00");
  assert.equal(decimal.snap("0.8657", "0.001"), "0.865");
  assert.equal(decimal.snap("0.8651", "0.005", "ceiling"), "0.87");
  assert.equal(decimal.neg("0.5"), "-0.5");
  assert.equal(decimal.abs("-0.5"), "0.5");
  assert.equal(decimal.min("0.9", "0.10"), "0.1");
  assert.equal(decimal.max("0.9", "0.10"), "0.9");
  assert.equal(decimal.toNumber("0.87"), 0.87);
});

test("comparisons and the tick grid", () => {
  assert.equal(decimal.cmp("0.87", "0.870"), 0);
  assert.equal(decimal.cmp("0.1", "0.09"), 1);
  assert.equal(decimal.cmp("-2", "1"), -1);
  assert.ok(decimal.eq("1", "1.000"));
  assert.ok(decimal.lt("0.865", "0.87") && decimal.lte("0.87", "0.87") && decimal.gt("1", "0.999"));
  assert.ok(decimal.gte("0", "-0"));
  assert.ok(decimal.isZero("0.000"));
  assert.ok(decimal.isMultipleOf("0.865", "0.001"));
  assert.ok(decimal.isMultipleOf("52.3", "0.1"));
  assert.ok(!decimal.isMultipleOf(0.1 + 0.2, "0.001")); // 0.30000000000000004
  assert.ok(!decimal.isMultipleOf("0.8655", "0.001"));
});

test("decodeJson keeps every decimal's digits and leaves integers and strings alone", () => {
  const text =
    '{"price":0.87,"size":1000,"big":12345678901234567890.5,"tiny":1e-7,"neg":-2.50,' +
    '"s":"0.1 \\" 2.5","nested":[{"a":1.10},{"b":[0,1,2.0]}],"t":true,"n":null}';
  assert.deepEqual(decodeJson(text), {
    price: "0.87",
    size: 1000,
    big: "12345678901234567890.5",
    tiny: "1e-7",
    neg: "-2.50",
    s: '0.1 " 2.5',
    nested: [{ a: "1.10" }, { b: [0, 1, "2.0"] }],
    t: true,
    n: null,
  });
  assert.deepEqual(decodeJson("[1,2,3]"), [1, 2, 3]);
  assert.throws(() => decodeJson("{nope"), SyntaxError);
});
