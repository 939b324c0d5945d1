"""The ``ballast`` command: ``ballast serve`` runs the exchange; ``ballast admin …`` operates a
running one through its admin API, with the credential ``serve`` left in the data dir.

Output: text for people by default (money in USDC with two decimals, prices at the market's
tick); ``--json`` prints the API's own JSON, one line, for machines."""

from __future__ import annotations

import argparse
import contextlib
import errno
import hashlib
import json
import os
import socket
import sys
import time
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx

from ballast.cli.numbers import money_text, price_text

if TYPE_CHECKING:
    from .config import Settings
    from .store.instance_lock import StoreInUse

SERVER_FILE = "server.json"
ADMIN_URL_VAR = "BALLAST_ADMIN_URL"
DATA_DIR_VAR = "BALLAST_DATA_DIR"

SERVE_EPILOG = """\
Each option is also an environment variable: BALLAST_ENV, BALLAST_HOST, BALLAST_PORT,
BALLAST_DATA_DIR, BALLAST_DATABASE_URL, BALLAST_REDIS_URL, BALLAST_DEMO=0, BALLAST_BOT=0,
BALLAST_LOG_JSON=1, BALLAST_STANDBY=1, BALLAST_NATS_URL, BALLAST_NATS_SUBJECT (a flag wins
over its variable); BALLAST_LEASE_TTL_S sets how long a stopped server keeps the database
before a standby takes over (default 5).
`make run` runs `ballast serve`, so `BALLAST_PORT=8001 make run` starts a second sandbox on
another port.

One server per data directory and per database: a second one on the same data dir or
database refuses to start (docs/adr/0015-one-server-per-store.md), unless it is a --standby
on PostgreSQL, which waits and takes over (docs/adr/0023-sequencer-lease-and-standby.md).
Gateways (`ballast gateway`) serve in front of one sequencer (`ballast sequencer`, or
`ballast serve --gateways N` for both on one host) over NATS (docs/operations.md, "Gateways
in front of a sequencer").
"""


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    result: int = args.run(args)
    return result


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ballast", description="The Ballast exchange")
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser(
        "serve",
        help="run the exchange (sandbox on SQLite by default)",
        description="Run the exchange: the REST API, the stream and the dashboard on one port.",
        epilog=SERVE_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_server_options(serve, standby=True)
    serve.add_argument(
        "--gateways",
        type=int,
        metavar="N",
        help="run one sequencer and N gateway processes on the port (needs --nats-url)",
    )
    serve.set_defaults(run=run_serve, role="server")
    sequencer = commands.add_parser(
        "sequencer",
        help="run the sequencer that gateways send their commands to (NATS)",
        description="Run the exchange as the sequencer of gateways: the engine, the journal, "
        "snapshots and the projector, taking the gateways' calls over NATS. It serves the API "
        "on its own port too.",
        epilog=SERVE_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_server_options(sequencer, standby=True)
    sequencer.set_defaults(run=run_serve, role="sequencer", gateways=None)
    gateway = commands.add_parser(
        "gateway",
        help="run a gateway in front of a sequencer (REST, stream, dashboard)",
        description="Run a gateway: the REST API, the stream and the dashboard, sending every "
        "change to the sequencer over NATS and serving reads from its own replica of the "
        "engine. Run any number, on any hosts, against the sequencer's database and NATS.",
        epilog=SERVE_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_server_options(gateway, standby=False)
    gateway.set_defaults(run=run_serve, role="gateway", gateways=None, standby=False)
    add_admin(commands)
    return parser


def add_server_options(parser: argparse.ArgumentParser, *, standby: bool) -> None:
    """The options ``serve``, ``sequencer`` and ``gateway`` share."""
    parser.add_argument(
        "--env",
        choices=["sandbox", "production"],
        help="sandbox: demo markets, a funded demo key, a faucet; production: none of them "
        "(default: sandbox)",
    )
    parser.add_argument("--host", help="address to listen on (default: 127.0.0.1)")
    parser.add_argument("--port", type=int, help="port to listen on (default: 8000)")
    parser.add_argument(
        "--data-dir",
        type=Path,
        help="the database (SQLite), the secret key and the admin credential (default: ./var)",
    )
    parser.add_argument(
        "--database-url",
        help="postgresql://user@host/db, or sqlite:///path (default: SQLite in the data dir)",
    )
    parser.add_argument(
        "--redis-url",
        help="redis://host:6379/0 for rate limits and replay protection shared across "
        "processes (default: none, kept per process)",
    )
    parser.add_argument(
        "--no-demo",
        action="store_true",
        help="sandbox without demo data (no catalogue markets, demo account or bot)",
    )
    parser.add_argument(
        "--no-bot", action="store_true", help="sandbox without the liquidity bot (empty books)"
    )
    parser.add_argument("--log-json", action="store_true", help="structured JSON logs")
    parser.add_argument(
        "--nats-url",
        help="nats://host:4222: the bus between the sequencer and its gateways "
        "(a server given one takes gateways' calls)",
    )
    parser.add_argument(
        "--nats-subject",
        help="the venue's subject prefix on NATS (default: ballast)",
    )
    if standby:
        parser.add_argument(
            "--standby",
            action="store_true",
            help="PostgreSQL: wait as a hot standby and take over when the server holding "
            "the database dies or stops (default: refuse a database in use)",
        )


# ---------------------------------------------------------------- serve


def serve_settings(args: argparse.Namespace) -> Settings:
    """The server's settings: the flags given, then ``BALLAST_*`` variables, then defaults."""
    from .config import Settings

    return Settings.load(
        env=args.env,
        host=args.host,
        port=args.port,
        data_dir=args.data_dir,
        database_url=args.database_url,
        redis_url=args.redis_url,
        demo=False if args.no_demo else None,
        bot=False if args.no_bot else None,
        log_json=True if args.log_json else None,
        standby=True if args.standby else None,
        nats_url=args.nats_url,
        nats_subject=args.nats_subject,
        gateway=True if args.role == "gateway" else None,
    )


def listen(host: str, port: int, reuse_port: bool = False) -> socket.socket:
    """The listening socket, bound before anything is announced (``OSError`` if taken).
    ``reuse_port``: gateways of one host share the port, the kernel spreading connections."""
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if reuse_port:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    try:
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    return sock


def store_in_use(settings: Settings) -> StoreInUse | None:
    """Whether another server holds this data dir or database (the locks are taken and
    given back at once)."""
    from .store.database import normalize_url
    from .store.instance_lock import InstanceLock, StoreInUse
    from .store.sequencer_lease import lease_for

    if not settings.data_dir.is_dir():
        return None
    url = normalize_url(settings.sqlalchemy_url)
    probe = InstanceLock(settings.data_dir, url, lease_for(url, "ballast-probe"))
    try:
        probe.acquire(settings.base_url)
    except StoreInUse as error:
        return error
    probe.release()
    return None


def in_use_message(error: StoreInUse) -> str:
    return (
        f"{error}.\nStop that server first, or give this one its own data directory and port: "
        "--data-dir DIR --port N (or BALLAST_DATA_DIR and BALLAST_PORT; with make: "
        "BALLAST_DATA_DIR=var2 BALLAST_PORT=8001 make run)."
    )


def refuse(message: str, command: str = "serve") -> int:
    print(f"ballast {command}: error: {message}", file=sys.stderr, flush=True)
    return 1


def run_serve(args: argparse.Namespace) -> int:
    def fail(message: str) -> int:  # "ballast <the command run>: error: …", status 1
        return refuse(message, args.command)

    import uvicorn

    from .api.http_limits import raise_open_files_limit
    from .app import create_app, server_options
    from .bootstrap import Runtime
    from .gateway_runtime import GatewayRuntime
    from .logs import configure_logging
    from .store.instance_lock import StoreInUse

    try:
        settings = serve_settings(args)
    except ValueError as error:
        return fail(str(error))
    if args.role == "sequencer" and not settings.nats_url:
        return fail("a sequencer takes its gateways' calls over NATS: give --nats-url.")
    if args.gateways is not None:
        return run_with_gateways(args, settings)
    if settings.standby and not settings.sqlalchemy_url.startswith(("postgresql", "postgres:")):
        return fail(
            "--standby needs a PostgreSQL database shared with the server it stands by for "
            "(--database-url postgresql://…)."
        )
    configure_logging(settings.log_json)
    raise_open_files_limit()  # before server_options(), which caps connections below it
    # The port first, so a busy one migrates nothing; but a data dir in use says so first,
    # as a second `make run` needs both another data dir and another port.
    try:
        sock = listen(settings.host, settings.port, settings.reuse_port)
    except OSError as error:
        busy = error.errno == errno.EADDRINUSE
        in_use = store_in_use(settings) if busy and not settings.gateway else None
        if in_use is not None:
            return fail(in_use_message(in_use))
        if not busy:
            return fail(f"cannot listen on {settings.host}:{settings.port}: {error.strerror}")
        return fail(
            f"port {settings.port} on {settings.host} is already in use (another server?).\n"
            "Choose another with --port N or BALLAST_PORT=N (with make: BALLAST_PORT=8001 "
            "make run)."
        )
    try:
        if settings.gateway:
            runtime: Runtime = GatewayRuntime(settings)
        else:
            runtime = Runtime(settings)  # takes the data dir's and the database's lock first
    except StoreInUse as error:
        sock.close()
        return fail(in_use_message(error))
    except ValueError as error:
        sock.close()
        return fail(str(error))
    runtime.on_started = lambda: announce(runtime)
    if not settings.gateway:  # the data dir's server address is the sequencer's
        runtime.on_stopping = lambda: unannounce(settings.data_dir)
    app = create_app(runtime)
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            host=settings.host,
            port=settings.port,
            log_config=None,
            access_log=False,
            server_header=False,
            **server_options(settings),
        )
    )

    def lease_lost(_: Exception) -> None:
        server.should_exit = True  # uvicorn's main loop reads it (set from the lease's thread)

    runtime.on_lease_lost = lease_lost
    try:
        with contextlib.suppress(KeyboardInterrupt):
            server.run(sockets=[sock])
    finally:
        sock.close()
    if runtime.lease is not None and runtime.lease.lost is not None:
        return fail(f"another server took the database over ({runtime.lease.lost})")
    return 0 if server.started else 1


def run_with_gateways(args: argparse.Namespace, settings: Settings) -> int:
    """``serve --gateways N``: a sequencer on a loopback port of its own and N gateways
    sharing the server's port, each its own process, until one of the sequencer or this
    process is stopped; a gateway that dies is started again."""
    import signal
    import subprocess

    def fail(message: str) -> int:  # "ballast <the command run>: error: …", status 1
        return refuse(message, args.command)

    if args.gateways < 1:
        return fail("--gateways needs at least 1")
    if not settings.nats_url:
        return fail("--gateways needs the NATS server they share with the sequencer (--nats-url)")
    if settings.standby:
        return fail("--gateways runs the sequencer itself; run a standby with `ballast sequencer`")
    with socket.socket() as probe:  # the sequencer's own port, for its /readyz and admin
        probe.bind(("127.0.0.1", 0))
        sequencer_port = probe.getsockname()[1]
    base = {**os.environ, **settings_environment(settings)}
    code = "import sys; from ballast_exchange.cli import main; sys.exit(main())"
    run = [sys.executable, "-c", code]
    sequencer_env = {**base, "BALLAST_HOST": "127.0.0.1", "BALLAST_PORT": str(sequencer_port)}
    gateway_env = {**base, "BALLAST_REUSE_PORT": "1"}

    def spawn(role: str, env: dict[str, str]) -> subprocess.Popen[bytes]:
        return subprocess.Popen([*run, role], env=env, preexec_fn=die_with_parent)

    sequencer = spawn("sequencer", sequencer_env)
    gateways: list[subprocess.Popen[bytes]] = []
    stopping = False

    def stop(signum: int, _frame: Any) -> None:
        nonlocal stopping
        stopping = True
        for child in (*gateways, sequencer):
            with contextlib.suppress(ProcessLookupError):
                child.send_signal(signum)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    # The gateways recover from what the sequencer stores: start them once it serves.
    url = f"http://127.0.0.1:{sequencer_port}/readyz"
    while not stopping and sequencer.poll() is None and not _answers(url):
        time.sleep(0.2)
    if not stopping and sequencer.poll() is None:  # a sequencer that failed to start: none
        gateways.extend(spawn("gateway", gateway_env) for _ in range(args.gateways))
        print(
            f"\n{args.gateways} gateway(s) serve {settings.base_url} (the address for clients); "
            f"the sequencer behind them: http://127.0.0.1:{sequencer_port} (admin, /metrics)",
            flush=True,
        )
    while not stopping and sequencer.poll() is None:
        time.sleep(0.5)
        for i, child in enumerate(gateways):
            if child.poll() is not None and not stopping:
                print(
                    f"ballast serve: gateway {child.pid} exited ({child.returncode}); "
                    "starting another",
                    file=sys.stderr,
                    flush=True,
                )
                gateways[i] = spawn("gateway", gateway_env)
    if not stopping:  # the sequencer stopped on its own: so does the venue
        stop(signal.SIGTERM, None)
    for child in gateways:
        child.wait()
    status = sequencer.wait()
    # uvicorn stops gracefully on SIGTERM and then dies of it, as a signalled process should.
    if stopping and status in (0, -signal.SIGTERM, -signal.SIGINT):
        return 0
    return status if status >= 0 else 128 - status


def die_with_parent() -> None:
    """In a child of ``serve --gateways``: SIGTERM when the parent dies, however it died (a
    SIGKILL gives it no chance to stop them), so no sequencer or gateway is left orphaned."""
    import ctypes
    import signal

    PR_SET_PDEATHSIG = 1
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def settings_environment(settings: Settings) -> dict[str, str]:
    """``settings`` as the ``BALLAST_*`` variables that give them to a child process."""
    from dataclasses import fields

    found: dict[str, str] = {}
    for f in fields(settings):
        value = getattr(settings, f.name)
        if value is None:
            continue
        text = ("1" if value else "0") if isinstance(value, bool) else str(value)
        found[f"BALLAST_{f.name.upper()}"] = text
    return found


def unannounce(data_dir: Path) -> None:
    """This server's address goes with it (while it still holds the data dir), so that
    ``ballast admin`` says no server is running rather than trying a dead address."""
    with contextlib.suppress(OSError):
        (data_dir / SERVER_FILE).unlink()


def announce(runtime: Any) -> None:
    settings = runtime.settings
    base = settings.base_url
    if runtime.role != "gateway":
        (settings.data_dir / SERVER_FILE).write_text(json.dumps({"url": base}) + "\n")
    role = {"server": "", "sequencer": " sequencer", "gateway": " gateway"}[runtime.role]
    lines = [
        "",
        f"Ballast exchange{role} ({settings.env}) on {base}",
        f"  Dashboard    {base}/",
        f"  API          {base}/v1",
        f"  Stream       {base.replace('http', 'ws', 1)}/stream",
        f"  OpenAPI      {base}/v1/openapi.json",
        f"  Docs         {base}/docs",
        f"  Database     {settings.sqlalchemy_url.split('@')[-1]}"
        + (f" (sequencer epoch {runtime.lease.epoch})" if runtime.lease is not None else ""),
        f"  Engine       {runtime.exchange.engine_choice.name}"
        f" ({runtime.exchange.engine_choice.reason})",
        f"  Admin token  {(settings.data_dir / 'admin.token').resolve()} (mode 0600)"
        + (" - created now" if runtime.admin_token_created else ""),
    ]
    demo = runtime.demo
    if demo:
        lines += [
            "",
            "Demo account (sandbox, funded with 100,000 USDC):",
            f"  API key     {demo['api_key']}",
            f"  API secret  {demo['api_secret']}",
            "",
            "  from ballast import BallastClient",
            f'  client = BallastClient(api_key="{demo["api_key"]}",',
            f'                         api_secret="{demo["api_secret"]}",',
            f'                         base_url="{base}/v1")',
            "  print(client.get_markets())",
            "",
            f"  curl {base}/v1/markets",
        ]
    sandbox = getattr(runtime, "sandbox", None)
    if sandbox is not None:
        listed = len(sandbox.catalogue.listings(runtime.exchange.clock()))
        bot = (
            "a liquidity bot quotes every open market (--no-bot to turn it off)"
            if settings.bot
            else "no liquidity bot (--no-bot): the books are yours"
        )
        lines += [
            "",
            f"Sandbox: {listed} catalogue markets open, rolling weekly and monthly;",
            f"  {bot};",
            "  closed catalogue markets settle from a simulated data feed after a "
            f"{settings.dispute_window_ms / 1000:g} s dispute window.",
        ]
    print("\n".join(lines), flush=True)


# ---------------------------------------------------------------- admin


class AdminError(Exception):
    pass


ADMIN_EPILOG = f"""\
Which server: --url, else ${ADMIN_URL_VAR}, else the address the server running on the data
dir recorded in DATA_DIR/{SERVER_FILE} (written by `ballast serve` while it runs). The admin
credential is always DATA_DIR/admin.token.

Output: text by default; --json (before or after the command) prints the API's JSON on one
line. Exit status: 0 done, 1 refused by the exchange (the error code and message are
printed), 2 no server, no credential, or a bad command line.
"""


def admin_command(
    area: Any, name: str, text: str, run: Callable[[argparse.Namespace], int] | None = None
) -> argparse.ArgumentParser:
    """A leaf command: its help, ``--json`` after it too, and what it runs."""
    command: argparse.ArgumentParser = area.add_parser(name, help=text, description=text)
    command.add_argument(
        "--json",
        action="store_true",
        default=argparse.SUPPRESS,
        help="print the API's JSON on one line instead of text",
    )
    if run is not None:
        command.set_defaults(run=run)
    return command


def post(path: str, **body: str) -> Callable[[argparse.Namespace], int]:
    """A command that POSTs to ``path`` (``{name}`` filled from the arguments), with a body of
    the arguments named in ``body`` (``{field: argument}``)."""

    def run(args: argparse.Namespace) -> int:
        values = vars(args)
        payload = {field: values[name] for field, name in body.items()} if body else None
        return call(args, "POST", path.format(**values), payload)

    return run


def add_admin(commands: Any) -> None:
    admin = commands.add_parser(
        "admin",
        help="operate a running exchange",
        description="Operate a running exchange through its admin API.",
        epilog=ADMIN_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    admin.add_argument(
        "--data-dir",
        type=Path,
        default=Path(os.environ.get(DATA_DIR_VAR) or "var"),
        help=f"the server's data directory, with admin.token (default: ${DATA_DIR_VAR}, "
        "else ./var)",
    )
    admin.add_argument(
        "--url",
        default=os.environ.get(ADMIN_URL_VAR) or None,
        help=f"the server, e.g. http://127.0.0.1:8000 (default: ${ADMIN_URL_VAR}, else the "
        f"one recorded in DATA_DIR/{SERVER_FILE})",
    )
    admin.add_argument(
        "--json", action="store_true", help="print the API's JSON on one line instead of text"
    )
    area = admin.add_subparsers(dest="area", required=True, metavar="AREA")

    accounts = area.add_parser(
        "accounts", help="create or show an account", description="Create or show an account."
    ).add_subparsers(dest="action", required=True, metavar="ACTION")
    create = admin_command(
        accounts,
        "create",
        "create an account with a read/trade API key (its secret is shown once)",
        lambda a: call(a, "POST", "/accounts", {"name": a.name, "deposit": a.deposit}),
    )
    create.add_argument("--name", required=True, help="the account's display name")
    create.add_argument("--deposit", metavar="USDC", help="first deposit in USDC (default: 0)")
    show = admin_command(
        accounts,
        "show",
        "an account's balance",
        lambda a: call(a, "GET", f"/accounts/{a.account_id}"),
    )
    show.add_argument("account_id", help="acc_…")

    for action, text in (("deposit", "add USDC to"), ("withdraw", "take USDC from")):
        move = admin_command(
            area,
            action,
            f"{text} an account",
            post(f"/accounts/{{account_id}}/{action}", amount="amount"),
        )
        move.add_argument("account_id", help="acc_…")
        move.add_argument("amount", help="USDC, up to six decimals")

    keys = area.add_parser(
        "keys",
        help="create, list, revoke API keys or set their tier",
        description="Create, list, revoke API keys or set their rate-limit tier.",
    ).add_subparsers(dest="action", required=True, metavar="ACTION")
    key_create = admin_command(
        keys,
        "create",
        "create an API key for an account (its secret is shown once)",
        lambda a: call(
            a,
            "POST",
            "/keys",
            {
                "account_id": a.account_id,
                "scopes": a.scopes.split(","),
                "label": a.label,
                "tier": a.tier,
            },
        ),
    )
    key_create.add_argument("account_id", help="acc_…")
    key_create.add_argument(
        "--scopes", default="read,trade", help="comma-separated: read, trade (default: read,trade)"
    )
    key_create.add_argument("--label", help="a name to tell keys apart (default: none)")
    key_create.add_argument(
        "--tier",
        help="rate-limit tier: standard, market_maker, or requests a minute (default: standard)",
    )
    key_list = admin_command(
        keys,
        "list",
        "list API keys, never their secrets",
        lambda a: call(a, "GET", "/keys" + (f"?account_id={a.account}" if a.account else "")),
    )
    key_list.add_argument("--account", metavar="ACCOUNT_ID", help="only this account's keys")
    revoke = admin_command(
        keys,
        "revoke",
        "revoke an API key, at once",
        lambda a: call(a, "POST", f"/keys/{a.api_key}/revoke"),
    )
    revoke.add_argument("api_key", help="the key (bmkt_…)")
    tier = admin_command(
        keys,
        "tier",
        "set an API key's rate-limit tier",
        lambda a: call(a, "POST", f"/keys/{a.api_key}/tier", {"tier": a.tier}),
    )
    tier.add_argument("api_key", help="the key (bmkt_…)")
    tier.add_argument("tier", help="standard, market_maker, or requests a minute")

    markets = area.add_parser(
        "markets",
        help="list a market, then open, halt, resume or close it",
        description="List a market (it starts pending), then open, halt, resume or close it.",
    ).add_subparsers(dest="action", required=True, metavar="ACTION")
    m_create = admin_command(
        markets, "create", "list a market; it starts pending until `markets open`", create_market
    )
    m_create.add_argument("--id", required=True, help="the market id, e.g. panama-may")
    m_create.add_argument("--name", required=True, help="the display name")
    m_create.add_argument(
        "--type", required=True, choices=["binary", "index"], help="binary (0 or 1) or index"
    )
    m_create.add_argument(
        "--close-time",
        required=True,
        help="when trading stops, ISO-8601 (2027-05-31T23:59:00Z); must be in the future",
    )
    m_create.add_argument(
        "--tick", help="price increment (default: 0.001 for binary, 0.1 for index)"
    )
    m_create.add_argument("--floor", help="lowest price (default: 0)")
    m_create.add_argument("--cap", help="highest price (default: 1 for binary, 100 for index)")
    m_create.add_argument("--min-size", type=int, help="smallest order in contracts (default: 1)")
    m_create.add_argument(
        "--max-position", type=int, help="largest position in contracts (default: 10000000)"
    )
    m_create.add_argument(
        "--maker-fee-bps", type=int, help="maker fee in basis points (default: 0)"
    )
    m_create.add_argument(
        "--taker-fee-bps", type=int, help="taker fee in basis points (default: 0)"
    )
    m_create.add_argument("--question", help="the question it answers (default: none)")
    m_create.add_argument(
        "--resolution-source", help="where the settlement value comes from (default: none)"
    )
    m_create.add_argument("--category", help="its category, e.g. Chokepoints (default: none)")
    m_create.add_argument(
        "--tag",
        action="append",
        dest="tags",
        metavar="TAG",
        help="a lower-case tag; repeat for more (default: none)",
    )
    m_create.add_argument(
        "--series", metavar="ID", help="the series it recurs in, e.g. suez-weekly (default: none)"
    )
    m_create.add_argument(
        "--series-title",
        metavar="TITLE",
        help='the series\' title, e.g. "Suez Canal weekly availability" (with --series)',
    )
    m_create.add_argument(
        "--event", metavar="ID", help="the event it belongs to, e.g. fed-2027-03 (default: none)"
    )
    m_create.add_argument("--event-title", metavar="TITLE", help="the event's title (with --event)")
    for action, text in (
        ("open", "open a pending market for trading"),
        ("halt", "halt trading (orders stay; new ones are refused)"),
        ("resume", "resume a halted market"),
        ("close", "close a market before its close time (then `settle propose`)"),
    ):
        step = admin_command(
            markets,
            action,
            text,
            post(f"/markets/{{market_id}}/{action}"),
        )
        step.add_argument("market_id", help="the market id")

    settle = area.add_parser(
        "settle",
        help="propose, overturn, finalize or show a settlement",
        description="Settle a closed market: propose a value with its evidence, which is "
        "published with its hash; overturn it inside the dispute window, or finalize it after.",
    )
    steps = settle.add_subparsers(dest="action", required=True, metavar="ACTION")
    propose = admin_command(
        steps,
        "propose",
        "propose a value with its evidence (a closed market)",
        propose_settlement,
    )
    propose.add_argument("market_id", help="the market id")
    propose.add_argument(
        "--value",
        required=True,
        help="0 or 1 for a binary; for an index, a value from its floor to its cap",
    )
    propose.add_argument(
        "--evidence",
        required=True,
        type=Path,
        help="a JSON file with the published source of the value",
    )
    for action, text in (
        ("overturn", "overturn the proposal inside its dispute window (the market closes again)"),
        ("finalize", "finalize the proposal after its dispute window and pay out"),
    ):
        step = admin_command(
            steps,
            action,
            text,
            post(f"/markets/{{market_id}}/settlement/{action}"),
        )
        step.add_argument("market_id", help="the market id")
    show = admin_command(
        steps, "show", "the settlement record, each evidence hash checked", show_settlement
    )
    show.add_argument("market_id", help="the market id")

    from .cli_recovery import add_recovery  # snapshot, verify, journal archive|restore

    add_recovery(area, admin_command, server_url)


def propose_settlement(args: argparse.Namespace) -> int:
    try:
        evidence = json.loads(args.evidence.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        print(f"error: cannot read evidence from {args.evidence}: {error}", file=sys.stderr)
        return 2
    body = {"value": args.value, "evidence": evidence}
    return call(args, "POST", f"/markets/{args.market_id}/settlement/propose", body)


def show_settlement(args: argparse.Namespace) -> int:
    """Print the record and check every published hash against its evidence, as anyone may."""
    code = call(args, "GET", f"/markets/{args.market_id}/settlement", admin=False, quiet=True)
    if code != 0 or args.record is None:
        return code
    if args.json:
        print(args.raw)
        return 0
    return 0 if settlement_text(args.record) else 1


def settlement_text(record: dict[str, Any]) -> bool:
    """Print a settlement record; False if a published hash does not match its evidence."""
    verified_all = True
    print(f"{record['market_id']}  status {record['status']}")
    for proposal in record["proposals"]:
        canonical = proposal.get("evidence_canonical") or ""
        verified = (
            hashlib.sha256(canonical.encode("utf-8")).hexdigest() == proposal["evidence_hash"]
        )
        print(
            f"  {proposal['outcome']:<10} value {proposal['value']}  proposed "
            f"{proposal['proposed_at']} by {proposal['proposer']}  dispute window ends "
            f"{proposal['dispute_ends_at']}"
        )
        print(
            f"             evidence sha256 {proposal['evidence_hash']} "
            + ("(matches the evidence)" if verified else "(DOES NOT MATCH the evidence)")
        )
        verified_all = verified_all and verified
    if not record["proposals"]:
        print("  no settlement proposed yet")
    return verified_all


def create_market(args: argparse.Namespace) -> int:
    body = {
        "id": args.id,
        "name": args.name,
        "type": args.type,
        "close_time": args.close_time,
        "tick_size": args.tick,
        "floor": args.floor,
        "cap": args.cap,
        "min_size": args.min_size,
        "max_position": args.max_position,
        "maker_fee_bps": args.maker_fee_bps,
        "taker_fee_bps": args.taker_fee_bps,
        "question": args.question,
        "resolution_source": args.resolution_source,
        "category": args.category,
        "tags": args.tags,
    }
    for grouping in ("series", "event"):
        group_id, title = getattr(args, grouping), getattr(args, f"{grouping}_title")
        if (group_id is None) != (title is None):
            print(f"error: --{grouping} and --{grouping}-title go together", file=sys.stderr)
            return 2
        if group_id is not None:
            body[grouping] = {"id": group_id, "title": title}
    return call(args, "POST", "/markets", body)


def server_url(args: argparse.Namespace) -> str:
    """The server to call: ``--url``, ``$BALLAST_ADMIN_URL``, or the one running on the data
    dir (never a guess: a default address may well be another exchange)."""
    if args.url:
        return str(args.url).rstrip("/")
    recorded = args.data_dir / SERVER_FILE
    try:
        found = json.loads(recorded.read_text())
        return str(found["url"]).rstrip("/")
    except FileNotFoundError:
        raise AdminError(
            f"no running Ballast server found in the data directory {args.data_dir} (no "
            f"{recorded}, which `ballast serve` writes while it runs). Start one with "
            f"`ballast serve --data-dir {args.data_dir}`, pass the data directory it uses "
            f"with --data-dir DIR (or ${DATA_DIR_VAR}), or name it with --url URL (or "
            f"${ADMIN_URL_VAR})"
        ) from None
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise AdminError(f"cannot read the server's address from {recorded}: {error}") from None


def call(
    args: argparse.Namespace,
    method: str,
    path: str,
    body: dict[str, Any] | None = None,
    *,
    admin: bool = True,
    quiet: bool = False,
) -> int:
    """Call the server and print its answer; ``quiet`` leaves the answer in ``args.record``
    (and its JSON text in ``args.raw``)."""
    args.record = None
    try:
        url = server_url(args)
    except AdminError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    token_file = args.data_dir / "admin.token"
    if not token_file.exists():
        print(
            f"error: no admin credential at {token_file} "
            "(start the server with `ballast serve`, or pass --data-dir)",
            file=sys.stderr,
        )
        return 2
    payload = None if body is None else {k: v for k, v in body.items() if v is not None}
    try:
        response = httpx.request(
            method,
            f"{url}/v1{'/admin' if admin else ''}{path}",
            json=payload,
            # Public reads go without it: a public endpoint takes a Bearer as an API key.
            headers={"Authorization": f"Bearer {token_file.read_text().strip()}"} if admin else {},
            timeout=10,
        )
    except httpx.TransportError:
        print(
            f"error: no Ballast server answers at {url} (is `ballast serve` running? "
            f"--url or ${ADMIN_URL_VAR} names another)",
            file=sys.stderr,
        )
        return 2
    try:
        data = json.loads(response.content, parse_float=Decimal) if response.content else {}
    except ValueError:
        print(f"error: {url} answered {response.status_code} without JSON", file=sys.stderr)
        return 2
    if response.status_code == 401:
        print(
            f"error: the server at {url} refused the admin credential in {token_file}",
            file=sys.stderr,
        )
        return 2
    if response.status_code >= 400:
        problem = data.get("error", {}) if isinstance(data, dict) else {}
        print(f"error: {problem.get('code')}: {problem.get('message')}", file=sys.stderr)
        for key, value in (problem.get("details") or {}).items():
            print(f"  {key}: {value}", file=sys.stderr)
        return 1
    args.record = data
    args.raw = response.text.strip()
    if quiet:
        return 0
    if getattr(args, "json", False):
        print(args.raw)
    else:
        render(data)
    return 0


# ---------------------------------------------------------------- text for people

MONEY_FIELDS = ("total_balance", "available", "reserved", "deposit", "amount", "payout_total")
LABELS = {
    "total_balance": "total",
    "api_secret": "api secret",
    "api_key": "api key",
}


def render(data: Any) -> None:
    """An admin answer as text: a table for a list of keys, a settlement record as ``settle
    show`` prints it, a market in a few lines, anything else as aligned fields."""
    if not isinstance(data, dict):
        print(data)
        return
    if isinstance(data.get("keys"), list):
        keys_text(data["keys"])
    elif "proposals" in data and "market_id" in data:
        settlement_text(data)
    elif "rules" in data and "id" in data:
        market_text(data)
    else:
        fields_text(data)


def value_text(name: str, value: Any) -> str:
    if value is None:
        return "-"
    if name in MONEY_FIELDS:
        return f"{money_text(value)} USDC"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list):
        return ",".join(str(item) for item in value) or "-"
    if isinstance(value, dict):
        return json.dumps(value, default=str)
    return str(value)


def fields_text(data: dict[str, Any]) -> None:
    shown = {k: v for k, v in data.items() if k != "currency"}
    width = max((len(LABELS.get(k, k).replace("_", " ")) for k in shown), default=0)
    for key, value in shown.items():
        label = LABELS.get(key, key).replace("_", " ")
        print(f"{label:<{width}}  {value_text(key, value)}")
    if "api_secret" in data:
        print("(the secret is shown this once: keep it now)")


def market_text(market: dict[str, Any]) -> None:
    rules = market["rules"]
    tick = rules.get("tick_size")
    print(f"{market['id']}  {market['name']}  {market['type']}  {market['status']}")
    print(f"  closes      {market.get('close_time')}")
    print(
        f"  prices      {price_text(rules.get('floor'), tick)} to "
        f"{price_text(rules.get('cap'), tick)}, tick {price_text(tick, tick)}"
    )
    print(
        f"  fees        maker {rules.get('maker_fee_bps')} bps, taker "
        f"{rules.get('taker_fee_bps')} bps"
    )
    quotes = [
        f"{name} {price_text(market.get(name), tick)}" for name in ("bid", "ask", "last_price")
    ]
    print(f"  book        {', '.join(quotes).replace('last_price', 'last')}")
    settlement = market.get("settlement")
    if settlement:
        print(
            f"  settlement  {price_text(settlement['value'], tick)}"
            f" ({'final' if settlement.get('final') else 'proposed'}; dispute window ends "
            f"{settlement.get('dispute_ends_at')})"
        )


def keys_text(keys: list[dict[str, Any]]) -> None:
    if not keys:
        print("no API keys")
        return
    columns = ("api_key", "account_id", "scopes", "label", "tier", "created_at", "revoked_at")
    rows = [[value_text(c, key.get(c)) for c in columns] for key in keys]
    heads = [c.replace("_", " ") for c in columns]
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(heads)]
    for row in [heads, *rows]:
        cells = (cell.ljust(width) for cell, width in zip(row, widths, strict=True))
        print("  ".join(cells).rstrip())


if __name__ == "__main__":
    sys.exit(main())
