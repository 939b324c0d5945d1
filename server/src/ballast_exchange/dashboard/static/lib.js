// Shared helpers: DOM building (never innerHTML with data), number formats, the JSON client.

/** Build an element: h("td", {class: "num", dataset: {price: "0.42"}}, "0.420"). */
export function h(tag, attrs = {}, ...children) {
  const svg = tag.startsWith("svg:");
  const el = svg
    ? document.createElementNS("http://www.w3.org/2000/svg", tag.slice(4))
    : document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "dataset") Object.assign(el.dataset, value);
    else if (key.startsWith("on") && typeof value === "function") {
      el.addEventListener(key.slice(2), value);
    } else if (key === "class") el.setAttribute("class", value);
    else if (key in el && !svg && typeof value !== "string") el[key] = value;
    else el.setAttribute(key, value === true ? "" : String(value));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

/** Replace an element's children. */
export function fill(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

// ---- numbers: one rule for every page, the same as the command line's (ballast.cli.numbers) ----
//
// - A price is written at its market's tick precision: 0.5 on a 0.001 tick reads 0.500, an
//   index value on a 0.1 tick 52.3. Digits a price has beyond its tick are kept (an average
//   or a mid may fall between ticks): cutting them would show another price.
// - Money (USDC) has two decimals, and more only where they carry something (a fee of 0.004
//   stays 0.004, never 0.00), at most six (micro-USDC); thousands are grouped: 50,000.00.
// - Contract counts are whole numbers, grouped.
// - A binary market's price is the chance of YES: 0.625 reads 62.5% (as many decimals as the
//   tick has beyond the percent), and NO is 1 − price: YES 62.5% / NO 37.5%.

const USDC_PLACES = 6;

/** Decimal places a number needs, trailing zeros aside: 0.125 -> 3, 1e-7 -> 7, 40 -> 0. */
function placesOf(value) {
  const text = String(Math.abs(value));
  const [mantissa, exponent] = text.split("e");
  const dot = mantissa.indexOf(".");
  const decimals = dot < 0 ? 0 : mantissa.length - dot - 1;
  return Math.max(0, decimals - Number(exponent || 0));
}

/** A number without binary noise (1 - 0.62 is 0.38000000000000006): prices and money have
 * at most six decimals, so twelve keep every real digit. */
function clean(value) {
  return Number(Number(value).toFixed(12)) + 0; // + 0: never "-0"
}

function missing(value) {
  return value === null || value === undefined || value === "" || !Number.isFinite(Number(value));
}

/** Decimals of a tick size: 0.001 -> 3, 0.1 -> 1, 1 -> 0 (null when unknown). */
export function tickPlaces(tick) {
  return missing(tick) || Number(tick) <= 0 ? null : placesOf(clean(tick));
}

/** A price at its market's tick precision (as given when the tick is unknown). */
export function fmtPrice(value, tick) {
  if (missing(value)) return "—";
  const price = clean(value);
  const places = tickPlaces(tick);
  return price.toFixed(Math.max(places ?? 0, placesOf(price)));
}

/** USDC: 1,234.50, 0.004, -0.80. */
export function fmtMoney(value) {
  if (missing(value)) return "—";
  const amount = clean(Number(value).toFixed(USDC_PLACES));
  const places = Math.min(Math.max(2, placesOf(amount)), USDC_PLACES);
  return amount.toLocaleString("en-US", { minimumFractionDigits: places, maximumFractionDigits: places });
}

export function fmtSize(value) {
  if (missing(value)) return "—";
  return Number(value).toLocaleString("en-US", { maximumFractionDigits: 0 });
}

/** A binary price as the chance of YES: 0.625 -> "62.5%". */
export function fmtChance(price, tick) {
  if (missing(price)) return "—";
  const percent = clean(Number(price) * 100);
  const places = Math.max(0, (tickPlaces(tick) ?? 2) - 2, placesOf(percent));
  return `${percent.toFixed(places)}%`;
}

/** What a binary price makes NO cost: 1 − price (null stays null). */
export function noPrice(price) {
  return missing(price) ? null : clean(1 - Number(price));
}

export function isBinary(market) {
  return market && market.type === "binary";
}

/** "YES 62.5% / NO 37.5%" for a binary price. */
export function fmtYesNo(price, tick) {
  if (missing(price)) return "—";
  return `YES ${fmtChance(price, tick)} / NO ${fmtChance(noPrice(price), tick)}`;
}

export function signClass(value) {
  return value > 0 ? "pos" : value < 0 ? "neg" : "";
}

/** "2026-11-28 10:31:05" in UTC (desks agree on UTC). */
export function fmtTime(iso) {
  if (!iso) return "—";
  return iso.replace("T", " ").slice(0, 19);
}

export function fmtClock(iso) {
  if (!iso) return "—";
  return iso.slice(11, 19);
}

export function short(text, keep = 10) {
  if (!text) return "—";
  return text.length > keep * 2 + 1 ? `${text.slice(0, keep)}…${text.slice(-6)}` : text;
}

// ---- the JSON client --------------------------------------------------------------------------

export class ApiError extends Error {
  constructor(status, code, message, details) {
    super(message);
    this.status = status;
    this.code = code;
    this.details = details || {};
  }
  toString() {
    return `${this.code}: ${this.message}`;
  }
}

/** The signed-in user (null when nobody) and the CSRF token every change must carry. */
export const session = { user: null, csrf: null, env: null };

export async function api(path, { method = "GET", body } = {}) {
  const headers = { Accept: "application/json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (method !== "GET" && session.csrf) headers["X-CSRF-Token"] = session.csrf;
  let response;
  try {
    response = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      credentials: "same-origin",
      cache: "no-store",
    });
  } catch (error) {
    throw new ApiError(0, "NETWORK_ERROR", "the server cannot be reached", {});
  }
  let data = null;
  try {
    data = await response.json();
  } catch {
    data = null;
  }
  if (!response.ok) {
    const error = (data && data.error) || {};
    const failure = new ApiError(
      response.status,
      error.code || `HTTP_${response.status}`,
      error.message || response.statusText,
      error.details,
    );
    if (response.status === 401 && path.startsWith("/dashboard/api/") && session.user) {
      // The session ended (expired or logged out elsewhere): back to the login page.
      session.user = null;
      session.csrf = null;
      window.dispatchEvent(new CustomEvent("ballast:session"));
    }
    throw failure;
  }
  return data;
}

