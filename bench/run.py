"""`make bench`: BEDS against hand-written aio-pika servers and FastStream, in one run.

    python -m bench.run [--duration 8] [--warmup 1.5] [--rounds 2] [--concurrency 1,16,64]
                        [--budget 450] [--profile]

Servers (each its own process, exchange and queues; one database made for this run):
  beds        `beds --role appServer`            film.fetch, film.list, customer.create
  beds-w2     `beds --role appServer --workers 2` film.fetch at 16 and 64 in flight
  aiopika     bench/peers/aiopika_server.py       the same film.fetch, written by hand (quorum,
                                                  confirmed replies: BEDS's semantics)
  aiopika-classic  the same, --queue-type classic --no-confirms (the lighter set-up)
  faststream  bench/peers/faststream_server.py    the same film.fetch, FastStream subscriber
One load generator process per cell (bench/loadgen.py). Cells alternate between systems inside a
round; a second round runs them in reverse order. Per cell: req/s, p50/p99, server CPU-seconds
(utime+stime of the server's process tree over the measured window), req per server CPU-second,
peak RSS, errors, and CPU-µs per request of the server, RabbitMQ, MariaDB and the load generator.
Output (bench.report): the tables and the issue's targets (PASS/MISS) on stdout,
bench/results/latest.{md,json,png}; with --profile, a py-spy profile of BEDS at 16 in flight
(bench.profile: profile.svg, profile.md with the libraries-vs-BEDS split).
The whole run is bounded by --budget seconds: cells that would not fit are skipped and listed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from bench import procstat, profile
from bench.report import aggregate, markdown, ratios
from bench.stack import AMQP_URL, QUEUE_TYPE, ROOT, Server, Stack, log_summary, require_services

RESULTS = ROOT / "bench" / "results"
SAMPLE_EVERY = 0.5   # seconds between RSS samples inside a cell


@dataclass(frozen=True)
class System:
    key: str          # row name in the table
    server: str       # Stack system name
    routing_key: str
    body: str         # bench.loadgen --body
    label: str
    levels: tuple[int, ...] | None = None   # concurrency levels; None = all


SYSTEMS = [
    System("beds-fetch", "beds", "film.fetch", "fetch", "BEDS film.fetch (procedure)"),
    System("beds-list", "beds", "film.list", "list", "BEDS film.list (view, 10 rows)", (1, 16)),
    System("beds-create", "beds", "customer.create", "create", "BEDS customer.create (write)",
           (1, 16)),
    System("aiopika-fetch", "aiopika", "film.fetch", "fetch", "aio-pika + aiomysql (by hand)"),
    System("aiopika-classic-fetch", "aiopika-classic", "film.fetch", "fetch",
           "aio-pika by hand, classic queue, no confirms"),
    System("faststream-fetch", "faststream", "film.fetch", "fetch", "FastStream + aiomysql"),
    System("beds-w2-fetch", "beds-w2", "film.fetch", "fetch", "BEDS film.fetch --workers 2",
           (16, 64)),
]


# -- one cell ---------------------------------------------------------------------------------

async def run_cell(server: Server, system: System, concurrency: int, args: argparse.Namespace,
                   tag: str) -> dict[str, Any]:
    """One load generator against one server; CPU and RSS sampled over its measured window."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bench.loadgen", "--url", AMQP_URL, "--exchange", server.exchange,
        "--key", system.routing_key, "--body", system.body, "--tag", tag,
        "--concurrency", str(concurrency), "--warmup", str(args.warmup),
        "--duration", str(args.duration), "--max-requests", str(args.max_requests),
        cwd=ROOT, stdout=asyncio.subprocess.PIPE, preexec_fn=procstat.die_with_parent)
    assert proc.stdout is not None
    cpu = procstat.CpuWindow([server.pid])
    rabbit = procstat.CpuWindow(procstat.pids_named("beam.smp"))
    maria = procstat.CpuWindow(procstat.pids_named("mariadbd", "mysqld"))
    rss: dict[int, int] = {}
    busy0 = busy1 = (0.0, 0.0)
    sampler: asyncio.Task[None] | None = None
    result: dict[str, Any] = {}
    try:
        async for raw in proc.stdout:
            record = json.loads(raw)
            if record["event"] == "window_start":
                for window in (cpu, rabbit, maria):
                    window.start()
                busy0 = procstat.system_busy()
                sampler = asyncio.create_task(sample_rss(server.pid, rss))
            elif record["event"] == "window_end":
                for window in (cpu, rabbit, maria):
                    window.stop()
                busy1 = procstat.system_busy()
                if sampler is not None:
                    sampler.cancel()
            elif record["event"] == "result":
                result = record
    finally:
        if sampler is not None:
            sampler.cancel()
        if proc.returncode is None and not result:
            proc.kill()
        await proc.wait()
    if not result:
        raise RuntimeError(f"loadgen for {system.key} at {concurrency} gave no result")
    if result.get("connection_lost"):
        raise RuntimeError(f"the load generator lost its connection: {result['connection_lost']}")
    window = result["window_s"]
    replies = result["replies"]
    busy = (busy1[0] - busy0[0]) / max(1.0, busy1[1] - busy0[1])
    cores = os.cpu_count() or 1
    loadgen_cpu = result["loadgen_cpu_s"]
    # CPU of the machine that none of server, load generator, RabbitMQ, MariaDB used: another
    # job on the box. High values mark a disturbed cell.
    other = busy * cores * window - cpu.seconds - loadgen_cpu - rabbit.seconds - maria.seconds
    workers = [pid for pid in rss if pid != server.pid] or [server.pid]
    return {
        "system": system.key, "label": system.label, "concurrency": concurrency,
        "req_per_s": result["req_per_s"], "replies": replies, "errors": result["errors"],
        "error_samples": result["error_samples"],
        "p50_ms": result["p50_ms"], "p90_ms": result["p90_ms"], "p99_ms": result["p99_ms"],
        "max_ms": result["max_ms"], "window_s": window,
        "server_cpu_s": round(cpu.seconds, 3), "rabbitmq_cpu_s": round(rabbit.seconds, 3),
        "mariadb_cpu_s": round(maria.seconds, 3), "loadgen_cpu_s": round(loadgen_cpu, 3),
        "server_cores": round(cpu.seconds / window, 3) if window else None,
        "req_per_cpu_s": round(replies / cpu.seconds, 1) if cpu.seconds else None,
        "rss_mb": round(max(rss.get(p, 0) for p in workers) / 1024, 1),
        "rss_total_mb": round(sum(rss.values()) / 1024, 1),
        "processes": len(rss), "vanished_pids": cpu.vanished,
        "loadgen_cores": round(loadgen_cpu / window, 3) if window else None,
        "rabbitmq_cores": round(rabbit.seconds / window, 3) if window else None,
        "mariadb_cores": round(maria.seconds / window, 3) if window else None,
        "other_cores": round(max(0.0, other) / window, 3) if window else None,
        "box_busy": round(busy, 3), "sample": result["sample"],
    }


