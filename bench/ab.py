"""A/B: BEDS variants side by side, in alternation, on one op — to measure a hot-path change.

    python -m bench.ab --variant base=. --variant nolog=.,log_requests=false \
                       --variant acks=/tmp/beds-acks [--op fetch] [--concurrency 16] [--rounds 4]
    python -m bench.ab --variant aiomysql=@5c1d2e0 --variant asyncmy=.     # a commit against .

A variant is NAME=SOURCE[,log_requests=false][,workers=N]. SOURCE is a checkout (or scratch copy)
of BEDS whose package, config and templates that server runs, or @REF: that commit of this
repository, exported to a scratch directory for the run (`git archive`; the repository is not
touched). Every variant runs in this virtualenv, so a REF's dependencies must be installed in it
(aiomysql stays a dev dependency for that A/B). Every variant serves the same database on its own
exchange; each round runs one cell per variant, in rotated order. Prints per variant: req/s, req
per server CPU-second, p50/p99, and the ratio of each to the first variant per round.
"""

from __future__ import annotations

import argparse
import asyncio
import atexit
import io
import json
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path
from typing import Any

from bench.run import RESULTS, SYSTEMS, run_cell
from bench.stack import ROOT, Stack, Variant, require_services


def export_ref(ref: str) -> Path:
    """`ref` of this repository as a scratch source tree (git archive), removed at exit."""
    target = Path(tempfile.mkdtemp(prefix="beds-ab-ref-"))
    atexit.register(shutil.rmtree, target, ignore_errors=True)
    git = ["git", "-C", str(ROOT), "archive", "--format=tar", ref]   # git from PATH
    archive = subprocess.run(git, check=True,  # noqa: S603 - the ref is the operator's own
                             capture_output=True).stdout
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(target, filter="data")
    if (ROOT / ".env").exists():   # the local passwords `make install` wrote; never committed
        shutil.copy(ROOT / ".env", target / ".env")
    return target


def parse_variant(text: str) -> tuple[str, Variant]:
    name, _, spec = text.partition("=")
    src, *options = spec.split(",")
    if src.startswith("@"):
        src = str(export_ref(src[1:]))
    node: dict[str, Any] = {}
    workers = 1
    for option in options:
        key, _, value = option.partition("=")
        if key == "workers":
            workers = int(value)
        else:
            node[key] = {"true": True, "false": False}.get(value, value)
    return f"beds-{name}", Variant(src=Path(src).resolve() if src else None, node=node,
                                   workers=workers)


async def main(args: argparse.Namespace) -> int:
    require_services()
    variants = dict(parse_variant(v) for v in args.variant)
    names = list(variants)
    system = next(s for s in SYSTEMS if s.key == f"beds-{args.op}")
    cells: dict[str, list[dict[str, Any]]] = {n: [] for n in names}
    async with Stack(names, tag="ab", variants=variants) as stack:
        for rnd in range(args.rounds):
            order = names[rnd % len(names):] + names[:rnd % len(names)]
            for name in order:
                cell = await run_cell(stack.servers[name], system, args.concurrency, args,
                                      f"{stack.run_id}{name}{rnd}")
                cells[name].append(cell)
                print(f"  r{rnd + 1} {name:<16} {cell['req_per_s']:>7.0f} req/s "
                      f"{cell['req_per_cpu_s']:>7} req/CPU-s p50 {cell['p50_ms']} ms "
                      f"other {cell['other_cores']} cores", file=sys.stderr)
    stack.cleanup_files()
    base = names[0]
    report = []
    for name in names:
        group = cells[name]
        cpu = sum(c["server_cpu_s"] for c in group)
        replies = sum(c["replies"] for c in group)
        window = sum(c["window_s"] for c in group)
        report.append({
            "variant": name, "req_per_s": round(replies / window, 1),
            "req_per_cpu_s": round(replies / cpu, 1) if cpu else None,
            "p50_ms": statistics.median(c["p50_ms"] for c in group),
            "p99_ms": statistics.median(c["p99_ms"] for c in group),
            "server_cores": round(cpu / window, 3),
            "cpu_ratio_per_round": [round(c["req_per_cpu_s"] / b["req_per_cpu_s"], 3)
                                    for c, b in zip(group, cells[base], strict=True)],
            "rps_ratio_per_round": [round(c["req_per_s"] / b["req_per_s"], 3)
                                    for c, b in zip(group, cells[base], strict=True)],
        })
    print(f"\n{args.op} at {args.concurrency} in flight, {args.rounds} rounds x "
          f"{args.duration} s; ratios against {base}")
    print("| variant | req/s | req per CPU-s | p50 ms | p99 ms | cores | req/CPU-s ratio "
          "(median, per round) | req/s ratio (median) |")
    print("|---|---:|---:|---:|---:|---:|---|---:|")
    for r in report:
        print(f"| {r['variant']} | {r['req_per_s']:,.0f} | {r['req_per_cpu_s']:,.0f} | "
              f"{r['p50_ms']} | {r['p99_ms']} | {r['server_cores']} | "
              f"{statistics.median(r['cpu_ratio_per_round']):.3f} {r['cpu_ratio_per_round']} | "
              f"{statistics.median(r['rps_ratio_per_round']):.3f} |")
    if args.out:
        RESULTS.mkdir(parents=True, exist_ok=True)
        (RESULTS / args.out).write_text(json.dumps({"report": report, "cells": cells},
                                                   indent=1, default=str))
    return 0


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="bench.ab", description=__doc__.split("\n")[0])
    parser.add_argument("--variant", action="append", required=True,
                        help="NAME=SOURCE_TREE|@REF[,log_requests=false][,workers=N]; first = base")
    parser.add_argument("--op", default="fetch", choices=["fetch", "list", "create"])
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--duration", type=float, default=6.0)
    parser.add_argument("--warmup", type=float, default=1.0)
    parser.add_argument("--max-requests", type=int, default=200_000)
    parser.add_argument("--out", help="also write the cells as JSON to bench/results/OUT")
    return parser.parse_args()


if __name__ == "__main__":
    sys.exit(asyncio.run(main(parse_args())))
