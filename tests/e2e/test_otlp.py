"""`beds --role appServer` with tracing turned on by the standard OTEL_* variables exports its
spans over OTLP/HTTP (protobuf) to a receiver the test runs, joined to the caller's trace."""

from __future__ import annotations

import signal
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web

from beds.client import Client
from tests.support.node_process import spawn_node
from tests.support.services import AMQP_URL
from tests.support.stack import Stack
from tests.support.waiting import wait_for

pytest.importorskip("opentelemetry.exporter.otlp.proto.http", reason="needs the otel extra")

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.trace.v1.trace_pb2 import Span
from opentelemetry.sdk.trace import TracerProvider


class Receiver:
    """A minimal OTLP/HTTP trace endpoint: POST /v1/traces, protobuf in, protobuf out."""

    def __init__(self) -> None:
        self.spans: list[tuple[dict[str, Any], Span]] = []   # (resource attributes, span)
        self.posts = 0
        self.content_types: set[str] = set()

    async def handle(self, request: web.Request) -> web.Response:
        self.posts += 1
        self.content_types.add(request.content_type)
        export = ExportTraceServiceRequest()
        export.ParseFromString(await request.read())
        for resource_spans in export.resource_spans:
            resource = {a.key: a.value.string_value
                        for a in resource_spans.resource.attributes}
            for scope_spans in resource_spans.scope_spans:
                self.spans += [(resource, span) for span in scope_spans.spans]
        return web.Response(body=ExportTraceServiceResponse().SerializeToString(),
                            content_type="application/x-protobuf")


@pytest.fixture
async def receiver() -> AsyncIterator[tuple[Receiver, int]]:
    recv = Receiver()
    app = web.Application()
    app.router.add_post("/v1/traces", recv.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    yield recv, port
    await runner.cleanup()


def attrs(span: Span) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for a in span.attributes:
        value = a.value
        out[a.key] = getattr(value, value.WhichOneof("value") or "string_value")
    return out


async def test_spans_reach_an_otlp_http_receiver(stack: Stack, receiver: tuple[Receiver, int]
                                                 ) -> None:
    recv, port = receiver
    node = await spawn_node(stack.env_file, env={
        "OTEL_TRACES_EXPORTER": "otlp",
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": f"http://127.0.0.1:{port}/v1/traces",
        "OTEL_BSP_SCHEDULE_DELAY": "100",   # milliseconds: export soon after the call
        "OTEL_SERVICE_NAME": "beds-e2e",
    })
    try:
        await node.wait_event("node.ready")
        assert node.events("tracing.on"), "\n".join(node.lines[-20:])
        caller_tracer = TracerProvider().get_tracer("a-service")   # exports nowhere: the id
        async with Client(AMQP_URL, stack.exchange) as client:
            with caller_tracer.start_as_current_span("checkout") as caller:
                reply = await client.call("film", "fetch", {"film_id": 3})
        assert reply.data
        trace_id = caller.get_span_context().trace_id.to_bytes(16, "big")
        caller_span = caller.get_span_context().span_id.to_bytes(8, "big")

        def of_trace() -> list[tuple[dict[str, Any], Span]]:
            return [(r, s) for r, s in recv.spans if s.trace_id == trace_id]

        await wait_for(lambda: len(of_trace()) >= 3, 20, interval=0.1)
        spans = {s.kind: (r, s) for r, s in of_trace()}
        resource, consumer = spans[Span.SpanKind.SPAN_KIND_CONSUMER]
        _, db = spans[Span.SpanKind.SPAN_KIND_CLIENT]
        _, reply_span = spans[Span.SpanKind.SPAN_KIND_PRODUCER]
        assert consumer.parent_span_id == caller_span
        assert db.parent_span_id == consumer.span_id == reply_span.parent_span_id
        assert consumer.name == "process film.fetch" and db.name == "film_fetch"
        assert attrs(consumer)["messaging.system"] == "rabbitmq"
        assert attrs(db)["db.operation.name"] == "film_fetch"
        assert resource["service.name"] == "beds-e2e"
        assert resource["service.instance.id"].startswith("test-")
        assert recv.content_types == {"application/x-protobuf"}
        # The node's request line names the node's span of the same trace.
        lines = [e for e in node.events("request") if e.get("template") == "film"]
        assert lines and lines[-1]["trace_id"] == trace_id.hex()
        assert lines[-1]["span_id"] == consumer.span_id.hex()
    finally:
        await node.stop(signal.SIGTERM)