async def sample_rss(root: int, peak: dict[int, int]) -> None:
    """Peak VmRSS (kB) per process of the tree, sampled until cancelled."""
    while True:
        for pid in procstat.tree(root):
            peak[pid] = max(peak.get(pid, 0), procstat.status_kb(pid, "VmRSS"))
        await asyncio.sleep(SAMPLE_EVERY)


async def box_busy(seconds: float) -> tuple[float, float]:
    """(share of the machine busy, RabbitMQ cores) over `seconds` before any bench load: the
    broker's background (other clients on this shared box) that its CPU-µs per request carry."""
    rabbit = procstat.CpuWindow(procstat.pids_named("beam.smp"))
    rabbit.start()
    busy0, total0 = procstat.system_busy()
    await asyncio.sleep(seconds)
    busy1, total1 = procstat.system_busy()
    return (busy1 - busy0) / max(1.0, total1 - total0), rabbit.stop() / seconds


def check_sample(system: System, cell: dict[str, Any]) -> str | None:
    """The work was really done: a fetch returns the film row, a list 10 rows, a create an id."""
    sample = cell.get("sample") or {}
    data = sample.get("data") or []
    if system.body == "fetch" and not (data and "FID" in data[0] and "title" in data[0]):
        return "fetch reply without the film row"
    if system.body == "list" and len(data) != 10:
        return f"list reply with {len(data)} rows, expected 10"
    if system.body == "create" and not (sample.get("out") or {}).get("customer_id"):
        return "create reply without out.customer_id"
    return None


