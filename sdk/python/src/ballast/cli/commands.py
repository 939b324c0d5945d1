"""The trader's commands: argument parsing, the API calls and what they print.

Every command prints a table, or with ``--json`` the API's own JSON (lists gathered over their
pages, with the last page's ``next_cursor``). Calls go through the SDK's client, so they are
signed, retried when safe and checked before sending exactly as the SDK does it.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import shutil
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import quote

from .._core import Auth, OrderRequest, TimeLike, check_order
from ..client import BallastClient
from ..errors import BallastError, InvalidResponseError
from ..messages import (
    Connected,
    Disconnected,
    OrderBookMessage,
    Resynced,
    StreamMessage,
    SubscriptionFailed,
)
from ..models import (
    Balance,
    CanceledOrders,
    Fill,
    Market,
    Order,
    Position,
    Trade,
    parse_datetime,
)
from ..orderbook import LocalOrderBook
from ..stream import SyncStream
from .config import ConfigError, Settings, credentials_path, resolve
from .jsonout import dumps

__all__ = ["build_parser", "run"]

PAGE_SIZE = 1000
SIDES = ("buy", "sell")
ORDER_TYPES = ("limit", "market")
TIME_IN_FORCE = ("GTC", "IOC", "FOK", "GTD")
STP = ("cancel_newest", "cancel_oldest", "cancel_both", "decrement")
ORDER_STATUSES = ("open", "filled", "canceled", "expired", "rejected", "all")
MARKET_STATUSES = ("pending", "open", "halted", "closed", "resolving", "settled")
MARKET_TYPES = ("binary", "index")

EPILOG = """\
credentials (each from the first place that has it):
  1. --api-key, --api-secret, --base-url
  2. BALLAST_API_KEY, BALLAST_API_SECRET, BALLAST_BASE_URL (or BALLAST_ENVIRONMENT)
  3. a profile in $XDG_CONFIG_HOME/ballast/credentials (~/.config/ballast/credentials):
     INI sections with api_key, api_secret and base_url; --profile NAME or BALLAST_PROFILE
     picks one, else [default]
markets, book and trades need no key.

exit status: 0 ok, 1 an error from the API or the network (printed as `error CODE: message`),
2 a usage or configuration error.

operators: `ballast serve` and `ballast admin` run and operate an exchange (they need the
ballast-exchange server package).
"""


class UsageError(Exception):
    """A command line that cannot run (exit status 2)."""


# --------------------------------------------------------------------------- the API, raw


class Api:
    """The API's JSON through the SDK's client (signing, retries, clock sync, checks)."""

    def __init__(self, client: BallastClient) -> None:
        self.client = client

    def call(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str | int | None] | None = None,
        body: Any = None,
        auth: Auth = "optional",
        idempotent: bool = True,
    ) -> dict[str, Any]:
        query = {key: str(value) for key, value in (params or {}).items() if value is not None}
        client = self.client
        return client._run(
            client._request(method, path, params=query, body=body, auth=auth, idempotent=idempotent)
        )

    def collect(
        self,
        path: str,
        key: str,
        params: Mapping[str, str | int | None],
        limit: int | None,
        auth: Auth,
    ) -> dict[str, Any]:
        """Every page of a list (or the latest ``limit`` items) as one reply: the last page's
        fields with ``key`` holding all the items."""
        items: list[Any] = []
        cursor: str | None = None
        while True:
            want = PAGE_SIZE if limit is None else min(PAGE_SIZE, limit - len(items))
            page = self.call(
                "GET", path, params={**params, "limit": want, "cursor": cursor}, auth=auth
            )
            found = page.get(key)
            if not isinstance(found, list):
                raise InvalidResponseError(
                    f"the reply has no list under {key!r}", details={"field": key}
                )
            items.extend(found)
            cursor = page.get("next_cursor")
            if not cursor or (limit is not None and len(items) >= limit):
                return {**page, key: items}

    def place(self, request: OrderRequest) -> dict[str, Any]:
        """``POST /orders``, checked first against the market's rules as ``place_order`` does."""
        client = self.client
        body = request.body()  # with a fresh client_order_id: safe to retry
        if client.validate_orders:
            rules = client._run(client._rules_for(request.market_id))
            error = None if rules is None else check_order(rules, body)
            if error is not None:
                raise error
        return self.call("POST", "/orders", body=body, auth="private", idempotent=True)


