// Every market: its question, rules, status, prices and settlement evidence hash.

import {
  api, every, fill, fmtPrice, fmtSize, fmtTime, fmtYesNo, h, isBinary, notice, panel, short, signClass, statusTag, table,
} from "./lib.js";

export function rulesText(market) {
  const r = market.rules;
  const t = r.tick_size;
  return (
    `tick ${fmtPrice(t, t)} · range ${fmtPrice(r.floor, t)}–${fmtPrice(r.cap, t)} · ` +
    `size ${fmtSize(r.min_size)}–${fmtSize(r.max_order_size)} · max pos ${fmtSize(r.max_position)} · ` +
    `fees ${r.maker_fee_bps}/${r.taker_fee_bps} bps`
  );
}

/** The rules in one short line (the full text is in its tooltip). */
export function rulesShort(market) {
  const r = market.rules;
  const t = r.tick_size;
  return `${fmtPrice(t, t)} · ${fmtPrice(r.floor, t)}–${fmtPrice(r.cap, t)} · ${r.maker_fee_bps}/${r.taker_fee_bps}bp`;
}

/** A settlement value: at the tick, and for a binary which side won. */
export function settlementValue(market, value) {
  const text = fmtPrice(value, market.rules.tick_size);
  if (!isBinary(market) || value === null || value === undefined) return text;
  return `${text} (${Number(value) >= 1 ? "YES" : "NO"})`;
}

/** The price a binary's chance is read from: the last trade, else the mid of the book. */
export function chancePrice(market) {
  return market.last_price ?? market.midpoint ?? null;
}

/** The change over 24 h at the tick, signed ("+0.150", "-0.020"); "—" when there is none. */
export function fmtChange(change, tick) {
  if (change === null || change === undefined) return "—";
  const text = fmtPrice(Math.abs(change), tick);
  return change > 0 ? `+${text}` : change < 0 ? `-${text}` : text;
}

/** Where a market belongs: its category, series and event, as one line. */
export function placeText(market) {
  return [market.category, market.series?.title, market.event?.title].filter(Boolean).join(" · ");
}

/** Everything the filter box searches: names, question, category, tags, series and event. */
function searchText(m) {
  return [m.name, m.id, m.question, m.category, ...(m.tags || []), m.series?.title, m.series?.id, m.event?.title, m.event?.id]
    .filter(Boolean)
    .join(" ")
    .toLowerCase();
}

export function settlementCell(market) {
  const s = market.settlement;
  if (!s) return h("span", { class: "muted" }, "—");
  return h(
    "span",
    { class: "settlement" },
    h("span", { class: "num" }, settlementValue(market, s.value)),
    " ",
    h("span", { class: s.final ? "status s-settled" : "status s-resolving" }, s.final ? "final" : "proposed"),
    " ",
    h("code", { class: "hash", title: s.evidence_hash || "" }, short(s.evidence_hash, 8)),
  );
}

export function mount(root) {
  document.title = "Markets · Ballast";
  const message = h("p", { class: "notice" });
  const body = h("div", { id: "markets-table" }, h("p", { class: "muted pad" }, "Loading markets…"));
  const search = h("input", {
    id: "markets-filter",
    type: "search",
    placeholder: "Filter: name, question, tag, series, event",
    autocomplete: "off",
  });
  search.setAttribute("aria-label", "Filter markets");
  const status = h(
    "select",
    { id: "markets-status" },
    ["all", "open", "halted", "closed", "resolving", "settled", "pending"].map((v) => h("option", { value: v }, v === "all" ? "any status" : v)),
  );
  const category = h("select", { id: "markets-category" }, h("option", { value: "" }, "any category"));
  category.setAttribute("aria-label", "Category");
  let last = [];
  for (const control of [search, status, category]) control.addEventListener("input", () => render(last));
  fill(
    root,
    panel("Markets", [search, category, status, h("span", { class: "muted small", id: "markets-count" })], message, body),
  );

  /** The category choices are the categories listed markets carry (kept: the choice made stays). */
  function categories(all) {
    const names = [...new Set(all.map((m) => m.category).filter(Boolean))].sort();
    const chosen = category.value;
    fill(category, h("option", { value: "" }, "any category"), ...names.map((n) => h("option", { value: n }, n)));
    category.value = names.includes(chosen) ? chosen : "";
  }

  async function load() {
    try {
      const data = await api("/v1/markets");
      render(data.markets);
      notice(message, "");
    } catch (error) {
      notice(message, error.message, "error");
    }
  }

  function render(all) {
    if (all !== last) categories(all);
    last = all;
    const words = search.value.trim().toLowerCase();
    const list = all.filter(
      (m) =>
        (status.value === "all" || m.status === status.value) &&
        (!category.value || m.category === category.value) &&
        (!words || searchText(m).includes(words)),
    );
    document.getElementById("markets-count").textContent =
      list.length === all.length ? `${all.length} markets` : `${list.length} of ${all.length} markets`;
    const columns = [
      { label: "Market" },
      { label: "Type", cls: "wide" },
      { label: "Status" },
      { label: "Bid", cls: "num" },
      { label: "Ask", cls: "num" },
      { label: "Last", cls: "num" },
      { label: "24h", cls: "num wide" },
      { label: "Chance (binary)" },
      { label: "Vol 24h", cls: "num wide" },
      { label: "Open int.", cls: "num wide" },
      { label: "Tick · range · fees", cls: "wide" },
      { label: "Closes (UTC)", cls: "wide" },
      { label: "Settlement · evidence" },
    ];
    // Columns marked "wide" give way on a phone (app.css); the market's page has them all.
    const rows = list.map((m) => {
      const t = m.rules.tick_size;
      const href = `#/market/${encodeURIComponent(m.id)}`;
      return h(
        "tr",
        { class: "market-row", dataset: { market: m.id } },
        h(
          "td",
          { class: "market-cell" },
          h("div", { class: "line" }, h("a", { href, class: "market-name", title: m.name }, m.name)),
          h(
            "div",
            { class: "line question", title: m.question || "" },
            h("span", { class: "mono" }, m.id),
            m.question ? ` · ${m.question}` : "",
          ),
          placeText(m) ? h("div", { class: "line place muted small", title: (m.tags || []).join(", ") }, placeText(m)) : "",
        ),
        h("td", { class: "wide" }, m.type),
        h("td", {}, statusTag(m.status)),
        h("td", { class: "num bid" }, fmtPrice(m.bid, t)),
        h("td", { class: "num ask" }, fmtPrice(m.ask, t)),
        h("td", { class: "num" }, fmtPrice(m.last_price, t)),
        h("td", { class: `num wide change ${signClass(m.change_24h)}` }, fmtChange(m.change_24h, t)),
        h(
          "td",
          { class: "mono small chance", title: "the last price (or the mid) read as the chance of YES; NO is 1 − price" },
          isBinary(m) ? fmtYesNo(chancePrice(m), t) : h("span", { class: "muted" }, "index"),
        ),
        h("td", { class: "num wide" }, fmtSize(m.volume_24h)),
        h("td", { class: "num wide" }, fmtSize(m.open_interest)),
        h("td", { class: "mono small rules wide", title: rulesText(m) }, rulesShort(m)),
        h("td", { class: "mono small wide" }, fmtTime(m.close_time)),
        h("td", {}, settlementCell(m)),
      );
    });
    fill(body, h("div", { class: "scroll-x" }, table(columns, rows, { empty: "No markets match", cls: "markets" })));
  }

  load();
  return every(10_000, load);
}
