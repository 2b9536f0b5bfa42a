"""The log tap and the shipper's buffer: which lines are taken, where they go, what happens
while RabbitMQ is away, and that the shipper never ships its own lines."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import msgspec
import pytest
import structlog

from beds.log import LineLogger, ship_tap
from beds.ops import logship
from beds.ops.logship import LogShipper, bind_node, encode_line
from tests.support.waiting import wait_for


class StubPublisher:
    """Stands in for ReplyPublisher: records what is confirmed, or refuses while `down`."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, str, dict[str, Any]]] = []
        self.down = False
        self.on_publish: Any = None

    async def publish_to(self, exchange: str, routing_key: str, body: bytes,
                         correlation_id: str | None = None, persistent: bool = False) -> None:
        if self.on_publish is not None:
            self.on_publish()
        if self.down:
            raise ConnectionError("RabbitMQ is away")
        self.sent.append((exchange, routing_key, msgspec.json.decode(body)))


def shipper(name: str = "n1", level: str = "warning", capacity: int = 100,
            publisher: StubPublisher | None = None) -> LogShipper:
    return LogShipper(publisher or StubPublisher(), "beds.logs", name, "appServer",  # type: ignore[arg-type]
                      level, capacity)


@pytest.fixture(autouse=True)
def no_shippers() -> Any:
    # Other tests may have run setup_logging, which binds node/role for the whole process.
    bound = structlog.contextvars.get_contextvars()
    structlog.contextvars.clear_contextvars()
    # ... and a node of an earlier test may still be registered: lines would go to it.
    stale = list(logship._shippers)
    for s in stale:
        s.unregister()
    yield
    for s in list(logship._shippers):
        s.unregister()
    structlog.contextvars.bind_contextvars(**bound)


def lines(s: LogShipper) -> list[tuple[str, dict[str, Any]]]:
    return [(key, msgspec.json.decode(body)) for key, body in s._buffer]


def test_warning_and_above_are_taken_info_is_not() -> None:
    s = shipper()
    s.register()
    log = structlog.get_logger("beds.test")
    log.info("request", template="film")
    log.warning("command.refused", code="BAD_COMMAND")
    log.error("broker.crashed", broker="rBroker")
    taken = lines(s)
    assert [key for key, _ in taken] == ["warning.n1", "error.n1"]
    line = taken[0][1]
    assert line["event"] == "command.refused" and line["code"] == "BAD_COMMAND"
    assert line["node"] == "n1" and line["role"] == "appServer" and line["at"].endswith("Z")


def test_ship_level_error_leaves_warnings_out() -> None:
    s = shipper(level="error")
    s.register()
    structlog.get_logger().warning("w")
    structlog.get_logger().critical("c")
    assert [key for key, _ in lines(s)] == ["critical.n1"]


def test_tap_passes_lines_through_without_a_shipper() -> None:
    event = {"event": "request", "level": "warning"}
    assert ship_tap(None, "warning", event) is event
    assert event == {"event": "request", "level": "warning"}


def test_the_tap_never_fails_a_log_call() -> None:
    s = shipper()
    s.register()

    def broken(*_args: Any) -> None:
        raise RuntimeError("a bug in the shipper")

    s.take = broken  # type: ignore[method-assign,assignment]   # a shipper that fails
    structlog.get_logger().warning("still.logged")   # must not raise


def test_exception_text_and_logger_name_are_shipped() -> None:
    s = shipper()
    try:
        raise ValueError("boom")
    except ValueError as exc:
        s.take(LineLogger("beds.consumer"), {"event": "request.internal_error",
                                             "level": "error", "exc_info": exc}, "n1")
    (_, line), = lines(s)
    assert line["logger"] == "beds.consumer"
    assert "ValueError: boom" in line["exception"] and "exc_info" not in line


