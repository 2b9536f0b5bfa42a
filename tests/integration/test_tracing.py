"""Traces through a real node (RabbitMQ + MariaDB): the caller's span -> the node's CONSUMER
span -> the database span and the reply publish, with the SDK's in-memory exporter; and the
request log line's trace_id with tracing off (parsed from the W3C header by BEDS itself)."""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import uuid
from collections.abc import AsyncIterator, MutableMapping
from typing import Any

import aiormq
import pytest
from pamqp.commands import Basic
from structlog.testing import capture_logs

from beds.client import Client
from beds.errors import ValidationFailed
from beds.protocol import encode_request
from tests.support.services import AMQP_URL
from tests.support.stack import RunningNode, Stack
from tests.support.waiting import wait_for

pytest.importorskip("opentelemetry.sdk", reason="needs the otel extra")

from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import (
    InMemorySpanExporter,
)
from opentelemetry.trace import SpanKind, format_span_id, format_trace_id

SECRET_PIN = "pin-" + secrets.token_hex(6)
MARKER = "marker-" + secrets.token_hex(6)
Traced = tuple[RunningNode, TracerProvider, InMemorySpanExporter]
"""A node whose spans go, like the test's own, to one in-memory exporter."""


@pytest.fixture
async def traced(stack: Stack) -> AsyncIterator[Traced]:
    """An in-process appServer node whose spans, like the test's own, go to one exporter."""
    from beds.node import Node

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    node = Node.build(stack.settings, "appServer")
    node.tracer_provider = provider
    stop = asyncio.Event()
    task = asyncio.create_task(node.run(stop, handle_signals=False))
    await asyncio.wait({asyncio.ensure_future(node.ready.wait()), task}, timeout=30,
                       return_when=asyncio.FIRST_COMPLETED)
    assert node.ready.is_set(), "node did not become ready"
    yield RunningNode(node, stop, task, stack), provider, exporter
    stop.set()
    await asyncio.wait_for(task, 30)


def spans_of(exporter: InMemorySpanExporter, trace_id: int) -> list[ReadableSpan]:
    return [s for s in exporter.get_finished_spans() if s.context.trace_id == trace_id]


async def call_traced(provider: TracerProvider, exporter: InMemorySpanExporter, stack: Stack,
                      template: str, op: str, params: dict[str, Any],
                      expect: int) -> tuple[Any, list[ReadableSpan]]:
    """One call inside the caller's own span; the finished spans of that trace (`expect`)."""
    tracer = provider.get_tracer("a-service")
    async with Client(AMQP_URL, stack.exchange) as client:
        # A refused call is traced too.
        with tracer.start_as_current_span("checkout", kind=SpanKind.INTERNAL) as caller, \
                contextlib.suppress(ValidationFailed):
            await client.call(template, op, params)
    trace_id = caller.get_span_context().trace_id
    await wait_for(lambda: len(spans_of(exporter, trace_id)) >= expect, 10)
    return caller, spans_of(exporter, trace_id)


def by_kind(spans: list[ReadableSpan], kind: SpanKind) -> ReadableSpan:
    found = [s for s in spans if s.kind is kind]
    assert len(found) == 1, [(s.name, s.kind) for s in spans]
    return found[0]


def all_text(spans: list[ReadableSpan]) -> str:
    """Everything a span carries that an exporter would send, as one string."""
    parts = []
    for s in spans:
        parts += [s.name, str(dict(s.attributes or {})), str(s.status.description)]
        parts += [f"{e.name} {dict(e.attributes or {})}" for e in s.events]
    return " ".join(parts)


async def test_caller_consumer_database_and_reply_spans_form_one_trace(traced: Traced) -> None:
    running, provider, exporter = traced
    caller, spans = await call_traced(provider, exporter, running.stack, "film", "fetch",
                                      {"film_id": 1}, expect=4)
    consumer = by_kind(spans, SpanKind.CONSUMER)
    db = by_kind(spans, SpanKind.CLIENT)
    reply = by_kind(spans, SpanKind.PRODUCER)
    assert len(spans) == 4   # caller, consumer, db, reply: one trace id
    assert consumer.parent is not None
    assert consumer.parent.span_id == caller.get_span_context().span_id
    assert consumer.parent.is_remote
    assert db.parent is not None and db.parent.span_id == consumer.context.span_id
    assert reply.parent is not None and reply.parent.span_id == consumer.context.span_id

    assert consumer.name == "process film.fetch"
    attrs = dict(consumer.attributes or {})
    assert attrs["messaging.system"] == "rabbitmq"
    assert attrs["messaging.operation.type"] == "process"
    assert attrs["messaging.destination.name"] == running.stack.exchange
    assert attrs["messaging.rabbitmq.destination.routing_key"] == "film.fetch"
    assert str(attrs["messaging.destination.subscription.name"]).endswith(".rBroker")
    assert attrs["messaging.message.id"] and attrs["messaging.message.conversation_id"]
    assert attrs["beds.outcome"] == "ok" and "error.type" not in attrs

    assert db.name == "film_fetch"
    d = dict(db.attributes or {})
    assert d["db.system.name"] in ("mariadb", "mysql")
    assert d["db.operation.name"] == "film_fetch"
    assert d["db.stored_procedure.name"] == "film_fetch"
    assert reply.name == "publish amq.rabbitmq.reply-to"
    assert dict(reply.attributes or {})["messaging.operation.type"] == "send"
    db_start, reply_end = db.start_time, reply.end_time
    start, end = consumer.start_time, consumer.end_time
    assert db_start is not None and reply_end is not None and start is not None and end is not None
    assert db_start >= start and reply_end <= end


