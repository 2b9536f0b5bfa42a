"""The bench's summaries (bench/profile.py, bench/report.py): how a py-spy sample is charged to
libraries or BEDS, and how CPU-µs per request and the PASS/MISS verdicts come out of cells."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bench import profile, report

RAW = """\
<module> (beds/__main__.py:3);run (uvloop/__init__.py:82);Runner.run (asyncio/runners.py:118) 40
<module> (beds/__main__.py:3);run (uvloop/__init__.py:82);Consumer._handle (beds/brokers/consumer.py:90);Channel.basic_publish (aiormq/channel.py:900);StreamWriter.write (asyncio/streams.py:340) 30
<module> (beds/__main__.py:3);run (uvloop/__init__.py:82);MysqlAdapter.call (beds/adapters/mysql.py:50);Connection._read_packet (/x/.venv/lib/python3.11/site-packages/aiomysql/connection.py:600) 20
<module> (beds/__main__.py:3);run (uvloop/__init__.py:82);encode (beds/protocol/codec.py:10);dumps (json/__init__.py:231) 6
<module> (beds/__main__.py:3);run (uvloop/__init__.py:82);Reader.frame (beds/amqp/frames.py:10) 4
"""


def test_stdlib_frames_are_charged_to_their_caller_and_groups_line_up(tmp_path: Path) -> None:
    raw = tmp_path / "profile.raw.txt"
    raw.write_text(RAW)
    shares = profile.split(profile.read_samples(raw))
    assert list(shares) == profile.ORDER
    assert shares[profile.GROUPS["aiormq"]] == 30          # the socket send is the client's
    assert shares[profile.GROUPS["aiomysql"]] == 20        # an absolute site-packages path
    assert shares[profile.GROUPS["uvloop"]] == 40          # only the loop's frames
    assert shares[profile.BEDS] == 6                       # json called by BEDS is BEDS's
    assert shares[profile.GROUPS["beds/amqp"]] == 4
    text = profile.summarize(raw)
    assert "| **90.0%** | **libraries**" in text and "| **10.0%** | **BEDS**" in text


def cell(system: str, replies: int, server: float, rabbit: float) -> dict[str, Any]:
    return {"system": system, "label": system, "concurrency": 16, "window_s": 10.0,
            "replies": replies, "errors": 0, "req_per_s": replies / 10, "p50_ms": 1.0,
            "p99_ms": 2.0, "server_cpu_s": server, "rabbitmq_cpu_s": rabbit,
            "mariadb_cpu_s": 1.0, "loadgen_cpu_s": 2.0, "rss_mb": 50.0, "rss_total_mb": 50.0,
            "processes": 1, "loadgen_cores": 0.2, "rabbitmq_cores": rabbit / 10,
            "mariadb_cores": 0.1, "other_cores": 0.0, "box_busy": 0.5}


def test_cpu_per_request_and_verdicts() -> None:
    cells = [cell("beds-fetch", 12_000, 4.0, 6.0), cell("aiopika-fetch", 10_000, 5.0, 4.0),
             cell("aiopika-classic-fetch", 13_000, 4.0, 2.6)]
    rows = report.aggregate(cells, ["beds-fetch", "aiopika-fetch", "aiopika-classic-fetch"])
    assert rows[0]["cpu_us_per_req"] == {"server": 333.3, "rabbitmq": 500.0, "mariadb": 83.3,
                                         "loadgen": 166.7}
    targets = {t["measure"]: t for t in report.ratios(rows, {"beds": 57.0})}
    same = targets["throughput at 16: BEDS / aio-pika by hand (same semantics: quorum, confirms)"]
    assert (same["value"], same["met"]) == (1.2, True)
    lighter = targets["throughput at 16: BEDS / aio-pika by hand on a classic queue, no confirms"]
    assert lighter["met"] is False
    rabbit = targets["RabbitMQ CPU-µs per request at 16: BEDS / aio-pika (quorum, confirms)"]
    assert (rabbit["value"], rabbit["met"]) == (1.25, None)
    assert "**MISS**" in report.markdown(rows, list(targets.values()), {
        "finished": "now", "command": "x", "machine": "m", "rounds": 1, "duration": 10,
        "warmup": 1, "queue_type": "quorum"})
