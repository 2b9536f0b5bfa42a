"""The request line's fast path (beds.log.log_line) writes what structlog's JSON chain writes:
the same bytes, keys in the same order, the same timestamp text, the same line for the log tap,
and nothing below the configured level. Where the chain is not the one setup_logging built
(capture_logs, console output), the line goes through structlog."""

from __future__ import annotations

import datetime
import sys
import time
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import msgspec
import pytest
import structlog
from structlog.testing import capture_logs

import beds.log
from beds.amqp import Properties
from beds.brokers.consumer import Consumer, Shared
from beds.config import BrokerSettings, OpKind, QueueType
from beds.log import _IsoClock, log_line, set_tap, setup_logging, use_fast_lines

NS = 1_796_000_123_123_456_789          # 2026-11-30T...: microsecond 123456
FIELDS: dict[str, Any] = {
    "template": "film", "op": "fetch", "outcome": "ok", "rows": 1, "elapsed_ms": 0.123,
    "correlation_id": "c1", "message_id": None, "user": "app", "redelivered": None,
    "attempt": 1, "node": "n1", "broker": "rBroker"}


def reference_iso(ns: int) -> str:
    """What TimeStamper(fmt="iso", utc=True) prints when datetime.now() reads `ns`."""
    moment = datetime.datetime.fromtimestamp(ns // 10**9, tz=datetime.UTC)
    return moment.replace(microsecond=ns % 10**9 // 1000).isoformat().replace("+00:00", "Z")


@pytest.fixture
def frozen(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, int]]:
    """Both clocks read `clock["ns"]`: the fast path's time.time_ns() and structlog's
    TimeStamper's datetime.datetime.now()."""
    clock = {"ns": NS}

    class Frozen(datetime.datetime):
        @classmethod
        def now(cls, tz: datetime.tzinfo | None = None) -> Any:
            ns = clock["ns"]
            return datetime.datetime.fromtimestamp(ns // 10**9, tz=tz).replace(
                microsecond=ns % 10**9 // 1000)

    monkeypatch.setattr(time, "time_ns", lambda: clock["ns"])
    monkeypatch.setattr(structlog.processors, "datetime",
                        SimpleNamespace(datetime=Frozen, timezone=datetime.timezone))
    yield clock


class Stdout:
    """The lines written to stdout (LineLogger writes to sys.stdout.buffer), all so far."""

    def __init__(self, capture: pytest.CaptureFixture[bytes]) -> None:
        self.capture = capture
        self.seen: list[bytes] = []

    def lines(self) -> list[bytes]:
        sys.stdout.flush()
        self.seen += self.capture.readouterr().out.splitlines()
        return self.seen


@pytest.fixture
def stdout(capsysbinary: pytest.CaptureFixture[bytes]) -> Stdout:
    return Stdout(capsysbinary)


@pytest.fixture
def configured(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """setup_logging as a node runs it (JSON lines), undone afterwards: structlog's config,
    the fast path's record of it, the tap."""
    saved = structlog.get_config()
    procs = list(saved["processors"])
    monkeypatch.setattr(beds.log, "_json_chain", beds.log._json_chain)
    monkeypatch.setattr(beds.log, "_tap_levels", beds.log._tap_levels)
    monkeypatch.setattr(beds.log, "_tap_sink", beds.log._tap_sink)
    yield lambda level="info": setup_logging(level, json=True, node="n1", role="node")
    saved["processors"][:] = procs
    structlog.configure(**saved)


class FastOnly:
    """A logger proxy without log methods: log_line handing a line to structlog fails."""

    def __init__(self) -> None:
        self.proxy = structlog.get_logger("beds.request")   # what the consumer logs to

    def bind(self) -> Any:
        return self.proxy.bind()


def both(method: str, fields: dict[str, Any], out: Stdout) -> tuple[bytes, bytes]:
    """The line structlog's chain renders, then the line log_line renders, for one event."""
    getattr(structlog.get_logger("beds.request"), method)("request", **fields)
    log_line(FastOnly(), method, "request", dict(fields))
    chain, fast = out.lines()[-2:]
    return chain, fast


@pytest.mark.parametrize(("method", "extra", "micro_zero"), [
    ("info", {}, False),
    ("info", {}, True),      # isoformat() leaves the fraction out at microsecond 0
    ("warning", {"redelivered": True, "trace_id": "4bf92f3577b34da6a3ce929d0e0e4736",
                 "span_id": "00f067aa0ba902b7"}, False),
])
def test_fast_line_is_the_chains_line(configured: Any, frozen: dict[str, int],
                                      stdout: Stdout, method: str, extra: dict[str, Any],
                                      micro_zero: bool) -> None:
    configured()
    # Context-only keys are appended in the context's order; the line's own node field keeps
    # its place and its value.
    structlog.contextvars.bind_contextvars(extra_a="a", extra_b=2, node="elsewhere")
    if micro_zero:
        frozen["ns"] = NS - NS % 10**9 + 999
    chain, fast = both(method, {**FIELDS, **extra}, stdout)
    assert fast == chain
    parsed_chain, parsed_fast = msgspec.json.decode(chain), msgspec.json.decode(fast)
    assert parsed_fast == parsed_chain
    assert list(parsed_fast) == list(parsed_chain)
    assert list(parsed_fast)[:len(FIELDS)] == list(FIELDS)
    assert parsed_fast["level"] == method and parsed_fast["role"] == "node"
    assert parsed_fast["node"] == "n1" and parsed_fast["extra_b"] == 2
    assert parsed_fast["message_id"] is None and parsed_fast["redelivered"] == extra.get(
        "redelivered")
    assert parsed_fast["timestamp"] == reference_iso(frozen["ns"])
    assert ("." in parsed_fast["timestamp"]) is not micro_zero


def test_consumer_line_is_the_same_with_and_without_the_fast_path(
        configured: Any, frozen: dict[str, int], stdout: Stdout,
        monkeypatch: pytest.MonkeyPatch) -> None:
    configured()
    monkeypatch.setattr(time, "perf_counter", lambda: 10.0)
    broker = BrokerSettings(name="rBroker", queue="q", kinds=(OpKind.READ,), templates=("*",),
                            instances=1, prefetch=16, queue_type=QueueType.QUORUM, retries=3)
    shared = Shared(node="n1", dispatcher=None, link=None, publisher=None,  # type: ignore[arg-type]
                    max_message_bytes=1 << 20, max_reply_bytes=1 << 24, log_requests=True,
                    grace_seconds=1)
    consumer = Consumer(broker, 1, shared)
    props = Properties(correlation_id="c1", message_id="m1", user_id="app", headers={
        "traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"})
    delivery: Any = SimpleNamespace(redelivered=True)
    meta = {"template": "film", "op": "fetch"}
    written = []
    for fast in (False, True):
        use_fast_lines(fast)
        for outcome in ("ok", "DB_UNAVAILABLE"):
            consumer._log(meta, outcome, 2, 9.5, props, delivery, 1)
            written.append(stdout.lines()[-1])
    assert written[:2] == written[2:]
    ok = msgspec.json.decode(written[2])
    assert list(ok) == ["template", "op", "outcome", "rows", "elapsed_ms", "correlation_id",
                        "message_id", "user", "redelivered", "attempt", "node", "broker",
                        "trace_id", "span_id", "event", "role", "level", "timestamp"]
    assert ok["level"] == "info" and msgspec.json.decode(written[3])["level"] == "warning"


def test_the_tap_sees_the_same_finished_line(configured: Any, frozen: dict[str, int],
                                             stdout: Stdout) -> None:
    configured()
    seen: list[tuple[str, dict[str, Any]]] = []
    set_tap(frozenset({"warning"}), lambda logger, line: seen.append((logger.name, dict(line))))
    both("info", FIELDS, stdout)
    assert seen == []
    both("warning", FIELDS, stdout)
    (name_chain, chain), (name_fast, fast) = seen
    assert name_fast == name_chain == "beds.request"
    assert fast == chain and list(fast) == list(chain) and chain["timestamp"] == reference_iso(NS)


def test_level_warning_drops_info_lines(configured: Any, stdout: Stdout) -> None:
    configured("warning")
    log = FastOnly()
    log_line(log, "info", "request", dict(FIELDS))
    log_line(log, "debug", "request", dict(FIELDS))
    assert stdout.lines() == []
    log_line(log, "warning", "request", dict(FIELDS))
    assert msgspec.json.decode(stdout.lines()[0])["outcome"] == "ok"


def test_capture_logs_still_sees_the_line(configured: Any, stdout: Stdout) -> None:
    configured()
    log = structlog.get_logger("beds.request")
    log_line(log, "info", "request", dict(FIELDS))        # cached on the JSON chain
    with capture_logs() as logs:
        log_line(log, "info", "request", dict(FIELDS))
    assert [e["event"] for e in logs] == ["request"] and logs[0]["template"] == "film"
    assert len(stdout.lines()) == 1


def test_console_output_goes_through_structlog(configured: Any,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    setup_logging("info", json=False, node="n1", role="node")
    assert beds.log._json_chain is None
    got: list[tuple[str, dict[str, Any]]] = []
    log = SimpleNamespace(info=lambda event, **kw: got.append((event, kw)))
    log_line(log, "info", "request", dict(FIELDS))
    assert got == [("request", FIELDS)]


@pytest.mark.parametrize("ns", [
    0, 999, 1_000, 10**9 - 1, 10**9, NS, NS - NS % 10**9, NS - NS % 10**9 + 999_999_999,
    946_684_800 * 10**9 + 1_000, 4_102_444_799 * 10**9 + 999_999_000])
def test_iso_clock_prints_what_timestamper_prints(ns: int) -> None:
    clock = _IsoClock()
    assert clock(ns) == reference_iso(ns)
    assert clock(ns + 10**9) == reference_iso(ns + 10**9)    # the next second
    assert clock(ns) == reference_iso(ns)                    # and back (a clock step)


def test_datetime_now_floors_time_ns_as_the_clock_does() -> None:
    """The fast path reads time.time_ns() where TimeStamper reads datetime.now(): both the
    system clock, datetime's floored to the microsecond."""
    for _ in range(1000):
        before = time.time_ns() // 1000
        now = datetime.datetime.now(tz=datetime.UTC)
        after = time.time_ns() // 1000
        micro = (now - datetime.datetime(1970, 1, 1, tzinfo=datetime.UTC)) // datetime.timedelta(
            microseconds=1)
        assert before <= micro <= after
