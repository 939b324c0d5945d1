// The account: balance, open positions with PnL, open orders (cancel), settled positions,
// fees and rebates by month, fills, ledger, order history. Prices at their market's tick (from the public market list);
// a binary position is shown as the YES or NO contracts it holds.

import {
  api, every, fill, fmtMoney, fmtPrice, fmtSize, fmtTime, h, isBinary, noPrice, notice, panel,
  session, sideTag, signClass, statusTag, table,
} from "./lib.js";
import { settlementValue } from "./markets.js";

const num = (text, cls = "", title = null) => h("td", { class: `num ${cls}`, title }, text);

function marketLink(id) {
  return h("a", { href: `#/market/${encodeURIComponent(id)}`, class: "mono" }, id);
}

export function mount(root) {
  document.title = "Account · Ballast";
  const message = h("p", { class: "notice", id: "account-message" });
  const cards = h("div", { class: "cards", id: "balance" });
  const positions = h("div", { id: "positions" });
  const openOrders = h("div", { id: "open-orders" });
  const settled = h("div", { id: "settled" });
  const fees = h("div", { id: "fees" });
  let settledMore = null;
  let settledPaged = false;
  const markets = new Map(); // id -> market (public): ticks and types
  let marketsAt = 0;
  const tickOf = (id) => (markets.get(id) ? markets.get(id).rules.tick_size : null);
  const px = (price, id) => fmtPrice(price, tickOf(id));
  const tabsBody = h("div", { id: "history" });
  const updated = h("span", { class: "muted small", id: "updated" });
  let tab = "fills";
  let data = null;
  const more = { fills: null, ledger: null, orders: null };
  const paged = new Set();

  const faucet =
    session.env === "sandbox"
      ? h("button", { class: "btn small", id: "faucet", onclick: drip }, "Get test USDC")
      : null;
  const refresh = h("button", { class: "btn small", id: "refresh", onclick: () => load() }, "Refresh");
  const cancelAll = h("button", { class: "btn tiny danger", id: "cancel-all", onclick: cancelEverything }, "Cancel all");
  const tabButtons = ["fills", "ledger", "orders"].map((name) =>
    h("button", { class: `seg ${name === tab ? "on" : ""}`, dataset: { tab: name }, onclick: () => show(name) }, {
      fills: "Fills",
      ledger: "Ledger",
      orders: "Order history",
    }[name]),
  );

  fill(
    root,
    h(
      "div",
      { class: "account-head" },
      h("h1", {}, "Account"),
      h("span", { class: "mono muted", id: "account-id" }, session.user.account_id),
      h("span", { class: "muted" }, session.user.email),
      h("span", { class: "spacer" }),
      updated,
      faucet,
      refresh,
    ),
    message,
    cards,
    h(
      "div",
      { class: "account-grid" },
      panel("Positions", null, positions),
      panel("Open orders", cancelAll, openOrders),
    ),
    panel("Settled positions", h("span", { class: "muted small" }, "paid out at settlement"), settled),
    panel("Fees and rebates", h("span", { class: "muted small" }, "by month (UTC); a rebate is a negative maker fee"), fees),
    panel("History", h("div", { class: "segs" }, tabButtons), tabsBody),
  );

  /** The public market list, for ticks and types: read once, and again when a market shows
   * up that it lacks (at most once a minute). */
  async function loadMarkets(ids) {
    const unknown = ids.some((id) => !markets.has(id));
    if (marketsAt && !(unknown && Date.now() - marketsAt > 60_000)) return;
    marketsAt = Date.now();
    try {
      const data = await api("/v1/markets");
      for (const m of data.markets) markets.set(m.id, m);
    } catch {
      /* prices then show as the API gave them */
    }
  }

  async function load() {
    try {
      const fresh = await api("/dashboard/api/account");
      await loadMarkets([
        ...fresh.positions.map((p) => p.market_id),
        ...fresh.open_orders.map((o) => o.market_id),
        ...fresh.settlements.settlements.map((x) => x.market_id),
      ]);
      if (settledPaged) fresh.settlements = data.settlements;
      else settledMore = fresh.settlements.next_cursor;
      for (const name of ["fills", "ledger", "orders"]) {
        // A list paged further by hand keeps its rows until the page is reloaded.
        if (paged.has(name)) fresh[name] = data[name];
        else more[name] = fresh[name].next_cursor;
      }
      data = fresh;
      render();
      updated.textContent = `updated ${new Date().toISOString().slice(11, 19)} UTC`;
    } catch (error) {
      if (error.status !== 401) notice(message, error.message, "error");
    }
  }

  function render() {
    const b = data.balance;
    fill(
      cards,
      card("Total balance", b.total_balance, "total"),
      card("Available", b.available, "available"),
      card("Reserved", b.reserved, "reserved"),
      card(
        "Unrealized PnL",
        data.positions.reduce((sum, p) => sum + p.unrealized_pnl, 0),
        "upnl",
        true,
      ),
    );
    fill(
      positions,
      table(
        [
          { label: "Market" },
          { label: "Size", cls: "num" },
          { label: "Avg price", cls: "num" },
          { label: "Mark", cls: "num" },
          { label: "Unrealized PnL", cls: "num" },
          { label: "Realized PnL", cls: "num" },
          { label: "Margin", cls: "num" },
        ],
        data.positions.map((p) => {
          const binary = isBinary(markets.get(p.market_id));
          // A short YES position holds NO: its prices are shown as NO prices.
          const own = (price) => (binary && p.size < 0 ? noPrice(price) : price);
          const yes = (price) => (binary && p.size < 0 ? `YES ${px(price, p.market_id)}` : null);
          return h(
            "tr",
            { dataset: { market: p.market_id } },
            h("td", {}, marketLink(p.market_id)),
            num(held(p.size, binary), p.size > 0 ? "up" : "down"),
            num(px(own(p.average_price), p.market_id), "", yes(p.average_price)),
            num(px(own(p.current_price), p.market_id), "", yes(p.current_price)),
            num(fmtMoney(p.unrealized_pnl), signClass(p.unrealized_pnl)),
            num(fmtMoney(p.realized_pnl), signClass(p.realized_pnl)),
            num(fmtMoney(p.margin_used)),
          );
        }),
        { empty: "No open positions" },
      ),
    );
    renderSettled();
    renderFees();
    fill(
      openOrders,
      table(
        [
          { label: "Placed (UTC)" },
          { label: "Market" },
          { label: "Side" },
          { label: "Price", cls: "num" },
          { label: "Size", cls: "num" },
          { label: "Filled", cls: "num" },
          { label: "Open", cls: "num" },
          { label: "TIF" },
          { label: "" },
        ],
        data.open_orders.map((o) =>
          h(
            "tr",
            { class: "order-row", dataset: { order: o.order_id } },
            h("td", { class: "mono" }, fmtTime(o.created_at)),
            h("td", {}, marketLink(o.market_id)),
            h("td", {}, sideTag(o.side)),
            num(px(o.price, o.market_id)),
            num(fmtSize(o.size)),
            num(fmtSize(o.filled_size)),
            num(fmtSize(o.remaining_size)),
            h("td", {}, o.time_in_force),
            h(
              "td",
              {},
              h("button", { class: "btn tiny danger cancel", onclick: (e) => cancel(o.order_id, e.target) }, "Cancel"),
            ),
          ),
        ),
        { empty: "No open orders" },
      ),
    );
    renderTab();
  }

  /** Contracts held: "7 YES" / "7 NO" on a binary, signed on an index. */
  function held(size, binary) {
    return binary ? `${fmtSize(Math.abs(size))} ${size > 0 ? "YES" : "NO"}` : fmtSize(size);
  }

  function renderFees() {
    const rows = data.fees.periods.map((f) =>
      h(
        "tr",
        { class: "fee-row", dataset: { period: f.period_start.slice(0, 7) } },
        h("td", { class: "mono" }, f.period_start.slice(0, 7)),
        num(fmtMoney(f.fees_paid)),
        num(fmtMoney(f.rebates_earned), f.rebates_earned > 0 ? "pos" : ""),
        num(fmtMoney(f.net_fees), signClass(-f.net_fees)),
        num(`${fmtSize(f.fee_count)} / ${fmtSize(f.rebate_count)}`),
      ),
    );
    fill(
      fees,
      table(
        [
          { label: "Month" },
          { label: "Fees paid", cls: "num" },
          { label: "Rebates earned", cls: "num" },
          { label: "Net fees", cls: "num" },
          { label: "Fills: fee / rebate", cls: "num" },
        ],
        rows,
        { empty: "No fees or rebates yet" },
      ),
    );
  }

  function renderSettled() {
    const list = data.settlements.settlements;
    const rows = list.map((x) => {
      const market = markets.get(x.market_id);
      const binary = isBinary(market);
      return h(
        "tr",
        { class: "settled-row", dataset: { market: x.market_id } },
        h("td", { class: "mono" }, fmtTime(x.settled_at)),
        h("td", {}, marketLink(x.market_id)),
        num(held(x.size, binary), x.size > 0 ? "up" : "down"),
        num(market ? settlementValue(market, x.final_value) : fmtPrice(x.final_value)),
        num(fmtMoney(x.cost_basis)),
        num(fmtMoney(x.payout)),
        num(fmtMoney(x.settlement_pnl), signClass(x.settlement_pnl)),
        num(fmtMoney(x.realized_pnl), signClass(x.realized_pnl)),
      );
    });
    const loadMore = settledMore
      ? h("button", { class: "btn small", onclick: pageSettled }, "Load more")
      : null;
    fill(
      settled,
      table(
        [
          { label: "Settled (UTC)" },
          { label: "Market" },
          { label: "Held", cls: "num" },
          { label: "Final value", cls: "num" },
          { label: "Cost basis", cls: "num" },
          { label: "Payout", cls: "num" },
          { label: "Settlement PnL", cls: "num" },
          { label: "Realized PnL", cls: "num" },
        ],
        rows,
        { empty: "No settled positions yet" },
      ),
      loadMore,
    );
  }

  async function pageSettled() {
    try {
      const next = await api(`/dashboard/api/settlements?limit=100&cursor=${encodeURIComponent(settledMore)}`);
      await loadMarkets(next.settlements.map((x) => x.market_id));
      data.settlements.settlements.push(...next.settlements);
      settledMore = next.next_cursor;
      settledPaged = true;
      renderSettled();
    } catch (error) {
      notice(message, error.message, "error");
    }
  }

  function card(label, value, id, signed = false) {
    return h(
      "div",
      { class: "card", id: `card-${id}` },
      h("div", { class: "label" }, label),
      h("div", { class: `value num ${signed ? signClass(value) : ""}` }, fmtMoney(value), h("small", {}, " USDC")),
    );
  }

  function show(name) {
    tab = name;
    for (const b of tabButtons) b.classList.toggle("on", b.dataset.tab === name);
    renderTab();
  }

  function rowsFor(name, items) {
    if (name === "fills") {
      return items.map((f) =>
        h(
          "tr",
          { dataset: { trade: f.trade_id } },
          h("td", { class: "mono" }, fmtTime(f.created_at)),
          h("td", {}, marketLink(f.market_id)),
          h("td", {}, sideTag(f.side)),
          num(px(f.price, f.market_id)),
          num(fmtSize(f.size)),
          h("td", {}, f.liquidity),
          num(fmtMoney(f.fee), signClass(-f.fee)),
          h("td", { class: "mono small muted" }, f.order_id),
        ),
      );
    }
    if (name === "ledger") {
      return items.map((e) =>
        h(
          "tr",
          {},
          h("td", { class: "mono" }, fmtTime(e.created_at)),
          h("td", {}, e.kind),
          num(fmtMoney(e.amount)),
          h("td", { class: "mono small" }, `${e.debit} → ${e.credit}`),
          h("td", {}, e.market_id ? marketLink(e.market_id) : "—"),
          h("td", { class: "mono small muted" }, e.ref || ""),
        ),
      );
    }
    return items.map((o) =>
      h(
        "tr",
        { dataset: { order: o.order_id } },
        h("td", { class: "mono" }, fmtTime(o.created_at)),
        h("td", {}, marketLink(o.market_id)),
        h("td", {}, sideTag(o.side)),
        h("td", {}, o.type),
        num(px(o.price, o.market_id)),
        num(fmtSize(o.size)),
        num(fmtSize(o.filled_size)),
        h("td", {}, statusTag(o.status), o.cancel_reason ? h("span", { class: "muted small" }, ` ${o.cancel_reason}`) : null),
        h("td", { class: "mono small muted" }, o.order_id),
      ),
    );
  }

  const COLUMNS = {
    fills: ["Time (UTC)", "Market", "Side", "Price|num", "Size|num", "Liquidity", "Fee|num", "Order"],
    ledger: ["Time (UTC)", "Kind", "Amount|num", "Debit → credit", "Market", "Ref"],
    orders: ["Placed (UTC)", "Market", "Side", "Type", "Price|num", "Size|num", "Filled|num", "Status", "Order"],
  };
  const KEYS = { fills: "fills", ledger: "entries", orders: "orders" };

  function renderTab() {
    const list = data[tab][KEYS[tab]];
    const columns = COLUMNS[tab].map((c) => {
      const [label, cls] = c.split("|");
      return { label, cls };
    });
    const loadMore = more[tab]
      ? h("button", { class: "btn small", onclick: () => page(tab) }, "Load more")
      : null;
    fill(tabsBody, h("div", { class: "scroll history" }, table(columns, rowsFor(tab, list), { empty: "Nothing yet" })), loadMore);
  }

  async function page(name) {
    const path = { fills: "/dashboard/api/fills", ledger: "/dashboard/api/ledger", orders: "/dashboard/api/orders?status=all" }[name];
    const join = path.includes("?") ? "&" : "?";
    try {
      const next = await api(`${path}${join}limit=100&cursor=${encodeURIComponent(more[name])}`);
      data[name][KEYS[name]].push(...next[KEYS[name]]);
      more[name] = next.next_cursor;
      paged.add(name);
      renderTab();
    } catch (error) {
      notice(message, error.message, "error");
    }
  }

  async function cancel(orderId, button) {
    button.disabled = true;
    try {
      const order = await api(`/dashboard/api/orders/${encodeURIComponent(orderId)}`, { method: "DELETE" });
      notice(message, `${order.order_id} ${order.status}`, "ok");
    } catch (error) {
      notice(message, `${error.code}: ${error.message}`, "error");
    }
    load();
  }

  async function cancelEverything() {
    try {
      const result = await api("/dashboard/api/orders", { method: "DELETE" });
      notice(message, `Canceled ${result.count} order${result.count === 1 ? "" : "s"}`, "ok");
    } catch (error) {
      notice(message, `${error.code}: ${error.message}`, "error");
    }
    load();
  }

  async function drip() {
    try {
      const result = await api("/dashboard/api/faucet", { method: "POST" });
      notice(message, `Deposited ${fmtMoney(result.amount)} test USDC`, "ok");
    } catch (error) {
      notice(message, error.message, "error");
    }
    load();
  }

  load();
  return every(5_000, load);
}
