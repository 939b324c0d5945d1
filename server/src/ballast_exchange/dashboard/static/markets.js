// Every market: its question, rules, status, prices and settlement evidence hash.

import { api, decimalsOf, every, fill, fmtPrice, fmtSize, fmtTime, h, notice, panel, short, statusTag, table } from "./lib.js";

export function rulesText(market) {
  const r = market.rules;
  const d = decimalsOf(r.tick_size);
  return (
    `tick ${r.tick_size} · range ${fmtPrice(r.floor, d)}–${fmtPrice(r.cap, d)} · ` +
    `size ${fmtSize(r.min_size)}–${fmtSize(r.max_order_size)} · max pos ${fmtSize(r.max_position)} · ` +
    `fees ${r.maker_fee_bps}/${r.taker_fee_bps} bps`
  );
}

/** The rules in one short line (the full text is in its tooltip). */
export function rulesShort(market) {
  const r = market.rules;
  const d = decimalsOf(r.tick_size);
  return `${r.tick_size} · ${fmtPrice(r.floor, d)}–${fmtPrice(r.cap, d)} · ${r.maker_fee_bps}/${r.taker_fee_bps}bp`;
}

export function settlementCell(market) {
  const s = market.settlement;
  if (!s) return h("span", { class: "muted" }, "—");
  return h(
    "span",
    { class: "settlement" },
    h("span", { class: "num" }, String(s.value)),
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
  const search = h("input", { id: "markets-filter", type: "search", placeholder: "Filter: name, id, question", autocomplete: "off" });
  const status = h(
    "select",
    { id: "markets-status" },
    ["all", "open", "halted", "closed", "resolving", "settled", "pending"].map((v) => h("option", { value: v }, v === "all" ? "any status" : v)),
  );
  let last = [];
  search.addEventListener("input", () => render(last));
  status.addEventListener("input", () => render(last));
  fill(
    root,
    panel("Markets", [search, status, h("span", { class: "muted small", id: "markets-count" })], message, body),
  );

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
    last = all;
    const words = search.value.trim().toLowerCase();
    const list = all.filter(
      (m) =>
        (status.value === "all" || m.status === status.value) &&
        (!words || `${m.name} ${m.id} ${m.question || ""}`.toLowerCase().includes(words)),
    );
    document.getElementById("markets-count").textContent =
      list.length === all.length ? `${all.length} markets` : `${list.length} of ${all.length} markets`;
    const columns = [
      { label: "Market" },
      { label: "Type" },
      { label: "Status" },
      { label: "Bid", cls: "num" },
      { label: "Ask", cls: "num" },
      { label: "Last", cls: "num" },
      { label: "Vol 24h", cls: "num" },
      { label: "Open int.", cls: "num" },
      { label: "Tick · range · fees" },
      { label: "Closes (UTC)" },
      { label: "Settlement · evidence" },
    ];
    const rows = list.map((m) => {
      const d = decimalsOf(m.rules.tick_size);
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
        ),
        h("td", {}, m.type),
        h("td", {}, statusTag(m.status)),
        h("td", { class: "num bid" }, fmtPrice(m.bid, d)),
        h("td", { class: "num ask" }, fmtPrice(m.ask, d)),
        h("td", { class: "num" }, fmtPrice(m.last_price, d)),
        h("td", { class: "num" }, fmtSize(m.volume_24h)),
        h("td", { class: "num" }, fmtSize(m.open_interest)),
        h("td", { class: "mono small rules", title: rulesText(m) }, rulesShort(m)),
        h("td", { class: "mono small" }, fmtTime(m.close_time)),
        h("td", {}, settlementCell(m)),
      );
    });
    fill(body, h("div", { class: "scroll-x" }, table(columns, rows, { empty: "No markets match", cls: "markets" })));
  }

  load();
  return every(10_000, load);
}
