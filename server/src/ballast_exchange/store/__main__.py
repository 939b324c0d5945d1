"""Schema migrations from the command line.

    python -m ballast_exchange.store upgrade [REVISION]     # default: head
    python -m ballast_exchange.store downgrade REVISION     # e.g. base
    python -m ballast_exchange.store current

The database comes from ``--database-url`` or ``BALLAST_DATABASE_URL``.
"""

from __future__ import annotations

import argparse
import os
import sys

from alembic import command

from .database import Database


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ballast_exchange.store")
    parser.add_argument("--database-url", default=os.environ.get("BALLAST_DATABASE_URL"))
    sub = parser.add_subparsers(dest="action", required=True)
    up = sub.add_parser("upgrade", help="migrate up (default: to head)")
    up.add_argument("revision", nargs="?", default="head")
    down = sub.add_parser("downgrade", help="migrate down to a revision ('base': empty)")
    down.add_argument("revision")
    sub.add_parser("current", help="print the database's revision")
    args = parser.parse_args(argv)
    if not args.database_url:
        parser.error("no database: pass --database-url or set BALLAST_DATABASE_URL")
    database = Database(args.database_url)
    try:
        if args.action == "upgrade":
            database.upgrade(args.revision)
        elif args.action == "downgrade":
            database.downgrade(args.revision)
        with database.engine.connect() as connection:  # say where the database is now
            config = database.alembic_config()
            config.attributes["connection"] = connection
            command.current(config)
    finally:
        database.dispose()
    return 0


if __name__ == "__main__":
    sys.exit(main())