# -- main -------------------------------------------------------------------------------------

def _score(cell: dict[str, Any]) -> tuple[bool, float]:
    """Which of a cell and its re-run to keep: no errors first, then the quieter box."""
    return cell["errors"] > 0, cell["other_cores"]


async def main(args: argparse.Namespace) -> int:
    require_services()
    started = time.monotonic()
    RESULTS.mkdir(parents=True, exist_ok=True)
    levels = [int(c) for c in args.concurrency.split(",")]
    systems = [s for s in SYSTEMS if s.key in args.systems.split(",")]
    servers = sorted({s.server for s in systems})
    cells: list[dict[str, Any]] = []
    skipped: list[str] = []
    warnings: list[str] = []    # reported; the run still counts
    failures: list[str] = []    # wrong replies, errors, a server that crashed: exit 1
    profile_time = (args.warmup + args.duration + 2) * 2 if args.profile else 0.0
    per_cell = args.warmup + args.duration + 1.5
    quiet, rabbit_idle = await box_busy(2.0)
    if quiet > 0.15:
        warnings.append(f"the machine was {quiet:.0%} busy before the run started")
    print(f"bench: machine {quiet:.0%} busy before start; starting {', '.join(servers)} ...",
          file=sys.stderr)
    async with Stack(servers) as stack:
        print(f"bench: run {stack.run_id}: servers ready in {time.monotonic() - started:.1f}s; "
              f"pids {', '.join(f'{s.name}={s.pid}' for s in stack.servers.values())}",
              file=sys.stderr)
        async def measure(system: System, level: int, rnd: int, tag: str) -> dict[str, Any]:
            name = f"{system.key}@{level}#r{rnd}"
            server = stack.servers[system.server]
            try:
                cell = await run_cell(server, system, level, args, tag)
            except (RuntimeError, ValueError) as exc:
                # e.g. someone ran `rabbitmqctl close_all_connections`: let the servers
                # reconnect, then try the cell once more.
                warnings.append(f"{name}: {exc}; retried")
                await stack.wait_ready(server)
                cell = await run_cell(server, system, level, args, tag + "b")
            cell["round"], cell["kept"] = rnd, True
            cell["issue"] = check_sample(system, cell)
            print(f"  {name:<26} {cell['req_per_s']:>8.0f} req/s  p50 {cell['p50_ms']} ms  "
                  f"p99 {cell['p99_ms']} ms  server {cell['server_cores']} cores  "
                  f"{cell['req_per_cpu_s']} req/CPU-s  rss {cell['rss_mb']} MB  "
                  f"err {cell['errors']}  other {cell['other_cores']} cores", file=sys.stderr)
            return cell

        for rnd in range(1, args.rounds + 1):
            order = systems if rnd % 2 else systems[::-1]
            for level in levels:
                for system in order:
                    if system.levels is not None and level not in system.levels:
                        continue
                    if time.monotonic() - started + per_cell > args.budget - profile_time:
                        skipped.append(f"{system.key}@{level}#r{rnd}")
                        continue
                    cells.append(await measure(system, level, rnd,
                                               f"{stack.run_id}r{rnd}c{level}"))
        # A cell during which another job on the machine took CPU is measured again while the
        # budget allows; of the two, the less disturbed one is kept (same rule for every system).
        disturbed = sorted((c for c in cells if c["other_cores"] > args.disturbed
                            or c["errors"]), key=lambda c: (-c["errors"], -c["other_cores"]))
        for old in disturbed:
            if time.monotonic() - started + per_cell > args.budget - profile_time:
                break
            system = next(s for s in systems if s.key == old["system"])
            new = await measure(system, old["concurrency"], old["round"],
                                f"{stack.run_id}x{old['round']}c{old['concurrency']}")
            new["rerun_of_other_cores"] = old["other_cores"]
            cells.append(new)
            worse = old if _score(new) < _score(old) else new
            worse["kept"] = False
        reruns = sum(1 for c in cells if "rerun_of_other_cores" in c)
        for cell in cells:   # a cell replaced by its re-run is only worth a warning
            name = f"{cell['system']}@{cell['concurrency']}#r{cell['round']}"
            found = ([cell["issue"]] if cell["issue"] else []) + (
                [f"{cell['errors']} errors, e.g. {cell['error_samples'][:3]}"]
                if cell["errors"] else [])
            (failures if cell["kept"] else warnings).extend(
                f"{name}{'' if cell['kept'] else ' (replaced)'}: {f}" for f in found)
        if args.profile:
            notes = await profile.record(stack, SYSTEMS[0], args)
            warnings += [n for n in notes if n.startswith("py-spy")]
        peak_rss = {}
        for name, server in stack.servers.items():
            pids = procstat.tree(server.pid)
            workers = [p for p in pids if p != server.pid] or pids
            peak_rss[name] = round(max(procstat.status_kb(p, "VmHWM") for p in workers) / 1024, 1)
    logs = {name: log_summary(s.log) for name, s in stack.servers.items()}
    exit_codes = {name: s.exit_code for name, s in stack.servers.items()}
    stack.cleanup_files()
    for name, code in exit_codes.items():
        if code not in (0, None):
            failures.append(f"{name} exited {code} on SIGTERM")

    rows = aggregate(cells, [s.key for s in SYSTEMS])
    targets = ratios(rows, peak_rss)
    meta = {
        "finished": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "command": "make bench  (python -m bench.run " + " ".join(sys.argv[1:]) + ")",
        "machine": f"{platform.node()} ({os.cpu_count()} cores, {platform.machine()}, "
                   f"Python {platform.python_version()})",
        "rounds": args.rounds, "duration": args.duration, "warmup": args.warmup,
        "queue_type": QUEUE_TYPE, "levels": levels, "skipped": skipped, "warnings": warnings,
        "failures": failures, "reruns": reruns, "disturbed_threshold_cores": args.disturbed,
        "elapsed_s": round(time.monotonic() - started, 1), "peak_rss_mb": peak_rss,
        "server_exit_codes": exit_codes, "server_logs": logs,
        "rabbitmq_busy_wait": procstat.beam_busy_wait(),
        "rabbitmq_cores_before_load": round(rabbit_idle, 3),
    }
    text = markdown(rows, targets, meta)
    (RESULTS / "latest.md").write_text(text)
    (RESULTS / "latest.json").write_text(json.dumps(
        {"meta": meta, "rows": rows, "targets": targets, "cells": cells}, indent=1,
        default=str))
    from bench.chart import bench_chart
    bench_chart(rows, RESULTS / "latest.png", meta)
    if args.profile and (RESULTS / "profile.raw.txt").exists():
        (RESULTS / "profile.md").write_text(profile.summarize(RESULTS / "profile.raw.txt"))
    print(text)
    print(f"bench: {meta['elapsed_s']}s; wrote {RESULTS.relative_to(ROOT)}/latest.md, "
          "latest.json, latest.png" + (", profile.md, profile.svg" if args.profile else ""))
    return 1 if failures else 0


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="bench.run", description=__doc__.split("\n")[0])
    parser.add_argument("--duration", type=float, default=8.0, help="measured seconds per cell")
    parser.add_argument("--warmup", type=float, default=1.5, help="unmeasured seconds first")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--concurrency", default="1,16,64")
    parser.add_argument("--systems", default=",".join(s.key for s in SYSTEMS))
    parser.add_argument("--max-requests", type=int, default=200_000, help="per cell")
    parser.add_argument("--budget", type=float, default=450.0,
                        help="seconds for the whole run; cells that would not fit are skipped")
    parser.add_argument("--disturbed", type=float, default=0.15,
                        help="re-run cells where other jobs used more than this many cores")
    parser.add_argument("--profile", action="store_true",
                        help="also profile BEDS with py-spy at 16 in flight")
    return parser.parse_args(argv)


if __name__ == "__main__":
    sys.exit(asyncio.run(main(parse_args())))
