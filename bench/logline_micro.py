"""CPU per request log line: `Consumer._log` alone, rendered as JSON lines to /dev/null.

    python -m bench.logline_micro [--lines 200000] [--rounds 5] [--traceparent]
    python -m bench.logline_micro --tree main=/tmp/beds-main --tree new=.

Each round runs, per mode and in rotated order, a fresh process that calls
`setup_logging("info", json=True)` as a node does, then `Consumer._log` `--lines` times for the
same request (log_requests on, no metrics, no audit: only the line). Modes: `fast`, the line as
the node writes it now, and `structlog`, the same call with the JSON fast path switched off so
structlog's processor chain renders it (on a tree without the fast path both are the chain).
Prints microseconds of CPU per line per round, the median per mode, and the ratio to the first.
With --traceparent the request carries a W3C traceparent header (trace_id/span_id fields).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

CHILD = r"""
import json, os, sys, time
from types import SimpleNamespace
sys.stdout = open(os.devnull, "w")     # the request lines; LineLogger writes to .buffer
import beds.log
from beds.log import setup_logging
setup_logging("info", json=True, node="bench", role="node")
if sys.argv[2] == "structlog" and hasattr(beds.log, "use_fast_lines"):
    beds.log.use_fast_lines(False)
from beds.amqp import Properties
from beds.brokers.consumer import Consumer, Shared
from beds.config import BrokerSettings, OpKind, QueueType

broker = BrokerSettings(name="rBroker", queue="q", kinds=(OpKind.READ,), templates=("*",),
                        instances=1, prefetch=16, queue_type=QueueType.QUORUM, retries=3)
shared = Shared(node="bench", dispatcher=None, link=None, publisher=None,
                max_message_bytes=1 << 20, max_reply_bytes=1 << 24, log_requests=True,
                grace_seconds=1)
consumer = Consumer(broker, 1, shared)
headers = {"x-deadline": int((time.time() + 60) * 1000)}
if sys.argv[3] == "1":
    headers["traceparent"] = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
props = Properties(correlation_id="c1", message_id="c1", reply_to="amq.rabbitmq.reply-to.x",
                   headers=headers, user_id="app")
delivery = SimpleNamespace(redelivered=False)
meta = {"template": "film", "op": "fetch"}
n = int(sys.argv[1])
for _ in range(5000):                  # warm-up: structlog caches the logger on first use
    consumer._log(meta, "ok", 1, time.perf_counter(), props, delivery, 0)
start = time.process_time()
for _ in range(n):
    consumer._log(meta, "ok", 1, time.perf_counter(), props, delivery, 0)
us = (time.process_time() - start) / n * 1e6
sys.stdout = sys.__stdout__
print(json.dumps({"us_per_line": us}))
"""


def run_one(tree: Path, mode: str, lines: int, traceparent: bool) -> float:
    argv = [sys.executable, "-c", CHILD, str(lines), mode, str(int(traceparent))]
    out = subprocess.run(argv, cwd=tree,  # noqa: S603 - our own interpreter and script
                         env={**os.environ, "PYTHONPATH": str(tree)}, capture_output=True,
                         text=True, check=True)
    return float(json.loads(out.stdout.strip().splitlines()[-1])["us_per_line"])


def main() -> int:
    parser = argparse.ArgumentParser(prog="bench.logline_micro",
                                     description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--tree", action="append",
                        help="NAME=SOURCE_TREE (both modes per tree); default: this tree")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--lines", type=int, default=200_000)
    parser.add_argument("--traceparent", action="store_true",
                        help="the request carries a W3C traceparent header")
    args = parser.parse_args()
    trees = [(name, Path(path).resolve())
             for name, _, path in (t.partition("=") for t in args.tree or [f"this={Path.cwd()}"])]
    runs = [(f"{name}:{mode}", tree, mode) for name, tree in trees
            for mode in ("structlog", "fast")]
    results: dict[str, list[float]] = {label: [] for label, _, _ in runs}
    for rnd in range(args.rounds):
        order = runs[rnd % len(runs):] + runs[:rnd % len(runs)]
        for label, tree, mode in order:
            results[label].append(run_one(tree, mode, args.lines, args.traceparent))
        print(f"  r{rnd + 1} " + "  ".join(f"{label} {results[label][-1]:.2f} us"
                                            for label, _, _ in runs), file=sys.stderr)
    base = statistics.median(results[runs[0][0]])
    trace = "with" if args.traceparent else "without"
    print(f"CPU per request log line ({args.lines} lines x {args.rounds} rounds, {trace} "
          f"traceparent), median:")
    for label, _, _ in runs:
        med = statistics.median(results[label])
        print(f"  {label:<24} {med:6.2f} us/line   x{med / base:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
