"""The ``ballast`` command: ``ballast serve`` runs the exchange; ``ballast admin …`` operates a
running one through its admin API, with the credential ``serve`` left in the data dir."""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx

if TYPE_CHECKING:
    from .config import Settings

SERVER_FILE = "server.json"


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    result: int = args.run(args)
    return result


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ballast", description="The Ballast exchange")
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="run the exchange (sandbox on SQLite by default)")
    serve.add_argument("--env", choices=["sandbox", "production"])
    serve.add_argument("--host")
    serve.add_argument("--port", type=int)
    serve.add_argument("--data-dir", type=Path)
    serve.add_argument("--database-url")
    serve.add_argument("--redis-url")
    serve.add_argument(
        "--no-demo",
        action="store_true",
        help="sandbox without demo data (no catalogue markets, demo account or bot)",
    )
    serve.add_argument(
        "--no-bot", action="store_true", help="sandbox without the liquidity bot (empty books)"
    )
    serve.add_argument("--log-json", action="store_true", help="structured JSON logs")
    serve.set_defaults(run=run_serve)
    add_admin(commands)
    return parser


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
    )


def run_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from .api.http_limits import raise_open_files_limit
    from .app import create_app, server_options
    from .bootstrap import Runtime
    from .logs import configure_logging

    settings = serve_settings(args)
    configure_logging(settings.log_json)
    raise_open_files_limit()  # before server_options(), which caps connections below it
    runtime = Runtime(settings)
    runtime.on_started = lambda: announce(runtime)
    app = create_app(runtime)
    uvicorn.run(
        app,
        host=settings.host,
        port=settings.port,
        log_config=None,
        access_log=False,
        server_header=False,
        **server_options(settings),
    )
    return 0


