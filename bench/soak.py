"""`make soak`: steady load on BEDS film.fetch while RSS and open file descriptors of the node are
sampled; bounded (default 600 s, SOAK_SECONDS / --seconds).

    python -m bench.soak [--seconds 600] [--concurrency 16] [--every 5] [--workers 1]

Writes bench/results/soak.json and soak.png and prints the growth of RSS and fds between the
end of the warm-up (the first 10% of the run, at least 20 s) and the end of the run. The issue's
bar: < 5% RSS growth.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from datetime import UTC, datetime
from typing import Any

from bench import procstat
from bench.stack import AMQP_URL, QUEUE_TYPE, ROOT, Stack, log_summary, require_services

RESULTS = ROOT / "bench" / "results"


def sample(pid: int) -> tuple[float, int, int]:
    """(RSS MB summed over the tree, open fds summed, processes) of a server."""
    pids = procstat.tree(pid)
    rss = sum(procstat.status_kb(p, "VmRSS") for p in pids) / 1024
    return rss, sum(procstat.open_fds(p) for p in pids), len(pids)


async def main(args: argparse.Namespace) -> int:
    require_services()
    RESULTS.mkdir(parents=True, exist_ok=True)
    system = "beds" if args.workers == 1 else f"beds-w{args.workers}"
    samples: list[dict[str, Any]] = []
    async with Stack([system], tag="soak") as stack:
        server = stack.servers[system]
        loadgen = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bench.loadgen", "--url", AMQP_URL, "--exchange",
            server.exchange, "--key", "film.fetch", "--body", "fetch", "--concurrency",
            str(args.concurrency), "--warmup", "0.5", "--duration", str(args.seconds),
            "--max-requests", str(int(args.seconds * 20_000)), "--progress", str(args.every),
            "--reconnect",
            cwd=ROOT, stdout=asyncio.subprocess.PIPE, preexec_fn=procstat.die_with_parent)
        assert loadgen.stdout is not None
        started = time.monotonic()
        result: dict[str, Any] = {}
        last_replies = 0
        last_t = 0.0
        async for raw in loadgen.stdout:
            record = json.loads(raw)
            if record["event"] == "progress":
                t = round(time.monotonic() - started, 1)
                rss, fds, procs = sample(server.pid)
                rate = (record["replies"] - last_replies) / max(1e-6, t - last_t)
                last_replies, last_t = record["replies"], t
                samples.append({"t": t, "rss_mb": round(rss, 2), "fds": fds, "processes": procs,
                                "replies": record["replies"], "errors": record["errors"],
                                "reconnects": record["reconnects"],
                                "req_per_s": round(rate, 1)})
                print(f"  t={t:>6.1f}s rss={rss:7.2f} MB fds={fds:4d} "
                      f"req/s={rate:7.0f} errors={record['errors']}", file=sys.stderr)
            elif record["event"] == "result":
                result = record
        await loadgen.wait()
        hwm = max(procstat.status_kb(p, "VmHWM") for p in procstat.tree(server.pid)) / 1024
    logs = log_summary(server.log)
    stack.cleanup_files()

    warm = max(20.0, args.seconds * 0.1)
    base = [s for s in samples if s["t"] >= warm][:3] or samples[:3]
    end = samples[-3:]

    def growth(key: str) -> float | None:
        if not base or not end:
            return None
        first = statistics.mean(s[key] for s in base)
        last = statistics.mean(s[key] for s in end)
        return round((last - first) / first * 100, 2) if first else None

    summary = {
        "finished": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "command": "make soak  (python -m bench.soak " + " ".join(sys.argv[1:]) + ")",
        "seconds": args.seconds, "concurrency": args.concurrency, "workers": args.workers,
        "queue_type": QUEUE_TYPE, "warmup_excluded_s": warm,
        "rss_growth_pct": growth("rss_mb"), "fds_growth_pct": growth("fds"),
        "rss_mb_start": base[0]["rss_mb"] if base else None,
        "rss_mb_end": end[-1]["rss_mb"] if end else None, "peak_rss_mb_per_process": round(hwm, 1),
        "replies": result.get("replies"), "errors": result.get("errors"),
        "req_per_s": result.get("req_per_s"), "p50_ms": result.get("p50_ms"),
        "p99_ms": result.get("p99_ms"), "connection_lost": result.get("connection_lost"),
        "loadgen_reconnects": result.get("reconnects"),
        "fds_max": max((s["fds"] for s in samples), default=None),
        "server_log": logs,
    }
    (RESULTS / "soak.json").write_text(json.dumps({"summary": summary, "samples": samples},
                                                  indent=1))
    from bench.chart import soak_chart
    soak_chart(samples, RESULTS / "soak.png",
               f"BEDS soak: film.fetch, {args.concurrency} in flight, {args.seconds:.0f} s — "
               f"RSS {summary['rss_growth_pct']}%, fds {summary['fds_growth_pct']}% after warm-up")
    met = summary["rss_growth_pct"] is not None and summary["rss_growth_pct"] < 5
    print(json.dumps({k: v for k, v in summary.items() if k != "server_log"}, indent=1))
    print(f"soak: RSS growth {summary['rss_growth_pct']}% (target < 5%: "
          f"{'met' if met else 'NOT met'}), fd growth {summary['fds_growth_pct']}%, "
          f"{summary['replies']} replies, {summary['errors']} errors; "
          "wrote bench/results/soak.json, soak.png")
    if summary["connection_lost"]:
        print(f"soak: the load generator lost its connection ({summary['connection_lost']}): "
              "the run ended early", file=sys.stderr)
    # Requests in flight when someone closed our connection are lost: errors then are expected.
    clean = not summary["errors"] or summary["loadgen_reconnects"]
    return 0 if met and clean and not summary["connection_lost"] else 1


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="bench.soak", description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=600.0)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--every", type=float, default=5.0, help="seconds between samples")
    parser.add_argument("--workers", type=int, default=1)
    return parser.parse_args()


if __name__ == "__main__":
    sys.exit(asyncio.run(main(parse_args())))
