"""Where a BEDS node's peak RSS comes from: VmRSS and VmHWM (the kernel's high-water mark) right
after start-up, then after film.fetch load.

Layer: bench harness. The README's "peak RSS per node <= 80 MB" is VmHWM: a transient allocation
at start (imports, the broker limit probe of beds/brokers/limits.py) counts as much as a burst
under load, so the two are read apart:

    python -m bench.rss [--duration 8] [--concurrency 16] [--workers 1]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from typing import Any

from bench import procstat
from bench.stack import Stack, require_services


def memory(root: int) -> dict[str, float]:
    """MB of the node (the busiest process of the tree: the worker with the highest VmHWM)."""
    pids = procstat.tree(root)
    workers = [p for p in pids if p != root] or pids
    hwm = max(procstat.status_kb(p, "VmHWM") for p in workers)
    rss = max(procstat.status_kb(p, "VmRSS") for p in workers)
    return {"VmRSS_mb": round(rss / 1024, 1), "VmHWM_mb": round(hwm / 1024, 1)}


async def main(args: argparse.Namespace) -> dict[str, Any]:
    from bench.run import SYSTEMS, run_cell

    require_services()
    name = "beds" if args.workers == 1 else f"beds-w{args.workers}"
    async with Stack([name], tag="rss") as stack:
        server = stack.servers[name]
        await asyncio.sleep(1.0)      # start-up's last log lines and timers
        out: dict[str, Any] = {"after_start": memory(server.pid)}
        cell = await run_cell(server, SYSTEMS[0], args.concurrency, args, f"{stack.run_id}m")
        out["after_load"] = memory(server.pid)
        out["load"] = {"concurrency": args.concurrency, "req_per_s": cell["req_per_s"],
                       "errors": cell["errors"]}
    stack.cleanup_files()
    return out


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="bench.rss", description=__doc__.split("\n")[0])
    parser.add_argument("--duration", type=float, default=8.0)
    parser.add_argument("--warmup", type=float, default=1.5)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--max-requests", type=int, default=200_000)
    return parser.parse_args(argv)


if __name__ == "__main__":
    print(json.dumps(asyncio.run(main(parse_args())), indent=1))
    sys.exit(0)