def segment(value: str) -> str:
    return quote(value, safe="")


# --------------------------------------------------------------------------- context


@dataclass
class Context:
    """What a command runs with: its settings, the output and a client made on first use."""

    settings: Settings
    json: bool
    command: str
    stack: contextlib.ExitStack
    _client: BallastClient | None = field(default=None, init=False)

    def client(self, *, private: bool = False) -> BallastClient:
        if private and not self.settings.has_key:
            raise ConfigError(
                f"`ballast {self.command}` needs an API key: set BALLAST_API_KEY and "
                f"BALLAST_API_SECRET, or add a profile to {credentials_path()} "
                "(see `ballast --help`)"
            )
        if self._client is None:
            settings = self.settings
            try:
                client = BallastClient(
                    settings.api_key,
                    settings.api_secret,
                    environment=settings.environment,
                    base_url=settings.base_url,
                    stream_url=settings.stream_url,
                )
            except ValueError as error:
                raise ConfigError(str(error)) from None
            self._client = self.stack.enter_context(client)
        return self._client

    def api(self, *, private: bool = False) -> Api:
        return Api(self.client(private=private))

    def markets(self, market_ids: Iterable[str]) -> dict[str, Market]:
        """Each market that can be read, for its tick and type (tables only: one public read
        per market; a market that cannot be read shows prices as the API gave them)."""
        found: dict[str, Market] = {}
        api = self.api()
        for market_id in sorted(set(market_ids)):
            try:
                data = api.call("GET", f"/markets/{segment(market_id)}")
                found[market_id] = Market.from_dict(data)
            except (BallastError, KeyError, TypeError, ValueError, ArithmeticError):
                continue
        return found

    def ticks(self, market_ids: Iterable[str]) -> dict[str, Decimal]:
        """Each market's tick, to write its prices at its precision."""
        return {
            market_id: market.rules.tick_size
            for market_id, market in self.markets(market_ids).items()
            if market.rules is not None
        }

    def show(self, data: Any, render: Callable[[int | None], Any]) -> None:
        """``data`` as JSON with ``--json``, else the table ``render`` makes for the terminal's
        width (and, under a list cut short by ``--limit``, a note saying so). Only the table
        needs ``rich`` (the ``cli`` extra): ``--json`` works without it."""
        if self.json:
            print(dumps(data, indent=2), flush=True)
            return
        out = console()
        out.print(render(width()))
        if isinstance(data, dict) and data.get("next_cursor"):
            out.print("(the newest only: --limit N shows more, --limit 0 all)", style="dim")


def width() -> int | None:
    """The width tables must fit: the terminal's (or ``COLUMNS``), None into a pipe or file."""
    columns = os.environ.get("COLUMNS", "")
    if columns.isdigit() and int(columns) > 0:
        return int(columns)
    if sys.stdout.isatty():
        return shutil.get_terminal_size().columns
    return None


def console() -> Any:
    from rich.console import Console

    # Into a pipe or a file no row wraps: tables are then as wide as they need.
    return Console(width=width() or 1000)


def models(cls: Callable[[dict[str, Any]], Any], items: Any) -> list[Any]:
    if not isinstance(items, list):
        raise InvalidResponseError("the reply has no list where one was expected")
    return [cls(item) for item in items]


# --------------------------------------------------------------------------- market data


def cmd_markets(ctx: Context, args: argparse.Namespace) -> int:
    data = ctx.api().call("GET", "/markets", params={"status": args.status, "type": args.type})

    def render(width: int | None) -> Any:
        from .tables import markets_table

        return markets_table(models(Market.from_dict, data.get("markets")), width)

    ctx.show(data, render)
    return 0


