// One market: live book and trades over the stream, a candle chart, the rules and settlement,
// and (signed in) an order ticket, the user's position and open orders in this market (also
// marked in the book).
//
// A binary market is read the way its traders think: a price is the chance of YES, NO costs
// 1 − price, and the ticket buys YES or NO (a NO buy is a YES sell at 1 − price). An index
// market keeps plain price framing (buy and sell).

import { drawChart, foldTrade } from "./chart.js";
import {
  api, every, fill, fmtChance, fmtClock, fmtMoney, fmtPrice, fmtSize, fmtTime, fmtYesNo, h,
  isBinary, noPrice, notice, panel, session, sideTag, signClass, statusTag, table, tickPlaces,
} from "./lib.js";
import { chancePrice, rulesText, settlementValue } from "./markets.js";
import { MarketFeed } from "./stream.js";

const INTERVALS = ["1m", "5m", "1h", "1d"];

/** Why market ``m`` takes no orders in ``state`` ({status, settlement, close_time}), or null. */
export function closedReason(m, state) {
  const s = state.settlement;
  switch (state.status) {
    case "open":
      return null;
    case "pending":
      return "This market is not open for trading yet.";
    case "halted":
      return "Trading is halted by the operator; orders are taken again when it reopens.";
    case "closed":
      return s
        ? "Trading has ended; the last settlement proposal was overturned and a new one is awaited."
        : `Trading ended at ${fmtTime(state.close_time)} UTC; the market awaits its settlement proposal.`;
    case "resolving":
      return (
        `Trading has ended: settlement at ${settlementValue(m, s && s.value)} is proposed; ` +
        `the dispute window ends ${fmtTime(s && s.dispute_ends_at)} UTC.`
      );
    case "settled":
      return `Settled at ${settlementValue(m, s && s.value)}: trading has ended.`;
    default:
      return `The market is ${state.status}: it takes no orders.`;
  }
}

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
    const tick = m.rules.tick_size;
    const binary = isBinary(m);
    const px = (p) => fmtPrice(p, tick);
    const state = { status: m.status, settlement: m.settlement, close_time: m.close_time };

    // ---- header ------------------------------------------------------------------------------
    const status = h("span", { id: "market-status" }, statusTag(m.status));
    const tBid = h("b", { class: "num bid", id: "t-bid" }, px(m.bid));
    const tAsk = h("b", { class: "num ask", id: "t-ask" }, px(m.ask));
    const tLast = h("b", { class: "num", id: "t-last" }, px(m.last_price));
    const tVol = h("b", { class: "num", id: "t-vol" }, fmtSize(m.volume_24h));
    const tChance = binary
      ? h("b", { class: "chance", id: "t-chance", title: "the last price (or the mid) read as the chance of YES" }, fmtYesNo(chancePrice(m), tick))
      : null;
    const live = h("span", { class: "live off", id: "feed-state" }, "connecting");
    const stateNote = h("p", { class: "notice warn", id: "market-note", role: "status" });
    const head = h(
      "div",
      { class: "market-head" },
      h("a", { href: "#/markets", class: "back" }, "← Markets"),
      h("h1", {}, m.name),
      m.name !== m.id ? h("span", { class: "mono muted market-id" }, m.id) : null,
      status,
      tChance,
      h("span", { class: "tick" }, binary ? "YES bid " : "Bid ", tBid),
      h("span", { class: "tick" }, binary ? "YES ask " : "Ask ", tAsk),
      h("span", { class: "tick" }, "Last ", tLast),
      h("span", { class: "tick" }, "Vol 24h ", tVol),
      live,
    );

    // ---- about: question, rules, settlement ---------------------------------------------------
    const settlementBox = h("span", { id: "settlement" });
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
        h("dt", {}, "Type"), h("dd", {}, binary ? "binary: pays 1 USDC a contract if YES, 0 if NO" : m.type),
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
      h("div", { class: "lvl head" }, h("span", {}, binary ? "YES price" : "Price"), h("span", {}, "Size"), h("span", {}, "Total")),
      asksEl,
      spreadEl,
      bidsEl,
    );
    let lastBook = null;
    let mineAtLevel = new Map(); // "bid:0.330" -> contracts of the user's open orders there

    // ---- chart ------------------------------------------------------------------------------
    let interval = "1m";
    let candles = [];
    const chartHost = h("div", { class: "chart", id: "chart" });
    const intervalButtons = INTERVALS.map((name) =>
      h("button", { class: `seg ${name === interval ? "on" : ""}`, dataset: { interval: name }, onclick: () => setInterval_(name) }, name),
    );
    const redraw = () => drawChart(chartHost, candles, { tick, interval, floor: m.rules.floor, cap: m.rules.cap });
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
      h("thead", {}, h("tr", {}, h("th", {}, "Time"), h("th", { class: "num" }, binary ? "YES price" : "Price"), h("th", { class: "num" }, "Size"))),
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

    // ---- ticket, my position and my orders --------------------------------------------------
    const ticket = session.user ? orderTicket(m, () => refreshMine()) : null;
    const mineBody = h("div", { id: "my-orders" }, h("p", { class: "muted pad" }, session.user ? "Loading…" : "Log in to see your orders."));
    const positionBody = h("div", { id: "my-position" }, h("p", { class: "muted pad" }, session.user ? "Loading…" : "Log in to see your position."));
    let mineTimer = null;
    let mineAt = 0;
    async function refreshMine() {
      if (!session.user || stopped) return;
      mineAt = Date.now();
      try {
        const data = await api(`/dashboard/api/markets/${encodeURIComponent(m.id)}/mine`);
        renderMine(data.orders);
        renderPosition(data.position);
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
      mineAtLevel = new Map();
      for (const o of orders) {
        const key = `${o.side === "buy" ? "bid" : "ask"}:${px(o.price)}`;
        mineAtLevel.set(key, (mineAtLevel.get(key) || 0) + o.remaining_size);
      }
      if (lastBook) renderBook(lastBook);
      const rows = orders.map((o) =>
        h(
          "tr",
          { class: "order-row", dataset: { order: o.order_id, price: px(o.price) } },
          h("td", {}, binary ? outcomeTag(o.side) : sideTag(o.side)),
          // A binary order in the terms it was entered in: a NO buy at its NO price.
          h("td", { class: "num", title: binary ? `YES ${o.side} at ${px(o.price)}` : null }, binary && o.side === "sell" ? px(noPrice(o.price)) : px(o.price)),
          h("td", { class: "num" }, fmtSize(o.remaining_size)),
          h("td", { class: "num" }, fmtSize(o.filled_size)),
          h("td", { class: "num ahead", title: "contracts resting ahead of this order at its price" }, o.queue_ahead === null || o.queue_ahead === undefined ? "—" : fmtSize(o.queue_ahead)),
          h("td", {}, o.time_in_force),
          h("td", {}, h("button", { class: "btn tiny danger cancel", onclick: (e) => cancel(o.order_id, e.target) }, "Cancel")),
        ),
      );
      fill(
        mineBody,
        table(
          [{ label: "Side" }, { label: "Price", cls: "num" }, { label: "Open", cls: "num" }, { label: "Filled", cls: "num" }, { label: "Ahead", cls: "num" }, { label: "TIF" }, { label: "" }],
          rows,
          { empty: "No open orders in this market", cls: "compact" },
        ),
      );
    }
    function renderPosition(p) {
      if (!p || !p.size) {
        fill(positionBody, h("p", { class: "muted pad" }, "No position in this market."));
        positionBody.dataset.size = "0";
        return;
      }
      positionBody.dataset.size = String(p.size);
      const long = p.size > 0;
      const count = Math.abs(p.size);
      // A short YES position is a NO position: shown at NO prices.
      const own = (price) => (binary && !long ? noPrice(price) : price);
      const what = binary
        ? `${fmtSize(count)} ${long ? "YES" : "NO"}`
        : `${long ? "Long" : "Short"} ${fmtSize(count)}`;
      const payout = binary
        ? `pays ${fmtMoney(count * (m.rules.cap - m.rules.floor))} USDC if ${long ? "YES" : "NO"}`
        : null;
      fill(
        positionBody,
        h(
          "div",
          { class: "position" },
          h("p", { class: `holding ${long ? "up" : "down"}` }, what, payout ? h("span", { class: "muted small" }, ` · ${payout}`) : null),
          h(
            "dl",
            { class: "facts" },
            h("dt", {}, "Average price"), h("dd", { class: "num" }, px(own(p.average_price))),
            h("dt", {}, "Mark"), h("dd", { class: "num" }, px(own(p.current_price))),
            h("dt", {}, "Unrealized PnL"), h("dd", { class: `num ${signClass(p.unrealized_pnl)}` }, `${fmtMoney(p.unrealized_pnl)} USDC`),
            h("dt", {}, "Realized PnL"), h("dd", { class: `num ${signClass(p.realized_pnl)}` }, `${fmtMoney(p.realized_pnl)} USDC`),
            h("dt", {}, "Collateral"), h("dd", { class: "num" }, `${fmtMoney(p.margin_used)} USDC`),
          ),
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

    // ---- the market's state: header, note, settlement box and ticket follow it --------------
    function showState() {
      fill(status, statusTag(state.status));
      fill(settlementBox, settlementDetail(m, state.settlement));
      const why = closedReason(m, state);
      notice(stateNote, why || "", "warn");
      if (ticket) ticket.setClosed(why);
    }

    // ---- layout -----------------------------------------------------------------------------
    fill(
      root,
      head,
      stateNote,
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
          panel("Order ticket", null, ticket ? ticket.el : loginToTrade()),
          h("div", { class: "col-mine" }, panel("My position", null, positionBody), panel("My open orders", cancelAll, mineMessage, mineBody)),
        ),
      ),
    );
    showState();

    // Clicking a level puts its price on the ticket.
    book.addEventListener("click", (event) => {
      const row = event.target.closest(".lvl[data-price]");
      if (row && ticket) ticket.setPrice(Number(row.dataset.price));
    });

    function renderLevels(el, levels, side, reverse) {
      let total = 0;
      const cumulative = levels.map(([price, size]) => (total += size));
      const max = Math.max(total, 1);
      const rows = levels.map(([price, size], i) => {
        const bar = h("span", { class: "bar" });
        bar.style.width = `${(cumulative[i] / max) * 100}%`;
        const mine = mineAtLevel.get(`${side}:${px(price)}`);
        const title = [
          binary ? `YES ${fmtChance(price, tick)} · NO ${px(noPrice(price))}` : null,
          mine ? `yours: ${fmtSize(mine)}` : null,
        ].filter(Boolean).join(" · ");
        const dataset = { price: px(price), size: String(size) };
        if (mine) dataset.mine = String(mine);
        return h(
          "div",
          { class: `lvl ${side}${mine ? " mine" : ""}`, dataset, title: title || null },
          bar,
          h("span", { class: "px" }, px(price)),
          h("span", { class: "sz" }, fmtSize(size)),
          h("span", { class: "cum" }, fmtSize(cumulative[i])),
        );
      });
      if (reverse) rows.reverse();
      fill(el, rows.length ? rows : h("div", { class: "lvl none" }, h("span", { class: "muted" }, side === "bid" ? "no bids" : "no asks")));
    }
    function renderBook({ bids, asks }) {
      renderLevels(asksEl, asks, "ask", true);
      renderLevels(bidsEl, bids, "bid", false);
      const bb = bids[0] && bids[0][0];
      const ba = asks[0] && asks[0][0];
      spreadEl.textContent =
        bb !== undefined && ba !== undefined ? `spread ${px(ba - bb)} · mid ${px((ba + bb) / 2)}` : "—";
      if (binary && tChance && bb !== undefined && ba !== undefined && m.last_price === null) {
        tChance.textContent = fmtYesNo((ba + bb) / 2, tick);
      }
    }

    feed = new MarketFeed(m.id, {
      depth: 15,
      onState: (text) => {
        live.textContent = text;
        live.className = `live ${text === "live" ? "on" : "off"}`;
      },
      onBook: (data) => {
        lastBook = data;
        renderBook(data);
        book.dataset.seq = String(data.seq);
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
        if (tChance && t.last_price !== null && t.last_price !== undefined) {
          m.last_price = t.last_price;
          tChance.textContent = fmtYesNo(t.last_price, tick);
        }
      },
      onMarket: (update) => {
        state.status = update.status;
        state.settlement = update.settlement;
        if (update.close_time) state.close_time = update.close_time;
        showState();
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

function outcomeTag(side) {
  return h("span", { class: `side ${side}` }, side === "buy" ? "BUY YES" : "BUY NO");
}

/** The current settlement: value, proposed or final, when the dispute window ends, and the
 * evidence hash in full. */
function settlementDetail(m, s) {
  if (!s) return h("span", { class: "muted" }, "not proposed yet");
  return h(
    "span",
    {},
    h("b", { class: "num", id: "settlement-value" }, settlementValue(m, s.value)),
    " ",
    h("span", { class: s.final ? "status s-settled" : "status s-resolving" }, s.final ? "final" : "proposed"),
    h("span", { class: "muted mono small" }, ` ${fmtTime(s.proposed_at)} UTC`),
    h("br"),
    s.final
      ? h("span", { class: "muted small", id: "dispute-ends" }, "dispute window closed; paid out")
      : h(
          "span",
          { class: "small", id: "dispute-ends" },
          "dispute window ends ",
          h("span", { class: "mono" }, `${fmtTime(s.dispute_ends_at)} UTC`),
        ),
    h("br"),
    h("span", { class: "muted small" }, "evidence sha256 "),
    h("code", { class: "hash full", id: "evidence-hash" }, s.evidence_hash || "—"),
    " ",
    h("a", { href: `/v1/markets/${encodeURIComponent(m.id)}/settlement`, target: "_blank", rel: "noopener" }, "evidence"),
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

/** ``text`` as an exact decimal of ``places`` digits in integer units (null if it is not a number). */
function units(text, places) {
  if (!/^\d*\.?\d*$/.test(text) || text === "" || text === ".") return null;
  const [whole, frac = ""] = text.split(".");
  if (frac.length > places) return null;
  return Number(whole || "0") * 10 ** places + Number(frac.padEnd(places, "0") || "0");
}

/**
 * Buy/sell (on a binary: Buy YES / Buy NO), limit/market, price, size, TIF; shows the cost
 * and the payout before sending, and posts to the same order entry as REST.
 * Returns {el, setClosed(reason), setPrice(yesPrice)}.
 */
function orderTicket(m, placed) {
  const tick = m.rules.tick_size;
  const binary = isBinary(m);
  const places = tickPlaces(tick) ?? 0;
  let side = "buy";
  const buyBtn = h("button", { type: "button", class: "seg buy on", id: "ticket-buy" }, binary ? "Buy YES" : "Buy");
  const sellBtn = h("button", { type: "button", class: "seg sell", id: "ticket-sell" }, binary ? "Buy NO" : "Sell");
  const type = h("select", { id: "ticket-type" }, h("option", { value: "limit" }, "Limit"), h("option", { value: "market" }, "Market"));
  const price = h("input", { id: "ticket-price", inputmode: "decimal", autocomplete: "off" });
  const priceLabel = h("span", { id: "ticket-price-label" }, "Price");
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
  const explain = binary ? h("p", { class: "explain small muted", id: "ticket-explain" }) : null;
  const estimate = h("div", { class: "estimate", id: "ticket-estimate" }, "—");
  const submit = h("button", { type: "submit", class: "btn buy wide", id: "ticket-submit" }, "Buy");
  const closed = h("p", { class: "notice warn", id: "ticket-closed", role: "status" });
  const message = h("p", { class: "notice", id: "ticket-message", role: "status" });
  const fields = h("fieldset", { class: "fields", id: "ticket-fields" });

  const outcome = () => (side === "buy" ? "YES" : "NO");
  /** The price typed, as the YES price the order is sent at (a NO price turned into 1 − it). */
  function orderPrice() {
    const text = price.value.trim();
    if (!text) return null;
    if (!binary || side === "buy") return text; // a decimal string, sent as typed: never a float
    const digits = Math.max(places, (text.split(".")[1] || "").length);
    const no = units(text, digits);
    if (no === null) return text; // let the server say what is wrong with it
    return ((10 ** digits - no) / 10 ** digits).toFixed(digits);
  }
  function placeholder() {
    const yes = side === "buy" ? m.ask ?? m.last_price : m.bid ?? m.last_price;
    const fallback = m.last_price ?? (m.rules.floor + m.rules.cap) / 2;
    const shown = binary && side === "sell" ? noPrice(yes ?? fallback) : yes ?? fallback;
    price.placeholder = fmtPrice(shown, tick);
  }

  function update() {
    const isMarket = type.value === "market";
    for (const opt of tif.options) opt.disabled = isMarket && (opt.value === "GTC" || opt.value === "GTD");
    if (isMarket && (tif.value === "GTC" || tif.value === "GTD")) tif.value = "IOC";
    expireRow.hidden = tif.value !== "GTD";
    buyBtn.classList.toggle("on", side === "buy");
    sellBtn.classList.toggle("on", side === "sell");
    buyBtn.setAttribute("aria-pressed", String(side === "buy"));
    sellBtn.setAttribute("aria-pressed", String(side === "sell"));
    priceLabel.textContent = binary ? `${outcome()} price` : isMarket ? "Protection" : "Price";
    placeholder();
    const p = Number(price.value);
    const n = Number.parseInt(size.value, 10);
    const hasPrice = price.value.trim() !== "" && Number.isFinite(p);
    const label = binary ? `Buy ${outcome()}` : side === "buy" ? "Buy" : "Sell";
    submit.className = `btn ${side} wide`;
    if (binary) {
      const shown = hasPrice ? fmtPrice(p, tick) : null;
      explain.textContent =
        side === "buy"
          ? `Buy YES${shown ? ` at ${shown}` : ""}: pay ${shown || "the price"} a contract, ` +
            "get 1 USDC a contract if the market settles YES."
          : shown
            ? `Buying NO at ${shown} is selling YES at 1 − ${shown} = ${fmtPrice(orderPrice(), tick)}: ` +
              `pay ${shown} a contract, get 1 USDC a contract if it settles NO.`
            : "Buying NO at a price is selling YES at 1 − that price: " +
              "pay the NO price a contract, get 1 USDC a contract if it settles NO.";
    }
    estimate.className = "estimate";
    if (n > 0 && hasPrice) {
      const at = `${fmtSize(n)} @ ${fmtPrice(p, tick)}`;
      submit.textContent = binary ? `Buy ${fmtSize(n)} ${outcome()} @ ${fmtPrice(p, tick)}` : `${label} ${at}`;
      if (isMarket) submit.textContent += " (protection)";
      if (binary) {
        // 1 USDC a contract between floor and cap: YES locks its price, NO its own price.
        const payout = n * (m.rules.cap - m.rules.floor);
        estimate.textContent = `Cost ${isMarket ? "at most " : ""}${fmtMoney(p * n)} USDC · pays ${fmtMoney(payout)} USDC if ${outcome()}`;
      } else {
        // 1 USDC per price unit per contract: a long locks price - floor, a short cap - price.
        const lock = side === "buy" ? p - m.rules.floor : m.rules.cap - p;
        estimate.textContent = `Collateral ≈ ${fmtMoney(lock * n)} USDC · notional ${fmtMoney(p * n)} USDC`;
      }
    } else {
      estimate.textContent = isMarket ? "Market order: fills what the book and your collateral allow" : "Enter a price and a size to see the cost";
      estimate.className = "estimate muted";
      submit.textContent = n > 0 ? `${label} ${fmtSize(n)}${isMarket ? " at market" : ""}` : label;
    }
  }

  buyBtn.addEventListener("click", () => ((side = "buy"), update()));
  sellBtn.addEventListener("click", () => ((side = "sell"), update()));
  for (const el of [type, price, size, tif]) el.addEventListener("input", update);

  fields.append(
    h("div", { class: "segs sides" }, buyBtn, sellBtn),
    explain,
    h("label", { class: "row" }, h("span", {}, "Type"), type),
    h("label", { class: "row" }, priceLabel, price),
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
  );
  const form = h("form", { class: "ticket", id: "ticket" }, closed, fields, message);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    if (fields.disabled) return;
    const body = {
      market_id: m.id,
      side,
      type: type.value,
      size: Number.parseInt(size.value, 10),
      time_in_force: tif.value,
      post_only: postOnly.checked,
      reduce_only: reduceOnly.checked,
    };
    const sent = orderPrice();
    if (sent !== null) body.price = sent;
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
      notice(message, errorText(error), "error");
    } finally {
      submit.disabled = false;
    }
  });
  update();
  return {
    el: form,
    setClosed(reason) {
      fields.disabled = Boolean(reason);
      form.classList.toggle("closed", Boolean(reason));
      notice(closed, reason ? `No orders: ${reason}` : "", "warn");
    },
    setPrice(yes) {
      price.value = fmtPrice(binary && side === "sell" ? noPrice(yes) : yes, tick);
      update();
    },
  };
}

/** An order refused, in the ticket: the envelope's details where they help. */
function errorText(error) {
  const d = error.details || {};
  if (error.code === "INSUFFICIENT_BALANCE" && d.required !== undefined && d.available !== undefined) {
    return (
      `INSUFFICIENT_BALANCE: this order needs ${fmtMoney(d.required)} USDC of collateral; ` +
      `${fmtMoney(d.available)} USDC is available.`
    );
  }
  return `${error.code}: ${error.message}`;
}
