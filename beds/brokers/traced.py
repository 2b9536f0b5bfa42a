"""The consumer with OpenTelemetry spans: one CONSUMER span per request, joined to the caller's
trace from its `traceparent`/`tracestate` headers, with a CLIENT span for the database step and
a PRODUCER span for the reply.

Layer: application (hot path), optional. Imports OpenTelemetry (extra `otel`), so only
beds.tracing imports it, and only when tracing is on: a node without tracing runs the plain
Consumer and never loads this module.

Attributes follow the OpenTelemetry messaging and database semantic conventions. They carry
names (queue, exchange, template, op, routine or view) and ids, never parameter values or
result fields: error messages can quote a caller's values, so a failed span records the error
code (`error.type`), never the message or the exception.
"""

from __future__ import annotations

from collections.abc import Coroutine, Mapping
from typing import Any, cast

from aiormq.abc import DeliveredMessage
from opentelemetry import propagate, trace
from opentelemetry.context import Context
from opentelemetry.propagators.textmap import Getter
from opentelemetry.trace import SpanKind, StatusCode, Tracer

from beds.brokers.consumer import SERVER_SIDE, Consumer, Shared
from beds.config import BrokerSettings
from beds.dispatch import Route
from beds.errors import RequestError
from beds.protocol import Request, Result
from beds.templates.model import OpTarget

DIRECT_REPLY_TO = "amq.rabbitmq.reply-to"
_NO_SPAN_ERRORS: dict[str, Any] = {"record_exception": False, "set_status_on_exception": False}


class _HeaderGetter(Getter[Mapping[str, Any]]):
    """AMQP header values arrive as str or bytes (whatever the caller's client sent)."""

    def get(self, carrier: Mapping[str, Any], key: str) -> list[str] | None:
        value = carrier.get(key)
        if isinstance(value, bytes | bytearray):
            value = value.decode("latin-1")
        return [value] if isinstance(value, str) else None

    def keys(self, carrier: Mapping[str, Any]) -> list[str]:
        return list(carrier)


_GETTER = _HeaderGetter()


