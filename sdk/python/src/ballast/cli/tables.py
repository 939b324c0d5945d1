"""Tables for people (``rich``): prices at their market's tick, money in USDC with two decimals
(``numbers.py``), buys green and sells red, times in UTC; a binary market's price also read as
the chance of YES (``YES 62.0% / NO 38.0%``). ``--json`` bypasses all of this.

Every table fits the terminal: columns are ranked, the least needed go first when the width runs
short, and then long text (names, ids) is cut with an ellipsis down to a floor. Numbers are
never cut: a truncated price is a wrong price.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from decimal import Decimal

from rich import box
from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from ..models import Balance, CanceledOrders, Fill, Market, Order, OrderFill, Position, Trade
from ..orderbook import LocalOrderBook
from .numbers import money_text, no_price, price_text, yes_no_text

__all__ = [
    "Column",
    "balance_table",
    "book_view",
    "canceled_view",
    "fills_table",
    "fit",
    "markets_table",
    "order_view",
    "orders_table",
    "positions_table",
    "trades_table",
]

BUY = "green"
SELL = "red"
DIM = "dim"
GAP = 2  # between two columns: one space of padding and one of divider
#: Ticks by market id (``Decimal("0.001")``); a market missing shows prices as the API gave.
Ticks = Mapping[str, Decimal]


def num(value: Decimal | int | None) -> str:
    """A number as the API gave it (``0.870`` stays ``0.870``), never in exponent form."""
    if value is None:
        return "-"
    if isinstance(value, Decimal):
        return format(value, "f")
    return str(value)


def when(value: datetime | None, *, seconds: bool = True) -> str:
    if value is None:
        return "-"
    shape = "%Y-%m-%d %H:%M:%S" if seconds else "%Y-%m-%d %H:%M"
    return value.astimezone(timezone.utc).strftime(shape)


def side_style(side: str) -> str:
    return {"buy": BUY, "bid": BUY, "sell": SELL, "ask": SELL}.get(side.lower(), "")


def side_text(side: str) -> Text:
    return Text(side, style=side_style(side))


def signed_money(value: Decimal | int | None) -> Text:
    """Money colored by its sign: green above zero, red below."""
    if value is None:
        return Text("-", style=DIM)
    style = BUY if value > 0 else SELL if value < 0 else ""
    return Text(money_text(value), style=style)


def signed(value: int | None) -> Text:
    if value is None:
        return Text("-", style=DIM)
    return Text(str(value), style=BUY if value > 0 else SELL if value < 0 else "")


def cell(value: str | None, style: str = "") -> Text:
    """Plain text, never read as markup (a market named ``[beta]`` stays ``[beta]``)."""
    return Text("-" if value is None or value == "" else value, style=style)


def nothing(what: str) -> Text:
    return Text(f"no {what}", style=DIM)


# --------------------------------------------------------------------------- fitting


@dataclass(frozen=True)
class Column:
    """A column and how it gives way: ``rank`` 0 is always shown, higher ranks are dropped
    first; ``shrink`` is the width text may be cut down to (None: never cut)."""

    header: str
    rank: int = 0
    right: bool = False
    shrink: int | None = None
    style: str = ""


def fit(columns: Sequence[Column], rows: Sequence[Sequence[Text]], width: int | None) -> Table:
    """A table of ``rows`` no wider than ``width`` (None: as wide as it needs)."""
    natural = [
        max([len(c.header), *(rows[r][i].cell_len for r in range(len(rows)))])
        for i, c in enumerate(columns)
    ]
    shown = list(range(len(columns)))

    def total(widths: Sequence[int]) -> int:
        return sum(widths) + GAP * (len(widths) - 1)

    limits: dict[int, int] = {}
    if width is not None:
        # Drop the least needed columns while cutting text could not make the rest fit.
        def floor(i: int) -> int:
            cut = columns[i].shrink
            return natural[i] if cut is None else min(natural[i], max(cut, len(columns[i].header)))

        while total([floor(i) for i in shown]) > width:
            droppable = [i for i in shown if columns[i].rank > 0]
            if not droppable:
                break
            shown.remove(max(droppable, key=lambda i: (columns[i].rank, i)))
        excess = total([natural[i] for i in shown]) - width
        # Then cut text, the widest first, down to each column's floor.
        while excess > 0:
            cuttable = [i for i in shown if limits.get(i, natural[i]) > floor(i)]
            if not cuttable:
                break
            widest = max(cuttable, key=lambda i: limits.get(i, natural[i]))
            limits[widest] = limits.get(widest, natural[widest]) - 1
            excess -= 1
    grid = Table(
        box=box.SIMPLE_HEAD,
        show_edge=False,
        pad_edge=False,
        collapse_padding=True,
        padding=(0, 1, 0, 0),
        header_style="bold",
    )
    for i in shown:
        column = columns[i]
        grid.add_column(
            column.header,
            justify="right" if column.right else "left",
            no_wrap=True,
            overflow="ellipsis",
            style=column.style,
            max_width=limits.get(i),
            min_width=limits.get(i, natural[i]),
        )
    for row in rows:
        grid.add_row(*(row[i] for i in shown))
    return grid


# --------------------------------------------------------------------------- market data


def tick_of(market: Market) -> Decimal | None:
    return market.rules.tick_size if market.rules else None


def chance_price(market: Market) -> Decimal | None:
    """The price a binary's chance is read from: the last trade's, else the book's mid."""
    return market.last_price if market.last_price is not None else market.midpoint


