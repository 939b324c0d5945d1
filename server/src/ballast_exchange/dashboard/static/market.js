// One market: live book and trades over the stream, a candle chart, the rules and settlement,
// and (signed in) an order ticket and the user's open orders in this market.

import { drawChart, foldTrade } from "./chart.js";
import {
  api, decimalsOf, every, fill, fmtClock, fmtMoney, fmtPrice, fmtSize, fmtTime, h, notice,
  panel, session, sideTag, statusTag, table,
} from "./lib.js";
import { rulesText } from "./markets.js";
import { MarketFeed } from "./stream.js";

const INTERVALS = ["1m", "5m", "1h", "1d"];

export function mount(root, marketId) {
  document.title = `${marketId} · Ballast`;
  let feed = null;
  let stopped = false;
  const stops = [];
  fill(root, h("p", { class: "muted pad" }, "Loading market…"));

  api(`/v1/markets/${encodeURIComponent(marketId)}`)
    .then((m) => {
      if (!stopped) build(m);
    })
    .catch((error) => {
      fill(
        root,
        h("div", { class: "pad" }, h("p", { class: "notice error" }, error.message), h("a", { href: "#/markets" }, "← All markets")),
      );
    });

  function build(m) {
    const d = decimalsOf(m.rules.tick_size);
    const tick = m.rules.tick_size;
    const px = (p) => fmtPrice(p, d);

    // ---- header ------------------------------------------------------------------------------
    const status = h("span", { id: "market-status" }, statusTag(m.status));
    const tBid = h("b", { class: "num bid", id: "t-bid" }, px(m.bid));
    const tAsk = h("b", { class: "num ask", id: "t-ask" }, px(m.ask));
    const tLast = h("b", { class: "num", id: "t-last" }, px(m.last_price));
    const tVol = h("b", { class: "num", id: "t-vol" }, fmtSize(m.volume_24h));
    const live = h("span", { class: "live off", id: "feed-state" }, "connecting");
    const head = h(
      "div",
      { class: "market-head" },
      h("a", { href: "#/markets", class: "back" }, "← Markets"),
      h("h1", {}, m.name),
      m.name !== m.id ? h("span", { class: "mono muted" }, m.id) : null,
      status,
      h("span", { class: "tick" }, "Bid ", tBid),
      h("span", { class: "tick" }, "Ask ", tAsk),
      h("span", { class: "tick" }, "Last ", tLast),
      h("span", { class: "tick" }, "Vol 24h ", tVol),
      live,
    );

    // ---- about: question, rules, settlement ---------------------------------------------------
    const settlementBox = h("span", { id: "settlement" }, settlementDetail(m.settlement, m.id));
    const about = h(
      "div",
      { class: "about" },
      h("p", { class: "question" }, m.question || m.name),
      m.description
        ? h("details", { class: "description" }, h("summary", {}, "Resolution rules"), h("p", { class: "muted" }, m.description))
        : null,
      h(
        "dl",
        { class: "facts" },
        h("dt", {}, "Type"), h("dd", {}, m.type),
        h("dt", {}, "Rules"), h("dd", { id: "rules" }, rulesText(m)),
        h("dt", {}, "Closes"), h("dd", { class: "mono" }, `${fmtTime(m.close_time)} UTC`),
        h("dt", {}, "Resolution source"), h("dd", {}, m.resolution_source || "—"),
        h("dt", {}, "Settlement"),
        h("dd", {}, settlementBox),
      ),
    );

    // ---- book -------------------------------------------------------------------------------
    const asksEl = h("div", { class: "levels asks", id: "book-asks" });
    const bidsEl = h("div", { class: "levels bids", id: "book-bids" });
    const spreadEl = h("div", { class: "spread", id: "book-spread" }, "—");
    const book = h(
      "div",
      { class: "book", id: "book" },
      h("div", { class: "lvl head" }, h("span", {}, "Price"), h("span", {}, "Size"), h("span", {}, "Total")),
      asksEl,
      spreadEl,
      bidsEl,
    );

    // ---- chart ------------------------------------------------------------------------------
    let interval = "1m";
    let candles = [];
    const chartHost = h("div", { class: "chart", id: "chart" });
    const intervalButtons = INTERVALS.map((name) =>
      h("button", { class: `seg ${name === interval ? "on" : ""}`, dataset: { interval: name }, onclick: () => setInterval_(name) }, name),
    );
    const redraw = () => drawChart(chartHost, candles, { decimals: d, tick, interval, floor: m.rules.floor, cap: m.rules.cap });
    async function loadCandles() {
      try {
        const data = await api(`/v1/markets/${encodeURIComponent(m.id)}/candles?interval=${interval}&limit=200`);
        candles = data.candles;
        redraw();
      } catch (error) {
        fill(chartHost, h("p", { class: "notice error" }, error.message));
      }
    }
    function setInterval_(name) {
      interval = name;
      for (const b of intervalButtons) b.classList.toggle("on", b.dataset.interval === name);
      loadCandles();
    }

    // ---- trades -----------------------------------------------------------------------------
    let trades = [];
    const tradesBody = h("tbody", { id: "trades-body" });
    const tradesTable = h(
      "table",
      { class: "grid compact" },
      h("thead", {}, h("tr", {}, h("th", {}, "Time"), h("th", { class: "num" }, "Price"), h("th", { class: "num" }, "Size"))),
      tradesBody,
    );
    function renderTrades() {
      fill(
        tradesBody,
        trades.length
          ? trades.slice(0, 60).map((t) =>
              h(
                "tr",
                { dataset: { trade: t.trade_id } },
                h("td", { class: "mono" }, fmtClock(t.created_at)),
                h("td", { class: `num ${t.taker_side === "buy" ? "up" : "down"}` }, px(t.price)),
                h("td", { class: "num" }, fmtSize(t.size)),
              ),
            )
          : h("tr", { class: "empty" }, h("td", { colspan: 3 }, "No trades yet")),
      );
    }

    // ---- ticket and my orders ---------------------------------------------------------------
    const ticket = session.user ? orderTicket(m, d, () => refreshMine()) : loginToTrade();
    const mineBody = h("div", { id: "my-orders" }, h("p", { class: "muted pad" }, session.user ? "Loading…" : "Log in to see your orders."));
    let mineTimer = null;
    let mineAt = 0;
    async function refreshMine() {
      if (!session.user || stopped) return;
      mineAt = Date.now();
      try {
        const data = await api(`/dashboard/api/orders?status=open&market_id=${encodeURIComponent(m.id)}`);
        renderMine(data.orders);
      } catch (error) {
        fill(mineBody, h("p", { class: "notice error" }, error.message));
      }
    }
    // Book changes may be our orders trading: look again soon, but at most every 3 s (the
    // dashboard's requests count against the per-IP rate limit).
    function refreshMineSoon() {
      if (!session.user || mineTimer) return;
      const wait = Math.max(300, mineAt + 3_000 - Date.now());
      mineTimer = setTimeout(() => {
        mineTimer = null;
        refreshMine();
      }, wait);
    }
    function renderMine(orders) {
      const rows = orders.map((o) =>
        h(
          "tr",
          { class: "order-row", dataset: { order: o.order_id } },
          h("td", {}, sideTag(o.side)),
          h("td", { class: "num" }, px(o.price)),
          h("td", { class: "num" }, fmtSize(o.remaining_size)),
          h("td", { class: "num" }, fmtSize(o.filled_size)),
          h("td", {}, o.time_in_force),
          h("td", {}, h("button", { class: "btn tiny danger cancel", onclick: (e) => cancel(o.order_id, e.target) }, "Cancel")),
        ),
      );
      fill(
        mineBody,
        table(
          [{ label: "Side" }, { label: "Price", cls: "num" }, { label: "Open", cls: "num" }, { label: "Filled", cls: "num" }, { label: "TIF" }, { label: "" }],
          rows,
          { empty: "No open orders in this market", cls: "compact" },
        ),
      );
    }
    async function cancel(orderId, button) {
      button.disabled = true;
      try {
        await api(`/dashboard/api/orders/${encodeURIComponent(orderId)}`, { method: "DELETE" });
      } catch (error) {
        alertLine(error.message);
      }
      refreshMine();
    }
    const mineMessage = h("p", { class: "notice" });
    function alertLine(text) {
      notice(mineMessage, text, "error");
    }
    const cancelAll = session.user
      ? h("button", {
          class: "btn tiny",
          id: "cancel-all-market",
          onclick: async () => {
            try {
              const r = await api(`/dashboard/api/orders?market_id=${encodeURIComponent(m.id)}`, { method: "DELETE" });
              notice(mineMessage, `Canceled ${r.count} order${r.count === 1 ? "" : "s"}`, "ok");
            } catch (error) {
              alertLine(error.message);
            }
            refreshMine();
          },
        }, "Cancel all")
      : null;

    // ---- layout -----------------------------------------------------------------------------
    fill(
      root,
      head,
      h(
        "div",
        { class: "market-grid" },
        h("div", { class: "col-book" }, panel("Order book", null, book)),
        h(
          "div",
          { class: "col-center" },
          panel("Price", h("div", { class: "segs" }, intervalButtons), chartHost),
          h("div", { class: "split" }, panel("Trades", null, h("div", { class: "scroll trades" }, tradesTable)), panel("Market", null, about)),
        ),
        h(
          "div",
          { class: "col-ticket" },
          panel("Order ticket", null, ticket),
          panel("My open orders", cancelAll, mineMessage, mineBody),
        ),
      ),
    );

    // Clicking a level puts its price on the ticket.
    book.addEventListener("click", (event) => {
      const row = event.target.closest(".lvl[data-price]");
      const input = document.getElementById("ticket-price");
      if (row && input) {
        input.value = row.dataset.price;
        input.dispatchEvent(new Event("input"));
      }
    });

    function renderLevels(el, levels, side, reverse) {
      let total = 0;
      const cumulative = levels.map(([price, size]) => (total += size));
      const max = Math.max(total, 1);
      const rows = levels.map(([price, size], i) => {
        const bar = h("span", { class: "bar" });
        bar.style.width = `${(cumulative[i] / max) * 100}%`;
        return h(
          "div",
          { class: `lvl ${side}`, dataset: { price: px(price), size: String(size) } },
          bar,
          h("span", { class: "px" }, px(price)),
          h("span", { class: "sz" }, fmtSize(size)),
          h("span", { class: "cum" }, fmtSize(cumulative[i])),
        );
      });
      if (reverse) rows.reverse();
      fill(el, rows.length ? rows : h("div", { class: "lvl none" }, h("span", { class: "muted" }, side === "bid" ? "no bids" : "no asks")));
    }

    feed = new MarketFeed(m.id, {
      depth: 15,
      onState: (text) => {
        live.textContent = text;
        live.className = `live ${text === "live" ? "on" : "off"}`;
      },
      onBook: ({ bids, asks, seq }) => {
        renderLevels(asksEl, asks, "ask", true);
        renderLevels(bidsEl, bids, "bid", false);
        book.dataset.seq = String(seq);
        const bb = bids[0] && bids[0][0];
        const ba = asks[0] && asks[0][0];
        spreadEl.textContent =
          bb !== undefined && ba !== undefined ? `spread ${px(ba - bb)} · mid ${fmtPrice((ba + bb) / 2, d + 1)}` : "—";
        refreshMineSoon();
      },
      onTrades: (list, snapshot) => {
        if (snapshot) trades = [...list].reverse();
        else {
          trades = [...[...list].reverse(), ...trades].slice(0, 200);
          for (const t of list) foldTrade(candles, t, interval);
          redraw();
        }
        renderTrades();
      },
      onTicker: (t) => {
        tBid.textContent = px(t.bid);
        tAsk.textContent = px(t.ask);
        tLast.textContent = px(t.last_price);
        tVol.textContent = fmtSize(t.volume_24h);
      },
      onMarket: (state) => {
        fill(status, statusTag(state.status));
        fill(settlementBox, settlementDetail(state.settlement, m.id));
      },
    });

    loadCandles();
    refreshMine();
    stops.push(every(60_000, loadCandles), every(15_000, refreshMine));
    const onResize = () => redraw();
    window.addEventListener("resize", onResize);
    stops.push(() => window.removeEventListener("resize", onResize));
  }

  return () => {
    stopped = true;
    if (feed) feed.close();
    for (const stop of stops) stop();
  };
}

