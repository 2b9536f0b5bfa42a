"""What the peer servers share: command line, MariaDB pool settings, event loop choice."""

from __future__ import annotations

import argparse
import asyncio
import os
from collections.abc import Coroutine
from typing import Any


def parse_args(prog: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog=prog)
    parser.add_argument("--url", default="amqp://guest:guest@127.0.0.1:5672/")
    parser.add_argument("--exchange", required=True)
    parser.add_argument("--queue", required=True)
    parser.add_argument("--queue-type", default="quorum", choices=["quorum", "classic"])
    parser.add_argument("--prefetch", type=int, default=64)
    parser.add_argument("--mysql-host", default="127.0.0.1")
    parser.add_argument("--mysql-port", type=int, default=3306)
    parser.add_argument("--mysql-user", required=True)
    parser.add_argument("--mysql-db", required=True)
    parser.add_argument("--pool-max", type=int, default=16)
    parser.add_argument("--no-confirms", action="store_true",
                        help="publish replies without publisher confirms (aio-pika peer only)")
    return parser.parse_args()


def pool_kwargs(args: argparse.Namespace) -> dict[str, Any]:
    return {"host": args.mysql_host, "port": args.mysql_port, "user": args.mysql_user,
            "password": os.environ.get("BENCH_MYSQL_PASSWORD", ""), "db": args.mysql_db,
            "minsize": 2, "maxsize": args.pool_max, "autocommit": True, "charset": "utf8mb4"}


def run(main: Coroutine[Any, Any, None]) -> None:
    """uvloop when installed, as BEDS uses it: the comparison is per-message work, not loops."""
    try:
        import uvloop
        uvloop.run(main)
    except ImportError:
        asyncio.run(main)