def markets_table(markets: Sequence[Market], width: int | None = None) -> RenderableType:
    if not markets:
        return nothing("markets")
    # Binary only: the last price (or the mid) as the chance of YES, and NO's. Where it is
    # shown it says what Last says, so Last gives way first, then the close time.
    chance = any(market.type == "binary" for market in markets)
    columns = [
        Column("ID"),
        Column("Name", rank=2, shrink=12),
        Column("Type", rank=6),
        Column("Status"),
        Column("Bid", right=True, style=BUY),
        Column("Ask", right=True, style=SELL),
        Column("Last", rank=4, right=True),
        *([Column("Chance", rank=1)] if chance else []),
        Column("Vol 24h", rank=7, right=True),
        Column("Open int", rank=8, right=True),
        Column("Tick", rank=9, right=True),
        Column("Closes (UTC)", rank=3),
    ]
    rows = []
    for market in markets:
        tick = tick_of(market)
        binary = market.type == "binary"
        rows.append(
            [
                cell(market.id),
                cell(market.name),
                cell(market.type),
                cell(market.status, "green" if market.status == "open" else "yellow"),
                cell(price_text(market.bid, tick)),
                cell(price_text(market.ask, tick)),
                cell(price_text(market.last_price, tick)),
                *(
                    [cell(yes_no_text(chance_price(market), tick) if binary else "")]
                    if chance
                    else []
                ),
                cell(num(market.volume_24h)),
                cell(num(market.open_interest)),
                cell(price_text(tick, tick)),
                cell(when(market.close_time, seconds=False)),
            ]
        )
    return fit(columns, rows, width)