class TracedConsumer(Consumer):
    """A Consumer whose steps run inside spans; what it answers is the same."""

    def __init__(self, broker: BrokerSettings, instance: int, shared: Shared, tracer: Tracer,
                 db_systems: Mapping[str, str]) -> None:
        super().__init__(broker, instance, shared)
        self._tracer = tracer
        self._db_systems = db_systems   # datasource -> db.system.name

    async def _handle(self, message: DeliveredMessage) -> None:
        props = message.header.properties
        delivery = message.delivery
        exchange = getattr(delivery, "exchange", "") or "amq.default"
        attributes = {
            "messaging.system": "rabbitmq",
            "messaging.operation.type": "process",
            "messaging.operation.name": "process",
            "messaging.destination.name": exchange,
            "messaging.destination.subscription.name": self.broker.queue,
            "messaging.rabbitmq.destination.routing_key": getattr(delivery, "routing_key", ""),
            "messaging.message.body.size": len(message.body),
            "beds.node": self.shared.node,
            "beds.broker": self.broker.name,
        }
        if props.message_id:
            attributes["messaging.message.id"] = props.message_id
        if props.correlation_id:
            attributes["messaging.message.conversation_id"] = props.correlation_id
        try:
            parent = propagate.extract(props.headers or {}, getter=_GETTER)
        except Exception:   # a propagator choking on a caller's header must not lose the request
            parent = Context()   # a new trace
        with self._tracer.start_as_current_span(f"process {exchange}", context=parent,
                                                kind=SpanKind.CONSUMER, attributes=attributes,
                                                **_NO_SPAN_ERRORS):
            await super()._handle(message)

    def _dispatch(self, request: Request, deadline: float | None,
                  props: Any) -> Coroutine[Any, Any, tuple[Route, Result]]:
        route = self.shared.dispatcher.routes.get((request.template, request.op))
        if route is None:   # TEMPLATE_/OP_NOT_FOUND: no database is asked, no span for it
            return super()._dispatch(request, deadline, props)
        return self._traced_dispatch(route, request, deadline, props)

    async def _traced_dispatch(self, route: Route, request: Request, deadline: float | None,
                               props: Any) -> tuple[Route, Result]:
        with self._tracer.start_as_current_span(route.op.object_name, kind=SpanKind.CLIENT,
                                                attributes=self._db_attributes(route),
                                                **_NO_SPAN_ERRORS) as span:
            try:
                return await super()._dispatch(request, deadline, props)
            except RequestError as exc:
                span.set_attribute("error.type", exc.code)
                span.set_status(StatusCode.ERROR, exc.code)
                raise
            except Exception as exc:
                span.set_attribute("error.type", type(exc).__qualname__)
                span.set_status(StatusCode.ERROR, "INTERNAL")
                raise

    def _db_attributes(self, route: Route) -> dict[str, Any]:
        datasource = route.template.datasource
        system = self._db_systems.get(datasource, "other_sql")
        db_system = getattr(route.adapter, "db_system", None)
        if callable(db_system):   # MariaDB and MySQL share an adapter; the server says which
            system = db_system()
        attributes: dict[str, Any] = {
            "db.system.name": system,
            "db.operation.name": route.op.object_name,
            "beds.datasource": datasource,
            "beds.template": route.template.name,
            "beds.op": route.op.name,
        }
        if route.op.target is OpTarget.VIEW:
            attributes["db.collection.name"] = route.op.object_name
        elif route.op.target is OpTarget.PROCEDURE:
            attributes["db.stored_procedure.name"] = route.op.object_name
        return attributes

    async def _reply(self, reply_to: str | None, body: bytes, correlation_id: str | None) -> bool:
        if not reply_to:
            return await super()._reply(reply_to, body, correlation_id)
        direct = reply_to.startswith(DIRECT_REPLY_TO)
        destination = DIRECT_REPLY_TO if direct else reply_to
        attributes: dict[str, Any] = {
            "messaging.system": "rabbitmq",
            "messaging.operation.type": "send",
            "messaging.operation.name": "publish",
            "messaging.destination.name": destination,
            "messaging.destination.temporary": direct,
            "messaging.message.body.size": len(body),
        }
        if correlation_id:
            attributes["messaging.message.conversation_id"] = correlation_id
        with self._tracer.start_as_current_span(f"publish {destination}",
                                                kind=SpanKind.PRODUCER, attributes=attributes,
                                                **_NO_SPAN_ERRORS) as span:
            sent = await super()._reply(reply_to, body, correlation_id)
            if not sent:
                span.set_attribute("error.type", "reply_failed")
                span.set_status(StatusCode.ERROR, "reply_failed")
            return sent

    def _log(self, meta: dict[str, Any], outcome: str, rows: int, started: float,
             props: Any, delivery: Any, attempt: int) -> None:
        span = trace.get_current_span()
        template, op = meta["template"], meta["op"]
        if (template, op) in self.shared.dispatcher.routes:
            span.update_name(f"process {template}.{op}")   # only served names: low cardinality
        if template is not None:
            span.set_attribute("beds.template", cast(str, template))
            span.set_attribute("beds.op", cast(str, op))
        span.set_attribute("beds.outcome", outcome)
        if outcome not in ("ok", "retry"):
            span.set_attribute("error.type", outcome)
        if outcome in SERVER_SIDE:
            span.set_status(StatusCode.ERROR, outcome)
        super()._log(meta, outcome, rows, started, props, delivery, attempt)

    def _trace_fields(self, headers: dict[str, Any] | None) -> Mapping[str, str]:
        context = trace.get_current_span().get_span_context()
        if not context.is_valid:
            return super()._trace_fields(headers)
        return {"trace_id": trace.format_trace_id(context.trace_id),
                "span_id": trace.format_span_id(context.span_id)}