def announce(runtime: Any) -> None:
    settings = runtime.settings
    base = settings.base_url
    (settings.data_dir / SERVER_FILE).write_text(json.dumps({"url": base}) + "\n")
    lines = [
        "",
        f"Ballast exchange ({settings.env}) on {base}",
        f"  Dashboard    {base}/",
        f"  API          {base}/v1",
        f"  Stream       {base.replace('http', 'ws', 1)}/stream",
        f"  OpenAPI      {base}/v1/openapi.json",
        f"  Docs         {base}/docs",
        f"  Database     {settings.sqlalchemy_url.split('@')[-1]}",
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


def add_admin(commands: Any) -> None:
    admin = commands.add_parser("admin", help="operate a running exchange")
    admin.add_argument("--data-dir", type=Path, default=Path("var"))
    admin.add_argument("--url", help="server URL (default: the one serve recorded)")
    admin.add_argument("--json", action="store_true", help="print raw JSON")
    area = admin.add_subparsers(dest="area", required=True)

    accounts = area.add_parser("accounts").add_subparsers(dest="action", required=True)
    create = accounts.add_parser("create")
    create.add_argument("--name", required=True)
    create.add_argument("--deposit")
    create.add_argument("--json", action="store_true", default=argparse.SUPPRESS)
    create.set_defaults(
        run=lambda a: call(a, "POST", "/accounts", {"name": a.name, "deposit": a.deposit})
    )
    show = accounts.add_parser("show")
    show.add_argument("account_id")
    show.set_defaults(run=lambda a: call(a, "GET", f"/accounts/{a.account_id}"))

    for action in ("deposit", "withdraw"):
        move = area.add_parser(action)
        move.add_argument("account_id")
        move.add_argument("amount")
        move.set_defaults(
            run=lambda a, act=action: call(
                a, "POST", f"/accounts/{a.account_id}/{act}", {"amount": a.amount}
            )
        )

    keys = area.add_parser("keys").add_subparsers(dest="action", required=True)
    key_create = keys.add_parser("create")
    key_create.add_argument("account_id")
    key_create.add_argument("--scopes", default="read,trade")
    key_create.add_argument("--label")
    key_create.add_argument("--tier")
    key_create.set_defaults(
        run=lambda a: call(
            a,
            "POST",
            "/keys",
            {
                "account_id": a.account_id,
                "scopes": a.scopes.split(","),
                "label": a.label,
                "tier": a.tier,
            },
        )
    )
    key_list = keys.add_parser("list")
    key_list.add_argument("--account")
    key_list.set_defaults(
        run=lambda a: call(a, "GET", "/keys" + (f"?account_id={a.account}" if a.account else ""))
    )
    revoke = keys.add_parser("revoke")
    revoke.add_argument("api_key")
    revoke.set_defaults(run=lambda a: call(a, "POST", f"/keys/{a.api_key}/revoke"))
    tier = keys.add_parser("tier")
    tier.add_argument("api_key")
    tier.add_argument("tier", help="standard, market_maker, or requests a minute")
    tier.set_defaults(run=lambda a: call(a, "POST", f"/keys/{a.api_key}/tier", {"tier": a.tier}))

    markets = area.add_parser("markets").add_subparsers(dest="action", required=True)
    m_create = markets.add_parser("create")
    m_create.add_argument("--id", required=True)
    m_create.add_argument("--name", required=True)
    m_create.add_argument("--type", required=True, choices=["binary", "index"])
    m_create.add_argument("--close-time", required=True, help="ISO-8601")
    m_create.add_argument("--tick")
    m_create.add_argument("--floor")
    m_create.add_argument("--cap")
    m_create.add_argument("--min-size", type=int)
    m_create.add_argument("--max-position", type=int)
    m_create.add_argument("--maker-fee-bps", type=int)
    m_create.add_argument("--taker-fee-bps", type=int)
    m_create.add_argument("--question")
    m_create.add_argument("--resolution-source")
    m_create.add_argument("--json", action="store_true", default=argparse.SUPPRESS)
    m_create.set_defaults(run=create_market)
    for action in ("open", "halt", "resume", "close"):
        step = markets.add_parser(action)
        step.add_argument("market_id")
        step.set_defaults(
            run=lambda a, act=action: call(a, "POST", f"/markets/{a.market_id}/{act}")
        )

    settle = area.add_parser("settle", help="propose, overturn, finalize or show a settlement")
    steps = settle.add_subparsers(dest="action", required=True)
    propose = steps.add_parser("propose", help="propose a value with its evidence (JSON file)")
    propose.add_argument("market_id")
    propose.add_argument("--value", required=True, help="0 or 1 for a binary; an index value")
    propose.add_argument("--evidence", required=True, type=Path, help="a JSON file")
    propose.set_defaults(run=propose_settlement)
    for action in ("overturn", "finalize"):
        step = steps.add_parser(action)
        step.add_argument("market_id")
        step.set_defaults(
            run=lambda a, act=action: call(a, "POST", f"/markets/{a.market_id}/settlement/{act}")
        )
    show = steps.add_parser("show", help="the settlement record, with the hash checked")
    show.add_argument("market_id")
    show.set_defaults(run=show_settlement)


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
    record = args.record
    if args.json:
        print(json.dumps(record))
        return 0
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
        if not verified:
            code = 1
    if not record["proposals"]:
        print("  no settlement proposed yet")
    return code


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
    }
    return call(args, "POST", "/markets", body)


def server_url(args: argparse.Namespace) -> str:
    if args.url:
        return str(args.url).rstrip("/")
    recorded = args.data_dir / SERVER_FILE
    if recorded.exists():
        return str(json.loads(recorded.read_text())["url"])
    return "http://127.0.0.1:8000"


def call(
    args: argparse.Namespace,
    method: str,
    path: str,
    body: dict[str, Any] | None = None,
    *,
    admin: bool = True,
    quiet: bool = False,
) -> int:
    """Call the server and print its answer; ``quiet`` leaves the answer in ``args.record``."""
    args.record = None
    token_file = args.data_dir / "admin.token"
    if not token_file.exists():
        print(
            f"error: no admin credential at {token_file} "
            "(start the server with `ballast serve`, or pass --data-dir)",
            file=sys.stderr,
        )
        return 2
    url = server_url(args)
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
            f"error: no Ballast server answers at {url} (is `ballast serve` running?)",
            file=sys.stderr,
        )
        return 2
    data = response.json() if response.content else {}
    if response.status_code == 401:
        print(
            f"error: the server at {url} refused the admin credential in {token_file}",
            file=sys.stderr,
        )
        return 2
    if response.status_code >= 400:
        error = data.get("error", {})
        print(f"error: {error.get('code')}: {error.get('message')}", file=sys.stderr)
        if error.get("details"):
            print(json.dumps(error["details"], indent=2), file=sys.stderr)
        return 1
    args.record = data
    if quiet:
        return 0
    if getattr(args, "json", False):
        print(json.dumps(data))
    else:
        print(json.dumps(data, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
