"""`make bench`'s report: cells aggregated per (system, in flight), the issue's targets with
PASS/MISS, the CPU-µs per request of every process (server, RabbitMQ, MariaDB, load generator).

Layer: bench harness. Used by bench.run; pure functions of the measured cells.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable
from typing import Any

PROCESSES = ("server", "rabbitmq", "mariadb", "loadgen")   # CPU-µs per request, in this order


def aggregate(cells: list[dict[str, Any]], order: list[str]) -> list[dict[str, Any]]:
    """One row per (system, concurrency) over its rounds: sums for counts and CPU, medians for
    latency quantiles, max for memory. `order` is the systems' row order."""
    rows = []
    for key, level in [(s, c) for s in order for c in (1, 16, 64)]:
        group = [c for c in cells if c["system"] == key and c["concurrency"] == level
                 and c.get("kept", True)]
        if not group:
            continue
        window = sum(c["window_s"] for c in group)
        replies = sum(c["replies"] for c in group)
        cpu = sum(c["server_cpu_s"] for c in group)
        rows.append({
            "system": key, "label": group[0]["label"], "concurrency": level,
            "rounds": len(group), "replies": replies, "errors": sum(c["errors"] for c in group),
            "req_per_s": round(replies / window, 1),
            "req_per_s_rounds": [c["req_per_s"] for c in group],
            "p50_ms": round(statistics.median(c["p50_ms"] or 0 for c in group), 3),
            "p99_ms": round(statistics.median(c["p99_ms"] or 0 for c in group), 3),
            "server_cores": round(cpu / window, 3),
            "req_per_cpu_s": round(replies / cpu, 1) if cpu else None,
            # CPU-seconds of each process over the rounds' windows / replies in them
            "cpu_us_per_req": {p: round(sum(c.get(f"{p}_cpu_s", 0.0) for c in group)
                                        / replies * 1e6, 1) if replies else None
                               for p in PROCESSES},
            "rss_mb": max(c["rss_mb"] for c in group),
            "rss_total_mb": max(c["rss_total_mb"] for c in group),
            "processes": max(c["processes"] for c in group),
            **{key: round(statistics.mean(c[key] or 0 for c in group), 3)
               for key in ("loadgen_cores", "rabbitmq_cores", "mariadb_cores", "other_cores")},
            "box_busy": round(statistics.mean(c["box_busy"] for c in group), 3),
        })
    return rows


def find(rows: list[dict[str, Any]], system: str, level: int) -> dict[str, Any] | None:
    return next((r for r in rows if r["system"] == system and r["concurrency"] == level), None)


def ratios(rows: list[dict[str, Any]], peak_rss: dict[str, float]) -> list[dict[str, Any]]:
    """The issue's targets, each with the measured value (None when its cells did not run;
    met None = context only)."""
    def value(system: str, level: int, key: str) -> float | None:
        row = find(rows, system, level)
        return None if row is None else row[key]

    def rabbit_us(system: str) -> float | None:
        row = find(rows, system, 16)
        return None if row is None else row["cpu_us_per_req"]["rabbitmq"]

    def ratio(a: float | None, b: float | None) -> float | None:
        return round(a / b, 3) if a and b else None

    beds16 = value("beds-fetch", 16, "req_per_s")
    best16 = max(filter(None, [beds16, value("beds-w2-fetch", 16, "req_per_s")]), default=None)
    worker_rss = max(filter(None, [peak_rss.get("beds"), peak_rss.get("beds-w2")]), default=None)
    out: list[tuple[str, str, float | None, Callable[[float], bool] | None]] = [
        ("req per BEDS CPU-second, film.fetch at 16 in flight", ">= 3000 (goal 5000)",
         value("beds-fetch", 16, "req_per_cpu_s"), lambda v: v >= 3000),
        ("req per BEDS CPU-second, film.fetch at 64 in flight", ">= 3000 (goal 5000)",
         value("beds-fetch", 64, "req_per_cpu_s"), lambda v: v >= 3000),
        ("throughput at 16: BEDS / aio-pika by hand (same semantics: quorum, confirms)", ">= 1.2",
         ratio(beds16, value("aiopika-fetch", 16, "req_per_s")), lambda v: v >= 1.2),
        ("throughput at 16: BEDS / aio-pika by hand on a classic queue, no confirms", ">= 1.0",
         ratio(beds16, value("aiopika-classic-fetch", 16, "req_per_s")), lambda v: v >= 1.0),
        ("throughput at 16: best BEDS (1 or 2 workers) / aio-pika (quorum, confirms)", ">= 1.2",
         ratio(best16, value("aiopika-fetch", 16, "req_per_s")), lambda v: v >= 1.2),
        ("throughput at 16: BEDS / FastStream", ">= 1.5",
         ratio(beds16, value("faststream-fetch", 16, "req_per_s")), lambda v: v >= 1.5),
        ("efficiency at 16: BEDS / aio-pika (req per CPU-second)", "(context)",
         ratio(value("beds-fetch", 16, "req_per_cpu_s"),
               value("aiopika-fetch", 16, "req_per_cpu_s")), None),
        ("p50 at 1 in flight, film.fetch: BEDS / aio-pika (quorum, confirms)", "<= 1.0",
         ratio(value("beds-fetch", 1, "p50_ms"), value("aiopika-fetch", 1, "p50_ms")),
         lambda v: v <= 1.0),
        ("p50 latency at 1 in flight, film.fetch (ms)", "<= 1.2",
         value("beds-fetch", 1, "p50_ms"), lambda v: v <= 1.2),
        ("RabbitMQ CPU-µs per request at 16: BEDS / aio-pika (quorum, confirms)", "(context)",
         ratio(rabbit_us("beds-fetch"), rabbit_us("aiopika-fetch")), None),
        ("RabbitMQ CPU-µs per request at 16: BEDS / aio-pika classic, no confirms", "(context)",
         ratio(rabbit_us("beds-fetch"), rabbit_us("aiopika-classic-fetch")), None),
        ("peak RSS per BEDS worker (MB, VmHWM)", "<= 80", worker_rss, lambda v: v <= 80),
    ]
    return [{"measure": m, "target": t, "value": v,
             "met": None if (check is None or v is None) else bool(check(v))}
            for m, t, v, check in out]