def book_view(
    book: LocalOrderBook,
    status: str | None = None,
    tick: Decimal | None = None,
    width: int | None = None,
    binary: bool = False,
) -> RenderableType:
    """The book side by side, best prices on the first row, with running totals; above it the
    best bid and ask, spread, mid and sequence, and ``status`` (the connection's state). On a
    ``binary`` market a second line reads the mid as the chance of YES and says what YES and
    NO cost now (a NO buy is a YES sell at 1 - price: it takes the best bid)."""
    bids, asks = book.bids, book.asks
    head = Text()
    head.append(book.market_id, style="bold")
    head.append("  bid ")
    head.append(price_text(book.best_bid, tick), style=BUY)
    head.append("  ask ")
    head.append(price_text(book.best_ask, tick), style=SELL)
    head.append(f"  spread {price_text(book.spread, tick)}  mid {price_text(book.mid, tick)}")
    head.append(f"  seq {num(book.exchange_seq)}", style=DIM)
    if book.time is not None and (width is None or width >= 100):
        head.append(f"  {when(book.time)} UTC", style=DIM)
    if status:
        head.append(f"  {status}", style="yellow")
    columns = [
        Column("Bid total", rank=1, right=True, style=DIM),
        Column("Bid size", right=True),
        Column("Bid", right=True, style=BUY),
        Column("Ask", right=True, style=SELL),
        Column("Ask size", right=True),
        Column("Ask total", rank=1, right=True, style=DIM),
    ]
    rows: list[list[Text]] = []
    bid_total = ask_total = 0
    for row in range(max(len(bids), len(asks))):
        left = [Text(""), Text(""), Text("")]
        right = [Text(""), Text(""), Text("")]
        if row < len(bids):
            bid_total += bids[row].size
            left = [cell(num(bid_total)), cell(num(bids[row].size))]
            left.append(cell(price_text(bids[row].price, tick)))
        if row < len(asks):
            ask_total += asks[row].size
            right = [cell(price_text(asks[row].price, tick))]
            right += [cell(num(asks[row].size)), cell(num(ask_total))]
        rows.append([*left, *right])
    lines: list[RenderableType] = [head]
    if binary:
        lines.append(_yes_no_line(book, tick))
    if not bids and not asks:
        return Group(*lines, nothing("orders in the book"))
    return Group(*lines, fit(columns, rows, width))


def _yes_no_line(book: LocalOrderBook, tick: Decimal | None) -> Text:
    line = Text()
    if book.mid is not None:
        line.append(yes_no_text(book.mid, tick), style="bold")
        line.append(" (mid)  ", style=DIM)
    line.append("buy YES at ")
    line.append(price_text(book.best_ask, tick), style=SELL)
    line.append("  buy NO at ")
    line.append(price_text(no_price(book.best_bid), tick), style=BUY)
    return line


def trades_table(
    trades: Sequence[Trade], tick: Decimal | None = None, width: int | None = None
) -> RenderableType:
    if not trades:
        return nothing("trades")
    columns = [
        Column("Time (UTC)"),
        Column("Trade", rank=2),
        Column("Price", right=True),
        Column("Size", right=True),
        Column("Taker", rank=1),
    ]
    rows = [
        [
            cell(when(trade.created_at)),
            cell(trade.trade_id),
            cell(price_text(trade.price, tick), side_style(trade.taker_side)),
            cell(num(trade.size)),
            side_text(trade.taker_side),
        ]
        for trade in trades
    ]
    return fit(columns, rows, width)


# --------------------------------------------------------------------------- trading


def orders_table(
    orders: Sequence[Order],
    what: str = "orders",
    ticks: Ticks | None = None,
    width: int | None = None,
) -> RenderableType:
    if not orders:
        return nothing(what)
    ticks = ticks or {}
    columns = [
        Column("ID"),
        Column("Market", shrink=12),
        Column("Side"),
        Column("Type", rank=5),
        Column("Price", right=True),
        Column("Size", right=True),
        Column("Filled", rank=3, right=True),
        Column("Left", right=True),
        Column("Status", rank=2, shrink=8),
        Column("TIF", rank=6),
        Column("Created (UTC)", rank=4),
    ]
    rows = [
        [
            cell(order.id),
            cell(order.market_id),
            side_text(order.side),
            cell(order.type),
            cell(price_text(order.price, ticks.get(order.market_id))),
            cell(num(order.size)),
            cell(num(order.filled_size)),
            cell(num(order.remaining_size)),
            cell(order.status + (f" ({order.cancel_reason})" if order.cancel_reason else "")),
            cell(order.time_in_force),
            cell(when(order.created_at, seconds=False)),
        ]
        for order in orders
    ]
    return fit(columns, rows, width)


def _order_line(verb: str, order: Order, tick: Decimal | None, width: int | None) -> Text:
    line = Text(f"{verb} ")
    line.append(order.id, style="bold")
    line.append("  ")
    line.append(order.side, style=side_style(order.side))
    line.append(f" {order.size} {order.market_id}")
    if order.price is not None:
        line.append(f" @ {price_text(order.price, tick)}")
    line.append(f"  {order.type}")
    if order.time_in_force:
        line.append(f" {order.time_in_force}")
    line.append(f"  {order.status}", style="bold")
    if order.cancel_reason:
        line.append(f" ({order.cancel_reason})")
    line.append(f"  filled {order.filled_size}, remaining {order.remaining_size}")
    if order.client_order_id and (width is None or width >= line.cell_len + 48):
        # Yours, or a generated one for retries: shown where it fits (--json has it always).
        line.append(f"  client id {order.client_order_id}", style=DIM)
    return line


