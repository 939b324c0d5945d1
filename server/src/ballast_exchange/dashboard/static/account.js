// The account: balance, positions with PnL, open orders (cancel), fills, ledger, order history.

import {
  api, every, fill, fmtMoney, fmtSize, fmtTime, h, notice, panel, session, sideTag, signClass,
  statusTag, table,
} from "./lib.js";

const num = (text, cls = "") => h("td", { class: `num ${cls}` }, text);
const px = (p) => (p === null || p === undefined ? "—" : String(p));

function marketLink(id) {
  return h("a", { href: `#/market/${encodeURIComponent(id)}`, class: "mono" }, id);
}

export function mount(root) {
  document.title = "Account · Ballast";
  const message = h("p", { class: "notice", id: "account-message" });
  const cards = h("div", { class: "cards", id: "balance" });
  const positions = h("div", { id: "positions" });
  const openOrders = h("div", { id: "open-orders" });
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
    panel("History", h("div", { class: "segs" }, tabButtons), tabsBody),
  );

  async function load() {
    try {
      const fresh = await api("/dashboard/api/account");
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
        data.positions.map((p) =>
          h(
            "tr",
            { dataset: { market: p.market_id } },
            h("td", {}, marketLink(p.market_id)),
            num(fmtSize(p.size), p.size > 0 ? "up" : "down"),
            num(px(p.average_price)),
            num(px(p.current_price)),
            num(fmtMoney(p.unrealized_pnl), signClass(p.unrealized_pnl)),
            num(fmtMoney(p.realized_pnl), signClass(p.realized_pnl)),
            num(fmtMoney(p.margin_used)),
          ),
        ),
        { empty: "No open positions" },
      ),
    );
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
            num(px(o.price)),
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
          num(px(f.price)),
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
        num(px(o.price)),
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