// ---- small widgets ----------------------------------------------------------------------------

/** A message line that shows an ApiError or a success text. */
export function notice(el, message, kind = "info") {
  fill(el, message ? String(message) : "");
  el.className = `notice ${message ? kind : ""}`;
}

/** A panel with a title bar (and optional tools on the right). */
export function panel(title, tools, ...body) {
  return h(
    "section",
    { class: "panel" },
    h("header", { class: "panel-head" }, h("h2", {}, title), h("div", { class: "tools" }, tools)),
    h("div", { class: "panel-body" }, body),
  );
}

/** A table: columns [{label, cls}], rows of cells (nodes or text). */
export function table(columns, rows, { empty = "Nothing here yet", cls = "" } = {}) {
  const head = h("thead", {}, h("tr", {}, columns.map((c) => h("th", { class: c.cls }, c.label))));
  const body = h("tbody");
  if (!rows.length) {
    body.append(h("tr", { class: "empty" }, h("td", { colspan: columns.length }, empty)));
  }
  for (const row of rows) body.append(row instanceof Node ? row : h("tr", {}, row));
  return h("table", { class: `grid ${cls}` }, head, body);
}

export function sideTag(side) {
  return h("span", { class: `side ${side}` }, side.toUpperCase());
}

export function statusTag(status) {
  return h("span", { class: `status s-${status}` }, status);
}

/** Copy text to the clipboard; falls back to a selection copy where the API is missing. */
export async function copyText(text, source) {
  try {
    await navigator.clipboard.writeText(text);
    return true;
  } catch {
    if (source && source.select) {
      source.select();
      return document.execCommand("copy");
    }
    return false;
  }
}

/** Run ``fn`` every ``ms`` while the page is visible; returns a stop function. */
export function every(ms, fn) {
  const id = setInterval(() => {
    if (document.visibilityState === "visible") fn();
  }, ms);
  return () => clearInterval(id);
}