def verdict(met: bool | None) -> str:
    return {True: "PASS", False: "**MISS**", None: "—"}[met]


def cpu_table(rows: list[dict[str, Any]], meta: dict[str, Any]) -> list[str]:
    """CPU-µs per request of each process; the RabbitMQ column is what each server costs the
    broker."""
    lines = ["## CPU-µs per request, per process", "",
             "| system | in flight | server | RabbitMQ | MariaDB | load generator | sum |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        us = r["cpu_us_per_req"]
        if any(us[p] is None for p in PROCESSES):
            continue
        cols = " | ".join(f"{us[p]:,.0f}" for p in PROCESSES)
        lines.append(f"| {r['label']} | {r['concurrency']} | {cols} | "
                     f"{sum(us[p] for p in PROCESSES):,.0f} |")
    lines += ["", "CPU-µs per request = utime+stime (from /proc) of the process over the "
              "measured windows / replies in them. server = the server's process tree (BEDS: "
              "the node and its workers); RabbitMQ = the shared broker's beam.smp "
              f"({meta.get('rabbitmq_busy_wait', 'busy-wait setting unknown')}); MariaDB = "
              "mariadbd; load generator = its own process. RabbitMQ and MariaDB serve the "
              "other jobs on this box too: their columns include whatever those did during "
              "the window (see the other column of the table above); before any bench load "
              f"RabbitMQ used {meta.get('rabbitmq_cores_before_load', '?')} cores, which at 1 in "
              "flight is a large share of its column.", ""]
    return lines


def markdown(rows: list[dict[str, Any]], targets: list[dict[str, Any]],
             meta: dict[str, Any]) -> str:
    lines = [
        f"# BEDS benchmark — {meta['finished']}",
        "",
        f"`{meta['command']}` on {meta['machine']}; RabbitMQ, MariaDB, the load generator and the "
        f"servers share the machine. {meta['rounds']} round(s) x {meta['duration']} s per cell "
        f"(after {meta['warmup']} s warm-up), queues: {meta['queue_type']} (the classic peer: "
        "classic, replies without confirms); every server on uvloop with a MariaDB pool of 16 "
        "(BEDS: its own client, beds.mysql; the peers: aiomysql), prefetch 64 in flight per "
        "process.",
        "",
        "| system | in flight | req/s | p50 ms | p99 ms | server cores | req per server "
        "CPU-s | peak RSS MB | errors | cores: loadgen / RabbitMQ / MariaDB / other |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in rows:
        rss = f"{r['rss_mb']}" if r["processes"] <= 1 else \
            f"{r['rss_mb']} /worker ({r['rss_total_mb']} total)"
        per_cpu = "-" if r["req_per_cpu_s"] is None else f"{r['req_per_cpu_s']:,.0f}"
        lines.append(
            f"| {r['label']} | {r['concurrency']} | {r['req_per_s']:,.0f} | {r['p50_ms']} | "
            f"{r['p99_ms']} | {r['server_cores']} | {per_cpu} | {rss} | "
            f"{r['errors']} | {r['loadgen_cores']:.2f} / {r['rabbitmq_cores']:.2f} / "
            f"{r['mariadb_cores']:.2f} / {r['other_cores']:.2f} |")
    lines += ["", "## Against the issue's targets", "",
              "| measure | target | measured | met |", "|---|---|---:|---|"]
    lines += [f"| {t['measure']} | {t['target']} | {t['value']} | {verdict(t['met'])} |"
              for t in targets]
    lines += ["", *cpu_table(rows, meta)]
    if meta.get("skipped"):
        lines += [f"Skipped (time budget): {', '.join(meta['skipped'])}", ""]
    if meta.get("reruns"):
        lines += [f"{meta['reruns']} cell(s) disturbed by another job (other > "
                  f"{meta['disturbed_threshold_cores']} cores) were measured again; the less "
                  "disturbed measurement is kept (latest.json has both).", ""]
    if meta.get("warnings"):
        lines += ["Warnings: " + "; ".join(meta["warnings"]), ""]
    if meta.get("failures"):
        lines += ["**Failures**: " + "; ".join(meta["failures"]), ""]
    lines += ["server cores = CPU-seconds of the server's processes / window seconds (utime+"
              "stime from /proc). other = busy CPU of the machine that none of server, load "
              "generator, RabbitMQ, MariaDB used: another job on the box (high = disturbed cell).",
              ""]
    return "\n".join(lines)