def test_full_buffer_drops_the_oldest_and_counts() -> None:
    s = shipper(capacity=3)
    for i in range(5):
        s.take(None, {"event": f"e{i}", "level": "warning"}, "n1")
    assert [line["event"] for _, line in lines(s)] == ["e2", "e3", "e4"]
    assert s.dropped == 2


def test_audit_events_are_keyed_audit_node() -> None:
    s = shipper()
    s.audit({"template": "customer", "op": "create", "outcome": "ok", "user": "bob",
             "correlation_id": "c1", "node": "n1"})
    (key, line), = lines(s)
    assert key == "audit.n1"
    assert line["level"] == "audit" and line["event"] == "audit" and line["user"] == "bob"


def test_a_huge_line_is_cut_not_refused() -> None:
    body = encode_line({"event": "big", "level": "error", "exception": "x" * 100_000})
    assert len(body) <= logship.MAX_LINE
    assert msgspec.json.decode(body)["exception"].endswith("characters cut]")
    body = encode_line({"event": "wide", "level": "error",
                        **{f"k{i}": "y" * 4000 for i in range(50)}})
    assert msgspec.json.decode(body)["truncated"] is True


def test_two_nodes_in_one_process_each_line_once() -> None:
    a, b = shipper("a"), shipper("b")
    a.register()
    b.register()
    log = structlog.get_logger()
    log.warning("named", node="b")            # the line names its node
    log.warning("unnamed")                    # no node anywhere: the first registered

    async def in_b_task() -> None:
        bind_node("b")
        log.warning("bound")                  # logged from node b's task

    asyncio.run(in_b_task())
    assert [line["event"] for _, line in lines(a)] == ["unnamed"]
    assert [line["event"] for _, line in lines(b)] == ["named", "bound"]
    assert all(line["node"] == "b" for _, line in lines(b))


Shipping = tuple[LogShipper, StubPublisher]
"""A started shipper and the publisher it ships to."""


@pytest.fixture
async def shipping() -> AsyncIterator[Shipping]:
    publisher = StubPublisher()
    s = shipper(capacity=5, publisher=publisher)
    s.start()
    yield s, publisher
    await s.stop()


async def test_publishes_batches_with_level_node_keys(shipping: Shipping) -> None:
    s, publisher = shipping
    structlog.get_logger().warning("one")
    s.audit({"template": "customer", "op": "create", "user": "bob"})
    await wait_for(lambda: len(publisher.sent) == 2, 5)
    assert [(x, k) for x, k, _ in publisher.sent] == [("beds.logs", "warning.n1"),
                                                      ("beds.logs", "audit.n1")]


async def test_rabbitmq_away_keeps_newest_then_reports_drops(shipping: Shipping) -> None:
    s, publisher = shipping
    publisher.down = True
    for i in range(8):
        structlog.get_logger().warning(f"e{i}")
    await wait_for(lambda: s.dropped >= 3, 5)
    publisher.down = False
    await wait_for(lambda: any(line["event"] == "logs.dropped" for _, _, line in publisher.sent),
                   10)
    events = [line["event"] for _, _, line in publisher.sent]
    assert events[:5] == ["e3", "e4", "e5", "e6", "e7"]   # the oldest went, in order
    dropped = next(line for _, _, line in publisher.sent if line["event"] == "logs.dropped")
    assert dropped["dropped"] == 3 and dropped["level"] == "warning"


async def test_the_shippers_own_lines_are_never_shipped(shipping: Shipping) -> None:
    s, publisher = shipping
    # Whatever is logged while publishing (a driver warning, the shipper's own trouble) must
    # not come back into the buffer, or a failing publish would feed itself forever.
    publisher.on_publish = lambda: structlog.get_logger().warning("from.inside.publish")
    structlog.get_logger().warning("outside")
    await wait_for(lambda: len(publisher.sent) == 1, 5)
    await asyncio.sleep(0)
    assert s.buffered == 0
    assert [line["event"] for _, _, line in publisher.sent] == ["outside"]
