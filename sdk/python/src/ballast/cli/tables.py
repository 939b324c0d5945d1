"""Tables for people (``rich``): prices and money as the decimals the API gives, buys green and
sells red, times in UTC. ``--json`` bypasses all of this."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timezone
from decimal import Decimal

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from ..models import Balance, CanceledOrders, Fill, Market, Order, OrderFill, Position, Trade
from ..orderbook import LocalOrderBook

__all__ = [
    "balance_table",
    "book_view",
    "canceled_view",
    "fills_table",
    "markets_table",
    "order_view",
    "orders_table",
    "positions_table",
    "trades_table",
]

BUY = "green"
SELL = "red"
DIM = "dim"


def num(value: Decimal | int | None) -> str:
    """A number as the API gave it (``0.870`` stays ``0.870``), never in exponent form."""
    if value is None:
        return "-"
    if isinstance(value, Decimal):
        return format(value, "f")
    return str(value)


def when(value: datetime | None) -> str:
    if value is None:
        return "-"
    return value.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S")


def side_style(side: str) -> str:
    return {"buy": BUY, "bid": BUY, "sell": SELL, "ask": SELL}.get(side.lower(), "")


def side_text(side: str) -> Text:
    return Text(side, style=side_style(side))


def signed(value: Decimal | int | None) -> Text:
    """A number colored by its sign: green above zero, red below."""
    if value is None:
        return Text("-", style=DIM)
    style = BUY if value > 0 else SELL if value < 0 else ""
    return Text(num(value), style=style)


def cell(value: str | None) -> Text:
    """Plain text, never read as markup (a market named ``[beta]`` stays ``[beta]``)."""
    return Text("-" if value is None or value == "" else value)


def table(*columns: str, title: str | None = None, right: Sequence[str] = ()) -> Table:
    grid = Table(title=title, title_justify="left", header_style="bold")
    for column in columns:
        grid.add_column(
            column,
            justify="right" if column in right else "left",
            no_wrap=column in ("ID", "Order", "Trade", "Market", "Time", "Created", "Closes"),
        )
    return grid


def nothing(what: str) -> Text:
    return Text(f"no {what}", style=DIM)


# --------------------------------------------------------------------------- market data


def markets_table(markets: Sequence[Market]) -> RenderableType:
    if not markets:
        return nothing("markets")
    grid = table(
        "ID",
        "Name",
        "Type",
        "Status",
        "Bid",
        "Ask",
        "Last",
        "Vol 24h",
        "Open int",
        "Tick",
        "Closes",
        right=("Bid", "Ask", "Last", "Vol 24h", "Open int", "Tick"),
    )
    for market in markets:
        status_style = "green" if market.status == "open" else "yellow"
        grid.add_row(
            cell(market.id),
            cell(market.name),
            cell(market.type),
            Text(market.status, style=status_style),
            Text(num(market.bid), style=BUY),
            Text(num(market.ask), style=SELL),
            cell(num(market.last_price)),
            cell(num(market.volume_24h)),
            cell(num(market.open_interest)),
            cell(num(market.rules.tick_size) if market.rules else None),
            cell(when(market.close_time)),
        )
    return grid


def book_view(book: LocalOrderBook, status: str | None = None) -> RenderableType:
    """The book side by side, best prices on the first row, with running totals; above it the
    best bid and ask, spread, mid and sequence, and ``status`` (the connection's state)."""
    bids, asks = book.bids, book.asks
    head = Text()
    head.append(book.market_id, style="bold")
    head.append("  bid ")
    head.append(num(book.best_bid), style=BUY)
    head.append("  ask ")
    head.append(num(book.best_ask), style=SELL)
    head.append(f"  spread {num(book.spread)}  mid {num(book.mid)}")
    head.append(f"  seq {num(book.exchange_seq)}", style=DIM)
    if book.time is not None:
        head.append(f"  {when(book.time)} UTC", style=DIM)
    if status:
        head.append(f"  {status}", style="yellow")
    grid = Table(header_style="bold")
    for name, style in (
        ("Bid total", DIM),
        ("Bid size", ""),
        ("Bid", BUY),
        ("Ask", SELL),
        ("Ask size", ""),
        ("Ask total", DIM),
    ):
        grid.add_column(name, justify="right", style=style)
    bid_total = ask_total = 0
    for row in range(max(len(bids), len(asks))):
        left: list[RenderableType] = ["", "", ""]
        right: list[RenderableType] = ["", "", ""]
        if row < len(bids):
            bid_total += bids[row].size
            left = [num(bid_total), num(bids[row].size), num(bids[row].price)]
        if row < len(asks):
            ask_total += asks[row].size
            right = [num(asks[row].price), num(asks[row].size), num(ask_total)]
        grid.add_row(*left, *right)
    if not bids and not asks:
        return Group(head, nothing("orders in the book"))
    return Group(head, grid)


def trades_table(trades: Sequence[Trade]) -> RenderableType:
    if not trades:
        return nothing("trades")
    grid = table("Time", "Trade", "Price", "Size", "Taker", right=("Price", "Size"))
    for trade in trades:
        grid.add_row(
            cell(when(trade.created_at)),
            cell(trade.trade_id),
            Text(num(trade.price), style=side_style(trade.taker_side)),
            cell(num(trade.size)),
            side_text(trade.taker_side),
        )
    return grid


# --------------------------------------------------------------------------- trading


def orders_table(orders: Sequence[Order], what: str = "orders") -> RenderableType:
    if not orders:
        return nothing(what)
    grid = table(
        "ID",
        "Market",
        "Side",
        "Type",
        "Price",
        "Size",
        "Filled",
        "Remaining",
        "Status",
        "TIF",
        "Created",
        right=("Price", "Size", "Filled", "Remaining"),
    )
    for order in orders:
        grid.add_row(
            cell(order.id),
            cell(order.market_id),
            side_text(order.side),
            cell(order.type),
            cell(num(order.price)),
            cell(num(order.size)),
            cell(num(order.filled_size)),
            cell(num(order.remaining_size)),
            cell(order.status + (f" ({order.cancel_reason})" if order.cancel_reason else "")),
            cell(order.time_in_force),
            cell(when(order.created_at)),
        )
    return grid


def _order_line(verb: str, order: Order) -> Text:
    line = Text(f"{verb} ")
    line.append(order.id, style="bold")
    line.append("  ")
    line.append(order.side, style=side_style(order.side))
    line.append(f" {order.size} {order.market_id}")
    if order.price is not None:
        line.append(f" @ {num(order.price)}")
    line.append(f"  {order.type}")
    if order.time_in_force:
        line.append(f" {order.time_in_force}")
    line.append(f"  {order.status}", style="bold")
    if order.cancel_reason:
        line.append(f" ({order.cancel_reason})")
    line.append(f"  filled {order.filled_size}, remaining {order.remaining_size}")
    if order.client_order_id:
        line.append(f"  client id {order.client_order_id}", style=DIM)
    return line


def order_view(order: Order, verb: str = "placed") -> RenderableType:
    """One order on a line, and the trades it made on arrival."""
    line = _order_line(verb, order)
    if not order.fills:
        return line
    return Group(line, _order_fills(order.fills, order.side))


def _order_fills(fills: Sequence[OrderFill], side: str) -> Table:
    grid = table("Trade", "Price", "Size", "Fee", right=("Price", "Size", "Fee"))
    for fill in fills:
        grid.add_row(
            cell(fill.trade_id),
            Text(num(fill.price), style=side_style(side)),
            cell(num(fill.size)),
            cell(num(fill.fee)),
        )
    return grid


def canceled_view(result: CanceledOrders) -> RenderableType:
    count = result.count or len(result.canceled)
    line = Text(f"canceled {count} order{'' if count == 1 else 's'}")
    if not result.canceled:
        return line
    return Group(line, *(Text(f"  {order_id}") for order_id in result.canceled))


def fills_table(fills: Sequence[Fill]) -> RenderableType:
    if not fills:
        return nothing("fills")
    grid = table(
        "Time",
        "Trade",
        "Order",
        "Market",
        "Side",
        "Price",
        "Size",
        "Liquidity",
        "Fee",
        right=("Price", "Size", "Fee"),
    )
    for fill in fills:
        grid.add_row(
            cell(when(fill.created_at)),
            cell(fill.trade_id),
            cell(fill.order_id),
            cell(fill.market_id),
            side_text(fill.side),
            cell(num(fill.price)),
            cell(num(fill.size)),
            cell(fill.liquidity),
            cell(num(fill.fee)),
        )
    return grid


# --------------------------------------------------------------------------- account


def positions_table(positions: Sequence[Position]) -> RenderableType:
    if not positions:
        return nothing("positions")
    grid = table(
        "Market",
        "Size",
        "Avg price",
        "Current",
        "Unrealized PnL",
        "Realized PnL",
        "Margin used",
        right=("Size", "Avg price", "Current", "Unrealized PnL", "Realized PnL", "Margin used"),
    )
    for position in positions:
        grid.add_row(
            cell(position.market_id),
            signed(position.size),
            cell(num(position.average_price)),
            cell(num(position.current_price)),
            signed(position.unrealized_pnl),
            signed(position.realized_pnl),
            cell(num(position.margin_used)),
        )
    return grid


def balance_table(balance: Balance) -> RenderableType:
    grid = table("", balance.currency, right=(balance.currency,))
    grid.add_row(Text("Total balance", style="bold"), Text(num(balance.total_balance), "bold"))
    grid.add_row(cell("Available"), cell(num(balance.available)))
    grid.add_row(cell("Reserved"), cell(num(balance.reserved)))
    return grid