def cmd_trades(ctx: Context, args: argparse.Namespace) -> int:
    data = ctx.api().collect(
        f"/markets/{segment(args.market)}/trades", "trades", {}, args.limit or None, "optional"
    )

    def render(width: int | None) -> Any:
        from .tables import trades_table

        tick = ctx.ticks([args.market]).get(args.market)
        return trades_table(models(Trade.from_dict, data["trades"]), tick, width)

    ctx.show(data, render)
    return 0


def iso(moment: datetime | None) -> str:
    """As the API writes times: ``2025-03-15T10:31:05.000Z``."""
    moment = (moment or datetime.now(timezone.utc)).astimezone(timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def book_json(book: LocalOrderBook) -> dict[str, Any]:
    """The stream's book in the shape of ``GET /markets/{id}/orderbook``."""
    return {
        "market_id": book.market_id,
        "timestamp": iso(book.time),
        "seq": book.exchange_seq,
        "bids": [{"price": level.price, "size": level.size} for level in book.bids],
        "asks": [{"price": level.price, "size": level.size} for level in book.asks],
    }


def cmd_book(ctx: Context, args: argparse.Namespace) -> int:
    market: str = args.market
    with ctx.client().stream() as stream:
        book = stream.order_book(market, depth=args.depth)
        if args.once:

            def render(width: int | None) -> Any:
                from .tables import book_view

                tick, binary = market_terms(ctx, market)
                return book_view(book, tick=tick, width=width, binary=binary)

            ctx.show(book_json(book), render)
            return 0
        if ctx.json:
            print(dumps(book_json(book)), flush=True)
            for _ in changes(stream, market):
                print(dumps(book_json(stream.book(market))), flush=True)
            return 0
        from rich.live import Live

        from .tables import book_view

        out = console()
        tick, binary = market_terms(ctx, market)

        def view(status: str | None = None) -> Any:
            return book_view(stream.book(market), status, tick, width(), binary)

        if not out.is_terminal:
            # Into a file or a pipe: each state of the book after the last.
            out.print(view())
            for status in changes(stream, market):
                out.print()
                out.print(view(status))
            return 0
        with Live(view(), console=out, auto_refresh=False) as live:
            for status in changes(stream, market):
                live.update(view(status), refresh=True)
    return 0


def market_terms(ctx: Context, market_id: str) -> tuple[Decimal | None, bool]:
    """A market's tick and whether it is binary (its prices then read as the chance of YES)."""
    market = ctx.markets([market_id]).get(market_id)
    if market is None:
        return None, False
    return (market.rules.tick_size if market.rules else None), market.type == "binary"


def changes(stream: SyncStream, market: str) -> Iterator[str | None]:
    """Yield after each batch of messages that changed the book or the connection, with the
    connection's state (``None`` while the book is live). Raises the stream's error."""
    status: str | None = None
    shown = False  # the first snapshot, which the caller has shown already
    for first in stream:
        batch: list[StreamMessage] = [first, *stream.drain()]
        changed = False
        for message in batch:
            if isinstance(message, OrderBookMessage) and message.market_id == market:
                if message.is_snapshot and not shown:
                    shown = True
                    continue
                changed = True
            elif isinstance(message, Resynced):
                status, changed = None, True
            elif isinstance(message, Disconnected):
                why = message.reason or (str(message.error) if message.error else "")
                status = f"disconnected{f' ({why})' if why else ''}"
                status += ", reconnecting…" if message.reconnecting else ""
                changed = True
            elif isinstance(message, Connected) and message.reconnect:
                status, changed = "reconnected, catching up…", True
            elif isinstance(message, SubscriptionFailed) and message.market_id == market:
                raise message.error
        if changed:
            yield status


# --------------------------------------------------------------------------- trading


def cmd_order(ctx: Context, args: argparse.Namespace) -> int:
    if args.type == "limit" and args.price is None:
        raise UsageError("a limit order needs --price (or use --type market)")
    if args.tif == "GTD" and args.expire_at is None:
        raise UsageError("--tif GTD needs --expire-at")
    request = OrderRequest(
        market_id=args.market,
        side=args.side,
        order_type=args.type,
        price=args.price,
        size=args.size,
        time_in_force=args.tif,
        expire_at=args.expire_at,
        post_only=args.post_only,
        reduce_only=args.reduce_only,
        client_order_id=args.client_order_id,
        stp=args.stp,
    )
    data = ctx.api(private=True).place(request)
    ctx.show(data, lambda width: one_order(ctx, data, "placed", width))
    return 0


def one_order(ctx: Context, data: dict[str, Any], verb: str, width: int | None) -> Any:
    from .tables import order_view

    order = Order.from_dict(data)
    return order_view(order, verb, ctx.ticks([order.market_id]).get(order.market_id), width)


def cmd_cancel(ctx: Context, args: argparse.Namespace) -> int:
    if args.all == (args.order_id is not None):
        raise UsageError("give an ORDER_ID, or --all to cancel every open order")
    if args.market is not None and not args.all:
        raise UsageError("--market goes with --all")
    api = ctx.api(private=True)
    if args.all:
        data = api.call("DELETE", "/orders", params={"market_id": args.market}, auth="private")

        def render(width: int | None) -> Any:
            from .tables import canceled_view

            return canceled_view(CanceledOrders.from_dict(data))

        ctx.show(data, render)
    else:
        data = api.call("DELETE", f"/orders/{segment(args.order_id)}", auth="private")
        ctx.show(data, lambda width: one_order(ctx, data, "canceled", width))
    return 0


def cmd_orders(ctx: Context, args: argparse.Namespace) -> int:
    params = {
        "status": args.status,
        "market_id": args.market,
        "start_date": args.start,
        "end_date": args.end,
    }
    data = ctx.api(private=True).collect("/orders", "orders", params, args.limit or None, "private")
    what = "orders" if args.status == "all" else f"{args.status} orders"

    def render(width: int | None) -> Any:
        from .tables import orders_table

        orders = models(Order.from_dict, data["orders"])
        ticks = ctx.ticks(order.market_id for order in orders)
        return orders_table(orders, what, ticks, width)

    ctx.show(data, render)
    return 0


def cmd_fills(ctx: Context, args: argparse.Namespace) -> int:
    params = {"market_id": args.market, "start_date": args.start, "end_date": args.end}
    data = ctx.api(private=True).collect("/fills", "fills", params, args.limit or None, "private")

    def render(width: int | None) -> Any:
        from .tables import fills_table

        fills = models(Fill.from_dict, data["fills"])
        return fills_table(fills, ctx.ticks(fill.market_id for fill in fills), width)

    ctx.show(data, render)
    return 0


# --------------------------------------------------------------------------- account


def cmd_positions(ctx: Context, args: argparse.Namespace) -> int:
    data = ctx.api(private=True).call("GET", "/positions", auth="private")

    def render(width: int | None) -> Any:
        from .tables import positions_table

        positions = models(Position.from_dict, data.get("positions"))
        ticks = ctx.ticks(position.market_id for position in positions)
        return positions_table(positions, ticks, width)

    ctx.show(data, render)
    return 0


def cmd_balance(ctx: Context, args: argparse.Namespace) -> int:
    data = ctx.api(private=True).call("GET", "/account/balance", auth="private")

    def render(width: int | None) -> Any:
        from .tables import balance_table

        return balance_table(Balance.from_dict(data), width)

    ctx.show(data, render)
    return 0


# --------------------------------------------------------------------------- arguments


def price_arg(text: str) -> str:
    """A price as exact decimal text (sent as typed: ``0.870`` stays ``0.870``)."""
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise argparse.ArgumentTypeError(f"not a decimal number: {text!r}") from None
    if not value.is_finite():
        raise argparse.ArgumentTypeError(f"not a finite number: {text!r}")
    return text


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be at least 1: {text!r}")
    return value


def limit_arg(text: str) -> int:
    """A list length: 0 means every item."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 (all) or more: {text!r}")
    return value


def depth_arg(text: str) -> int:
    value = positive_int(text)
    if value > 100:
        raise argparse.ArgumentTypeError("the depth is 1 to 100")
    return value


_RELATIVE = re.compile(r"^\+(\d+)([smhd])$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}


def time_arg(text: str) -> TimeLike:
    """ISO-8601 (``2025-04-30T12:00:00Z``), Unix milliseconds, or from now (``+90s``, ``+15m``,
    ``+2h``, ``+1d``)."""
    text = text.strip()
    relative = _RELATIVE.match(text)
    if relative:
        amount, unit = int(relative.group(1)), _UNITS[relative.group(2)]
        return datetime.now(timezone.utc) + timedelta(**{unit: amount})
    if text.isdigit():
        return int(text)
    try:
        return parse_datetime(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"not a time: {text!r} (ISO-8601, Unix milliseconds, or +30s/+15m/+2h/+1d)"
        ) from None


def date_arg(text: str) -> str:
    """A date or time for a list's window, as the API takes it (checked, sent as typed)."""
    if text.strip().isdigit():
        return text.strip()
    try:
        parse_datetime(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"not a date or time: {text!r} (2025-03-01, ISO-8601 or Unix milliseconds)"
        ) from None
    return text.strip()


def build_parser() -> argparse.ArgumentParser:
    # Shared options work before or after the command (`ballast --json markets` and
    # `ballast markets --json`); SUPPRESS keeps a subcommand from resetting the first.
    common = argparse.ArgumentParser(add_help=False)
    options = common.add_argument_group("connection and output")
    options.add_argument(
        "--json",
        action="store_true",
        default=argparse.SUPPRESS,
        help="print the API's JSON instead of a table",
    )
    options.add_argument(
        "--profile", metavar="NAME", default=argparse.SUPPRESS, help="credentials profile"
    )
    options.add_argument("--api-key", metavar="KEY", default=argparse.SUPPRESS)
    options.add_argument(
        "--api-secret",
        metavar="SECRET",
        default=argparse.SUPPRESS,
        help="(visible to other users in the process list: prefer the environment or a profile)",
    )
    options.add_argument(
        "--base-url",
        metavar="URL",
        default=argparse.SUPPRESS,
        help="the REST API, e.g. http://127.0.0.1:8000/v1",
    )

    parser = argparse.ArgumentParser(
        prog="ballast",
        description="Trade on a Ballast exchange from the command line.",
        epilog=EPILOG,
        parents=[common],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, handler: Callable[[Context, argparse.Namespace], int], text: str) -> Any:
        sub = commands.add_parser(name, parents=[common], help=text, description=text)
        sub.set_defaults(handler=handler)
        return sub

    markets = command("markets", cmd_markets, "list the markets")
    markets.add_argument("--status", choices=MARKET_STATUSES)
    markets.add_argument("--type", choices=MARKET_TYPES)

    book = command("book", cmd_book, "a market's order book, live from the stream")
    book.add_argument("market", metavar="MARKET_ID")
    book.add_argument(
        "--depth", type=depth_arg, default=10, metavar="N", help="levels a side (default 10)"
    )
    book.add_argument("--once", action="store_true", help="print the book once and exit")

    trades = command("trades", cmd_trades, "a market's latest public trades")
    trades.add_argument("market", metavar="MARKET_ID")
    trades.add_argument(
        "--limit", type=limit_arg, default=50, metavar="N", help="how many (default 50, 0: all)"
    )

    order = command("order", cmd_order, "place an order")
    order.add_argument("side", choices=SIDES)
    order.add_argument("market", metavar="MARKET_ID")
    order.add_argument(
        "--price", type=price_arg, metavar="P", help="limit price (a market order's protection)"
    )
    order.add_argument("--size", type=positive_int, required=True, metavar="N", help="contracts")
    order.add_argument("--type", choices=ORDER_TYPES, default="limit")
    order.add_argument(
        "--tif", choices=TIME_IN_FORCE, help="time in force (GTC for limit, IOC for market)"
    )
    order.add_argument(
        "--expire-at",
        type=time_arg,
        metavar="TIME",
        help="for GTD: ISO-8601, Unix ms, or from now (+90s, +15m, +2h, +1d)",
    )
    order.add_argument("--post-only", action="store_true", help="never take liquidity")
    order.add_argument("--reduce-only", action="store_true", help="only reduce the position")
    order.add_argument(
        "--client-order-id", metavar="ID", help="your id (default: a fresh one; retries are safe)"
    )
    order.add_argument("--stp", choices=STP, help="self-trade prevention")

    cancel = command("cancel", cmd_cancel, "cancel an order, or every open order with --all")
    cancel.add_argument("order_id", metavar="ORDER_ID", nargs="?")
    cancel.add_argument("--all", action="store_true", help="cancel every open order")
    cancel.add_argument("--market", metavar="MARKET_ID", help="with --all: only in this market")

    orders = command("orders", cmd_orders, "your orders (open ones by default)")
    orders.add_argument("--market", metavar="MARKET_ID")
    orders.add_argument("--status", choices=ORDER_STATUSES, default="open")
    orders.add_argument("--start", type=date_arg, metavar="DATE", help="from this date or time")
    orders.add_argument("--end", type=date_arg, metavar="DATE", help="to this date (inclusive)")
    orders.add_argument(
        "--limit", type=limit_arg, default=100, metavar="N", help="newest N (default 100, 0: all)"
    )

    fills = command("fills", cmd_fills, "your fills")
    fills.add_argument("--market", metavar="MARKET_ID")
    fills.add_argument("--start", type=date_arg, metavar="DATE", help="from this date or time")
    fills.add_argument("--end", type=date_arg, metavar="DATE", help="to this date (inclusive)")
    fills.add_argument(
        "--limit", type=limit_arg, default=50, metavar="N", help="newest N (default 50, 0: all)"
    )

    command("positions", cmd_positions, "your positions with PnL and margin")
    command("balance", cmd_balance, "your balance: total, available and reserved")
    return parser


# --------------------------------------------------------------------------- running


def print_error(error: BallastError) -> None:
    print(f"error: {error.code}: {error.message}", file=sys.stderr)
    if error.code == "NETWORK_ERROR":
        return
    for key, value in error.details.items():
        text = value if isinstance(value, str) else dumps(value)
        print(f"  {key}: {text}", file=sys.stderr)


def run(argv: Sequence[str]) -> int:
    """Parse ``argv`` (without the program name), run the command, return the exit status."""
    args = build_parser().parse_args(list(argv))
    flags = {
        "api_key": getattr(args, "api_key", None),
        "api_secret": getattr(args, "api_secret", None),
        "base_url": getattr(args, "base_url", None),
    }
    try:
        with contextlib.ExitStack() as stack:
            settings = resolve(flags, profile=getattr(args, "profile", None))
            ctx = Context(settings, bool(getattr(args, "json", False)), args.command, stack)
            handler: Callable[[Context, argparse.Namespace], int] = args.handler
            return handler(ctx, args)
    except (ConfigError, UsageError) as error:
        print(f"ballast {args.command}: error: {error}", file=sys.stderr)
        return 2
    except BallastError as error:
        print_error(error)
        return 1
    except ModuleNotFoundError as error:
        if error.name != "rich" and not (error.name or "").startswith("rich."):
            raise
        print(
            "ballast: tables need the `cli` extra: pip install 'ballast-markets[cli]' "
            "(or use --json)",
            file=sys.stderr,
        )
        return 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # The reader went away (`ballast orders | head`): stop quietly.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 1