def order_view(
    order: Order, verb: str = "placed", tick: Decimal | None = None, width: int | None = None
) -> RenderableType:
    """One order on a line, and the trades it made on arrival."""
    line = _order_line(verb, order, tick, width)
    if not order.fills:
        return line
    return Group(line, _order_fills(order.fills, order.side, tick, width))


def _order_fills(
    fills: Sequence[OrderFill], side: str, tick: Decimal | None, width: int | None
) -> Table:
    columns = [
        Column("Trade"),
        Column("Price", right=True),
        Column("Size", right=True),
        Column("Fee (USDC)", right=True),
    ]
    rows = [
        [
            cell(fill.trade_id),
            cell(price_text(fill.price, tick), side_style(side)),
            cell(num(fill.size)),
            cell(money_text(fill.fee)),
        ]
        for fill in fills
    ]
    return fit(columns, rows, width)


def canceled_view(result: CanceledOrders) -> RenderableType:
    count = result.count or len(result.canceled)
    line = Text(f"canceled {count} order{'' if count == 1 else 's'}")
    if not result.canceled:
        return line
    return Group(line, *(Text(f"  {order_id}") for order_id in result.canceled))


def fills_table(
    fills: Sequence[Fill], ticks: Ticks | None = None, width: int | None = None
) -> RenderableType:
    if not fills:
        return nothing("fills")
    ticks = ticks or {}
    columns = [
        Column("Time (UTC)", rank=3),
        Column("Trade", rank=5),
        Column("Order", rank=4),
        Column("Market", shrink=12),
        Column("Side"),
        Column("Price", right=True),
        Column("Size", right=True),
        Column("Liquidity", rank=2),
        Column("Fee (USDC)", rank=1, right=True),
    ]
    rows = [
        [
            cell(when(fill.created_at)),
            cell(fill.trade_id),
            cell(fill.order_id),
            cell(fill.market_id),
            side_text(fill.side),
            cell(price_text(fill.price, ticks.get(fill.market_id))),
            cell(num(fill.size)),
            cell(fill.liquidity),
            cell(money_text(fill.fee)),
        ]
        for fill in fills
    ]
    return fit(columns, rows, width)


# --------------------------------------------------------------------------- account


def positions_table(
    positions: Sequence[Position], ticks: Ticks | None = None, width: int | None = None
) -> RenderableType:
    if not positions:
        return nothing("positions")
    ticks = ticks or {}
    columns = [
        Column("Market", shrink=12),
        Column("Size", right=True),
        Column("Avg price", right=True),
        Column("Current", rank=3, right=True),
        Column("Unrealized", rank=1, right=True),
        Column("Realized", rank=2, right=True),
        Column("Margin", rank=4, right=True),
    ]
    rows = []
    for position in positions:
        tick = ticks.get(position.market_id)
        # The average of fills at several prices may fall between ticks: shown exactly.
        rows.append(
            [
                cell(position.market_id),
                signed(position.size),
                cell(price_text(position.average_price, tick)),
                cell(price_text(position.current_price, tick)),
                signed_money(position.unrealized_pnl),
                signed_money(position.realized_pnl),
                cell(money_text(position.margin_used)),
            ]
        )
    return Group(fit(columns, rows, width), Text("PnL and margin in USDC", style=DIM))


def balance_table(balance: Balance, width: int | None = None) -> RenderableType:
    columns = [Column(""), Column(balance.currency, right=True)]
    rows = [
        [Text("Total balance", style="bold"), Text(money_text(balance.total_balance), "bold")],
        [cell("Available"), cell(money_text(balance.available))],
        [cell("Reserved"), cell(money_text(balance.reserved))],
    ]
    return fit(columns, rows, width)
