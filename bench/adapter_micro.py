"""The MariaDB adapter's own CPU per call, without RabbitMQ: A/B of source trees (drivers).

    python -m bench.adapter_micro --tree aiomysql=@a7b0443 --tree asyncmy=. [--op create]

Each round runs, per tree and in rotated order, a fresh process that imports BEDS from that tree
(@REF: that commit, exported as bench.ab does) and makes `--calls` calls of film.fetch (or
customer.create) through `MysqlAdapter.run`, 16 at a time over a pool of 16, against a database
made for the run (dropped after it). Prints CPU microseconds per call of that process (the
adapter, the driver, the event loop: what a node pays for the database side of a request) and
calls per second, per round, and the ratio of each tree to the first. MariaDB's own CPU is not
counted; on a shared box this is steadier than bench.ab's whole-stack figures.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

from bench.ab import export_ref
from bench.stack import Stack, require_services

CHILD = r"""
import asyncio, json, secrets, sys, time
import uvloop
from pathlib import Path
from beds.adapters.base import Call
try:                                    # adapters/mysql/ is a package since the module moves
    from beds.adapters.mysql.adapter import MysqlAdapter
except ImportError:
    from beds.adapters.mysql import MysqlAdapter
from beds.config import load_settings
from beds.templates.loader import load_template

async def main(env: str, op: str, calls: int) -> dict:
    settings = load_settings(Path("config/beds.toml"), Path(env),
                             environ={"BEDS_MYSQL_PASSWORD": "x"})
    ds = settings.datasources["main"]
    adapter = MysqlAdapter(ds)
    await adapter.open()
    name, key = ("film", "fetch") if op == "fetch" else ("customer", "create")
    template = load_template(Path("templates") / f"{name}.toml")
    statement = adapter.prepare(template, template.ops[key])
    tag = secrets.token_hex(4)

    def call(i: int) -> Call:
        if op == "fetch":
            return Call(args=[1 + i % 900], timeout=5.0)
        return Call(args=[1, "Micro", "Bench", f"m{tag}{i}@example.org", None], timeout=5.0)

    async def worker(start: int, n: int) -> None:
        for i in range(start, start + n):
            await adapter.run(statement, call(i))

    per = calls // 16
    await asyncio.gather(*(worker(100_000 + w * 1000, 50) for w in range(16)))   # warm-up
    wall, cpu = time.monotonic(), time.process_time()
    await asyncio.gather(*(worker(w * per, per) for w in range(16)))
    wall, cpu = time.monotonic() - wall, time.process_time() - cpu
    await adapter.close()
    return {"us_per_call": cpu / (per * 16) * 1e6, "calls_per_s": per * 16 / wall}

uvloop.install()
print(json.dumps(asyncio.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3])))))
"""


def run_one(tree: Path, env: Path, op: str, calls: int) -> dict[str, float]:
    argv = [sys.executable, "-c", CHILD, str(env), op, str(calls)]
    out = subprocess.run(argv, cwd=tree,  # noqa: S603 - our own interpreter and script
                         env={**os.environ, "PYTHONPATH": str(tree)}, capture_output=True,
                         text=True, check=True)
    result: dict[str, float] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def source_tree(src: str) -> Path:
    return export_ref(src[1:]) if src.startswith("@") else Path(src).resolve()


async def measure(args: argparse.Namespace,
                  trees: list[tuple[str, Path]]) -> dict[str, list[dict[str, float]]]:
    results: dict[str, list[dict[str, float]]] = {name: [] for name, _ in trees}
    async with Stack([], tag="micro") as stack:
        env = stack._beds_env_file("micro")   # the run's database, its application account
        for rnd in range(args.rounds):
            for name, tree in trees[rnd % len(trees):] + trees[:rnd % len(trees)]:
                results[name].append(await asyncio.to_thread(run_one, tree, env, args.op,
                                                             args.calls))
            print(f"  r{rnd + 1} " + "  ".join(
                f"{n} {results[n][-1]['us_per_call']:.1f} us {results[n][-1]['calls_per_s']:.0f}/s"
                for n, _ in trees), file=sys.stderr)
    stack.cleanup_files()
    return results


def main() -> int:
    parser = argparse.ArgumentParser(prog="bench.adapter_micro", description=__doc__.split("\n")[0])
    parser.add_argument("--tree", action="append", required=True,
                        help="NAME=SOURCE_TREE|@REF; first = base")
    parser.add_argument("--op", default="fetch", choices=["fetch", "create"])
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--calls", type=int, default=8000)
    args = parser.parse_args()
    require_services()
    trees = [(name, source_tree(src)) for name, _, src in (t.partition("=") for t in args.tree)]
    results = asyncio.run(measure(args, trees))
    base = next(iter(results))
    print(f"\nMysqlAdapter.run, {args.op}, {args.calls} calls x {args.rounds} rounds, 16 at a "
          f"time; CPU us/call of the calling process; ratios against {base}")
    print("| tree | median us/call | min | max | calls/s (median) | ratio to base per round "
          "(median) |")
    print("|---|---:|---:|---:|---:|---|")
    for name, cells in results.items():
        us = [c["us_per_call"] for c in cells]
        ratios = [round(c["us_per_call"] / b["us_per_call"], 3)
                  for c, b in zip(cells, results[base], strict=True)]
        print(f"| {name} | {statistics.median(us):.1f} | {min(us):.1f} | {max(us):.1f} | "
              f"{statistics.median(c['calls_per_s'] for c in cells):,.0f} | "
              f"{statistics.median(ratios):.3f} {ratios} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
