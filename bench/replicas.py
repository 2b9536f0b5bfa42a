"""Read CPU of a MariaDB primary with and without a read replica: measured, not asserted.

    python -m bench.replicas [--reads 4000] [--concurrency 32]

Starts a private MariaDB primary + GTID replica (tests/support/dbreplicas.py, its own ports and
data dirs, removed afterwards), loads `--items` rows, and runs the same read load (`item.get`
through a BEDS node in this process and beds.Client) twice: once with the datasource on the
primary alone, once with `replicas = [the replica]`. For each run it reads utime+stime of both
mariadbd processes from /proc/<pid>/stat before and after, and prints each one's CPU and the
primary's share of it. On a shared 2-core box the figures move from run to run: run it twice.

Layer: bench harness; needs RabbitMQ on localhost and mariadb-install-db/mariadbd.
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import tomli_w

from beds.client import Client
from beds.config import load_settings
from beds.node import Node
from beds.testing.node import delete_namespace
from bench.procstat import cpu_seconds
from tests.support.dbreplicas import MariadbPair, missing_mariadb
from tests.support.replica_schema import install, node_data
from tests.support.services import AMQP_URL, ROOT
from tests.support.stack import env_data


async def measure(pair: MariadbPair, home: Path, replicas: bool, args: argparse.Namespace
                  ) -> dict[str, Any]:
    exchange = f"beds-bench-replicas-{secrets.token_hex(3)}"
    data = node_data(pair, env_data({"dsn": pair.primary_dsn}, exchange), home / "templates",
                     pool_max=16)
    if not replicas:
        del data["datasources"]["main"]["replicas"]
    data["node"]["log_requests"] = False
    env = home / f"env-{exchange}.toml"
    env.write_text(tomli_w.dumps(data))
    settings = load_settings(ROOT / "config/beds.toml", env, environ={})
    node = Node.build(settings, "appServer")
    stop = asyncio.Event()
    task = asyncio.create_task(node.run(stop, handle_signals=False))
    await asyncio.wait_for(node.ready.wait(), 30)
    try:
        async with Client(AMQP_URL, exchange, default_timeout=30) as client:
            ids = list(range(1, args.items + 1))
            await asyncio.gather(*(client.call("item", "get", {"id": i}) for i in ids[:64]))
            before = {role: cpu_seconds(pair.pid(role)) for role in ("primary", "replica")}
            started = time.monotonic()
            served: dict[str, int] = {}
            gate = asyncio.Semaphore(args.concurrency)

            async def one(n: int) -> None:
                async with gate:
                    reply = await client.call("item", "get", {"id": ids[n % len(ids)]})
                    where = "primary" if reply.data[0]["server"] == 1 else "replica"
                    served[where] = served.get(where, 0) + 1

            await asyncio.gather(*(one(n) for n in range(args.reads)))
            seconds = time.monotonic() - started
            after = {role: cpu_seconds(pair.pid(role)) for role in ("primary", "replica")}
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)
        await delete_namespace(settings)
    cpu = {role: after[role] - before[role] for role in after}
    total = sum(cpu.values()) or 1e-9
    return {"replicas": replicas, "reads": args.reads, "seconds": seconds, "served": served,
            "cpu": cpu, "primary_share": cpu["primary"] / total,
            "us_per_read": {role: cpu[role] / args.reads * 1e6 for role in cpu}}


def seed(pair: MariadbPair, items: int) -> None:
    values = ", ".join(f"({i}, 1)" for i in range(1, items + 1))
    pair.query("primary", f"INSERT INTO `{pair.database}`.item VALUES {values}")
    pair.wait_caught_up()


def report(rows: list[dict[str, Any]]) -> str:
    lines = ["| run | reads | primary served | replica served | primary CPU s | replica CPU s "
             "| primary share of read CPU | primary CPU-µs/read | reads/s |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(
            f"| {'primary + replica' if r['replicas'] else 'primary only'} | {r['reads']} "
            f"| {r['served'].get('primary', 0)} | {r['served'].get('replica', 0)} "
            f"| {r['cpu']['primary']:.2f} | {r['cpu']['replica']:.2f} "
            f"| {r['primary_share']:.0%} | {r['us_per_read']['primary']:.0f} "
            f"| {r['reads'] / r['seconds']:.0f} |")
    return "\n".join(lines)


async def main(args: argparse.Namespace) -> int:
    missing = missing_mariadb()
    if missing:
        print(f"bench.replicas: {missing}", file=sys.stderr)
        return 2
    home = Path(tempfile.mkdtemp(prefix="beds-bench-replicas-"))
    pair = MariadbPair(home)
    try:
        await asyncio.to_thread(pair.start)
        await asyncio.to_thread(install, pair)
        await asyncio.to_thread(seed, pair, args.items)
        rows = [await measure(pair, home, False, args), await measure(pair, home, True, args)]
    finally:
        pair.stop()
        shutil.rmtree(home, ignore_errors=True)
    print(report(rows))
    return 0


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.replicas", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reads", type=int, default=4000, help="reads per run")
    parser.add_argument("--concurrency", type=int, default=32, help="reads in flight")
    parser.add_argument("--items", type=int, default=1000, help="rows the reads spread over")
    return parser.parse_args(argv)


if __name__ == "__main__":
    sys.exit(asyncio.run(main(parse_args())))