async def test_spans_never_carry_parameter_values_or_protected_fields(traced: Traced) -> None:
    running, provider, exporter = traced
    email = f"{uuid.uuid4().hex[:12]}@example.com"
    _caller, created = await call_traced(
        provider, exporter, running.stack, "customer", "create",
        {"store_id": 1, "first_name": MARKER, "last_name": MARKER, "email": email,
         "pin": SECRET_PIN}, expect=4)
    assert dict(by_kind(created, SpanKind.CLIENT).attributes or {})["db.operation.name"] == \
        "customer_create"
    # A refused value is quoted in the error message; the spans keep only the code.
    _caller, refused = await call_traced(provider, exporter, running.stack, "film", "fetch",
                                         {"film_id": MARKER}, expect=4)
    db = by_kind(refused, SpanKind.CLIENT)
    assert dict(db.attributes or {})["error.type"] == "VALIDATION_FAILED"
    assert dict(by_kind(refused, SpanKind.CONSUMER).attributes or {})["error.type"] == \
        "VALIDATION_FAILED"
    text = all_text(created + refused)
    for secret in (SECRET_PIN, MARKER, email):
        assert secret not in text


async def publish_raw(stack: Stack, headers: dict[str, Any]) -> None:
    """film.fetch with the given headers, from a caller that is not beds.Client."""
    conn = await aiormq.connect(AMQP_URL)
    try:
        channel = await conn.channel()
        await channel.basic_publish(
            encode_request("film", "fetch", {"film_id": 2}), exchange=stack.exchange,
            routing_key="film.fetch",
            properties=Basic.Properties(correlation_id=uuid.uuid4().hex, headers=headers))
    finally:
        await conn.close()


def request_lines(logs: list[MutableMapping[str, Any]]) -> list[MutableMapping[str, Any]]:
    return [e for e in logs if e.get("event") == "request" and e.get("template") == "film"]


TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT = "00f067aa0ba902b7"


async def test_the_request_line_carries_the_callers_trace_id_without_tracing(
        running: RunningNode) -> None:
    assert running.node._tracing is None
    with capture_logs() as logs:
        await publish_raw(running.stack, {"traceparent": f"00-{TRACE}-{PARENT}-01",
                                          "tracestate": "vendor=x"})
        await wait_for(lambda: request_lines(logs), 10)
    line = request_lines(logs)[0]
    assert line["outcome"] == "ok"
    assert line["trace_id"] == TRACE and line["span_id"] == PARENT


@pytest.mark.parametrize("header", [
    f"00-{TRACE}-{PARENT}-01-extra",            # version 00 has exactly four fields
    f"00-{TRACE.upper()}-{PARENT}-01",          # upper-case hex
    f"00-{'0' * 32}-{PARENT}-01",               # all-zero trace id
    f"ff-{TRACE}-{PARENT}-01",                  # version ff is invalid
    "garbage", bytearray(b"\xff\xfe"), 12345,
])
async def test_a_malformed_traceparent_is_ignored(running: RunningNode, header: Any) -> None:
    with capture_logs() as logs:
        await publish_raw(running.stack, {"traceparent": header})
        await wait_for(lambda: request_lines(logs), 10)
    line = request_lines(logs)[0]
    assert line["outcome"] == "ok" and "trace_id" not in line and "span_id" not in line


async def test_with_tracing_a_malformed_traceparent_starts_a_new_trace(traced: Traced) -> None:
    running, _provider, exporter = traced
    with capture_logs() as logs:
        await publish_raw(running.stack, {"traceparent": f"00-{TRACE}-{'0' * 16}-01"})
        await wait_for(lambda: any(s.kind is SpanKind.CONSUMER
                                   for s in exporter.get_finished_spans()), 10)
        await wait_for(lambda: request_lines(logs), 10)
    consumer = by_kind(list(exporter.get_finished_spans()), SpanKind.CONSUMER)
    assert consumer.parent is None and format_trace_id(consumer.context.trace_id) != TRACE
    line = request_lines(logs)[0]   # the log line names the node's span, so logs find the trace
    assert line["trace_id"] == format_trace_id(consumer.context.trace_id)
    assert line["span_id"] == format_span_id(consumer.context.span_id)


async def test_odd_trace_headers_never_cost_a_request(traced: Traced) -> None:
    running, _provider, exporter = traced
    with capture_logs() as logs:
        for headers in ({"traceparent": 7, "tracestate": ["x"]},
                        {"traceparent": f"00-{TRACE}-{PARENT}-01", "tracestate": "=" * 600,
                         "baggage": "%%%;;;==,,," * 50},
                        {"traceparent": bytearray(f"00-{TRACE}-{PARENT}-01".encode())}):
            await publish_raw(running.stack, headers)
        await wait_for(lambda: len(request_lines(logs)) >= 3, 10)
    assert [line["outcome"] for line in request_lines(logs)] == ["ok"] * 3
    joined = [s for s in exporter.get_finished_spans() if s.kind is SpanKind.CONSUMER
              and s.parent is not None and format_trace_id(s.context.trace_id) == TRACE]
    assert len(joined) == 2   # the string and the byte-array header both continue the trace