/** The current settlement: value, proposed or final, when, and the evidence hash in full. */
function settlementDetail(s, marketId) {
  if (!s) return h("span", { class: "muted" }, "not proposed yet");
  return h(
    "span",
    {},
    h("b", { class: "num" }, String(s.value)),
    " ",
    h("span", { class: s.final ? "status s-settled" : "status s-resolving" }, s.final ? "final" : "proposed"),
    h("span", { class: "muted mono small" }, ` ${fmtTime(s.proposed_at)} UTC`),
    h("br"),
    h("span", { class: "muted small" }, "evidence sha256 "),
    h("code", { class: "hash full", id: "evidence-hash" }, s.evidence_hash || "—"),
    " ",
    h("a", { href: `/v1/markets/${encodeURIComponent(marketId)}/settlement`, target: "_blank", rel: "noopener" }, "evidence"),
  );
}

function loginToTrade() {
  return h(
    "div",
    { class: "pad" },
    h("p", {}, "Log in to trade this market."),
    h("p", {}, h("a", { href: "#/login", class: "btn" }, "Log in"), " ", h("a", { href: "#/signup", class: "btn primary" }, "Sign up")),
  );
}

/** Buy/sell, limit/market, price, size, TIF: posts to the same order entry as REST. */
function orderTicket(m, d, placed) {
  let side = "buy";
  const buyBtn = h("button", { type: "button", class: "seg buy on", id: "ticket-buy" }, "Buy");
  const sellBtn = h("button", { type: "button", class: "seg sell", id: "ticket-sell" }, "Sell");
  const type = h("select", { id: "ticket-type" }, h("option", { value: "limit" }, "Limit"), h("option", { value: "market" }, "Market"));
  const price = h("input", {
    id: "ticket-price",
    inputmode: "decimal",
    autocomplete: "off",
    placeholder: fmtPrice(m.bid ?? m.last_price ?? (m.rules.floor + m.rules.cap) / 2, d),
  });
  const size = h("input", { id: "ticket-size", inputmode: "numeric", autocomplete: "off", placeholder: String(m.rules.min_size) });
  const tif = h(
    "select",
    { id: "ticket-tif" },
    ["GTC", "IOC", "FOK", "GTD"].map((v) => h("option", { value: v }, v)),
  );
  const expire = h("input", { id: "ticket-expire", type: "datetime-local", step: "1" });
  const expireRow = h("label", { class: "row", hidden: true }, h("span", {}, "Expire (UTC)"), expire);
  const postOnly = h("input", { type: "checkbox", id: "ticket-post-only" });
  const reduceOnly = h("input", { type: "checkbox", id: "ticket-reduce-only" });
  const estimate = h("div", { class: "estimate muted", id: "ticket-estimate" }, "—");
  const submit = h("button", { type: "submit", class: "btn buy wide", id: "ticket-submit" }, "Buy");
  const message = h("p", { class: "notice", id: "ticket-message", role: "status" });

  function update() {
    const isMarket = type.value === "market";
    for (const opt of tif.options) opt.disabled = isMarket && (opt.value === "GTC" || opt.value === "GTD");
    if (isMarket && (tif.value === "GTC" || tif.value === "GTD")) tif.value = "IOC";
    expireRow.hidden = tif.value !== "GTD";
    buyBtn.classList.toggle("on", side === "buy");
    sellBtn.classList.toggle("on", side === "sell");
    const p = Number(price.value);
    const n = Number.parseInt(size.value, 10);
    const label = side === "buy" ? "Buy" : "Sell";
    submit.className = `btn ${side} wide`;
    if (n > 0 && price.value && Number.isFinite(p)) {
      // $1 per price unit per contract: a long locks price - floor, a short cap - price.
      const lock = side === "buy" ? p - m.rules.floor : m.rules.cap - p;
      estimate.textContent = `Collateral ≈ $${fmtMoney(lock * n)} · notional $${fmtMoney(p * n)}`;
      submit.textContent = `${label} ${fmtSize(n)} @ ${price.value}${isMarket ? " (protection)" : ""}`;
    } else {
      estimate.textContent = isMarket ? "Market order: fills what the book and your collateral allow" : "—";
      submit.textContent = n > 0 ? `${label} ${fmtSize(n)}${isMarket ? " at market" : ""}` : label;
    }
  }

  buyBtn.addEventListener("click", () => ((side = "buy"), update()));
  sellBtn.addEventListener("click", () => ((side = "sell"), update()));
  for (const el of [type, price, size, tif]) el.addEventListener("input", update);

  const form = h(
    "form",
    { class: "ticket", id: "ticket" },
    h("div", { class: "segs sides" }, buyBtn, sellBtn),
    h("label", { class: "row" }, h("span", {}, "Type"), type),
    h("label", { class: "row" }, h("span", {}, "Price"), price),
    h("label", { class: "row" }, h("span", {}, "Size"), size),
    h("label", { class: "row" }, h("span", {}, "Time in force"), tif),
    expireRow,
    h(
      "div",
      { class: "row checks" },
      h("label", {}, postOnly, " Post only"),
      h("label", {}, reduceOnly, " Reduce only"),
    ),
    estimate,
    submit,
    message,
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const body = {
      market_id: m.id,
      side,
      type: type.value,
      size: Number.parseInt(size.value, 10),
      time_in_force: tif.value,
      post_only: postOnly.checked,
      reduce_only: reduceOnly.checked,
    };
    if (price.value.trim()) body.price = price.value.trim(); // a decimal string: never a float
    if (tif.value === "GTD" && expire.value) body.expire_at = `${expire.value}Z`;
    if (!Number.isInteger(body.size) || body.size <= 0) {
      notice(message, "Enter a size in whole contracts", "error");
      return;
    }
    submit.disabled = true;
    try {
      const order = await api("/dashboard/api/orders", { method: "POST", body });
      const filled = order.filled_size ? `, filled ${fmtSize(order.filled_size)}` : "";
      notice(message, `${order.order_id} ${order.status}${filled}`, "ok");
      placed();
    } catch (error) {
      notice(message, `${error.code}: ${error.message}`, "error");
    } finally {
      submit.disabled = false;
    }
  });
  update();
  return form;
}
