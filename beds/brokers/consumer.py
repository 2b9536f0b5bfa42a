"""One broker instance: a channel consuming one queue, one message at a time per delivery task.

Layer: application (hot path). Per message: decode -> dispatch -> reply -> ack, and one log line.
A request is acked only after its reply was published and confirmed; poison is rejected without
requeue (-> dead-letter exchange). Nothing a caller sends can end this loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from dataclasses import dataclass
from typing import Any

from beds.amqp import Channel, Delivery, Properties
from beds.brokers.link import (
    AMQP_ERRORS,
    AmqpLink,
    ConsumerCancelled,
    ReplyPublisher,
    serve_until,
)
from beds.brokers.retry import backoff, delivery_count, may_run_again, retry_delay
from beds.config import BrokerSettings, OpKind
from beds.dispatch import Dispatcher, Route
from beds.errors import Disposition, Internal, ReplyTooLarge, RequestError
from beds.log import get_logger, log_line
from beds.ops.metrics import NodeMetrics
from beds.protocol import (
    Request,
    Result,
    deadline_of,
    decode_request,
    encode_error,
    encode_ok,
    read_after_of,
    too_large,
)
from beds.tracecontext import trace_fields

log = get_logger("beds.request")
SERVER_SIDE = frozenset(("DB_UNAVAILABLE", "DB_ERROR", "DEADLINE_EXCEEDED", "INTERNAL",
                         "requeued", "unacked", "reply_lost"))
"""Outcomes that say the service, not the caller, is in trouble: their request line is a
warning (shipped to the admin's log store and syslog) even with log_requests off."""
_errlog = get_logger("beds.consumer")


class ChannelLost(Exception):
    """The channel or its connection closed under a running consumer."""


@dataclass
class Shared:
    """What every consumer of a node shares."""

    node: str
    dispatcher: Dispatcher
    link: AmqpLink
    publisher: ReplyPublisher
    max_message_bytes: int
    max_reply_bytes: int
    log_requests: bool
    grace_seconds: float          # how long a stopping consumer waits for in-flight work
    metrics: NodeMetrics | None = None
    audit: Callable[[dict[str, Any]], None] | None = None   # called once per write/bulk answer
    redeclare: Callable[[], Awaitable[None]] | None = None  # the node's topology, declared again


class Consumer:
    def __init__(self, broker: BrokerSettings, instance: int, shared: Shared) -> None:
        self.broker = broker
        self.instance = instance
        self.shared = shared
        self.name = f"{broker.name}#{instance}"
        self.inflight = 0
        self._idle = asyncio.Event()
        self._idle.set()
        self.consuming = asyncio.Event()
        self.handled = 0

    async def run(self, stop: asyncio.Event) -> None:
        """Consume until `stop`; then drain and return. Raises ChannelLost if the channel dies."""
        channel = await self.shared.link.channel()
        try:
            await channel.basic_qos(prefetch_count=self.broker.prefetch)
            consumer_tag = await channel.basic_consume(self.broker.queue, self._on_message,
                                                       no_ack=False)
        except AMQP_ERRORS as exc:
            raise ChannelLost(f"{self.name}: could not start consuming: {exc}") from exc
        try:
            await serve_until(stop, channel, self.consuming)
        except ConsumerCancelled as exc:
            await self._drain(channel, None)   # answer what it holds, then give the channel up
            if self.shared.redeclare is not None:
                with contextlib.suppress(*AMQP_ERRORS):   # consuming again says what failed
                    await self.shared.redeclare()      # a deleted queue comes back
            raise ChannelLost(f"{self.name}: {exc}; consuming again") from exc
        if channel.is_closed:
            reason = _close_reason(channel)
            raise ChannelLost(f"{self.name}: channel closed: {reason}")
        await self._drain(channel, consumer_tag)

    async def _drain(self, channel: Channel, consumer_tag: str | None) -> None:
        try:
            if consumer_tag:
                await channel.basic_cancel(consumer_tag)   # stop intake first
            await asyncio.wait_for(self._idle.wait(), self.shared.grace_seconds)
        except TimeoutError:
            _errlog.warning("consumer.drain_timeout", broker=self.broker.name,
                            instance=self.instance, unfinished=self.inflight)
        except AMQP_ERRORS:
            pass   # the channel died while draining: its unacked messages are requeued
        finally:
            if not channel.is_closed:
                # Unacked deliveries go back to the queue for another node.
                await channel.close()

    async def _on_message(self, message: Delivery) -> None:
        self.inflight += 1
        self._idle.clear()
        try:
            await self._handle(message)
        finally:
            self.inflight -= 1
            self.handled += 1
            if not self.inflight:
                self._idle.set()

    async def _handle(self, message: Delivery) -> None:
        started = time.perf_counter()
        props = message.properties
        channel = message.channel
        tag = message.delivery_tag
        meta: dict[str, Any] = {"template": None, "op": None, "node": self.shared.node,
                                "broker": self.broker.name}
        rows = 0
        deadline = None
        attempt = delivery_count(props.headers, message.redelivered)
        ran = True   # whether the database may have seen this request (unknown counts as yes)
        try:
            if message.oversized:   # the connection skipped its body: refused from its header
                raise too_large(message.body_size, self.shared.max_message_bytes)
            request = decode_request(message.body, self.shared.max_message_bytes)
            meta["template"], meta["op"] = request.template, request.op
            deadline = deadline_of(props.headers)
            _route, result = await self._dispatch(request, deadline, props)
            rows = len(result.rows)
            meta["rows"] = rows
            meta["elapsed_ms"] = round((time.perf_counter() - started) * 1000, 3)
            body = encode_ok(result, meta)
            if len(body) > self.shared.max_reply_bytes:
                raise ReplyTooLarge(
                    f"reply: {len(body)} bytes exceeds the limit of "
                    f"{self.shared.max_reply_bytes} bytes; ask for a smaller page (limit)")
            outcome, disposition = "ok", Disposition.ACK
        except RequestError as exc:
            delay = self._retry_delay(exc, meta, attempt, deadline)
            if delay is not None:
                # Transient: back off, then let the broker deliver it again (here or to another
                # node); the caller hears only the final outcome.
                await asyncio.sleep(delay)
                self._settle(channel, tag, requeue=True)
                self._log(meta, "retry", 0, started, props, message, attempt)
                return
            body, outcome, disposition = self._error(exc, meta, started)
            ran = exc.details.get("ran") is not False
        except Exception as exc:   # a bug in BEDS: keep serving, keep the message for a human
            _errlog.exception("request.internal_error", broker=self.broker.name,
                              correlation_id=props.correlation_id)
            error = Internal(f"internal error on node {self.shared.node} "
                             f"({type(exc).__name__}); the request was dead-lettered")
            body, outcome, disposition = self._error(error, meta, started)

        if not await self._reply(props.reply_to, body, props.correlation_id):
            outcome = await self._reply_failed(channel, tag, meta, outcome, disposition, ran,
                                               attempt, deadline, props.correlation_id)
        elif not self._settle(channel, tag, ack=disposition is Disposition.ACK):
            outcome = "unacked"
        elif disposition is not Disposition.ACK and self.shared.metrics is not None:
            self.shared.metrics.count(self.broker.name, "dead_lettered")
        self._log(meta, outcome, rows, started, props, message, attempt)

    def _dispatch(self, request: Request, deadline: float | None,
                  props: Properties) -> Coroutine[Any, Any, tuple[Route, Result]]:
        """The database step (beds.brokers.traced wraps it in a span). Returns the dispatcher's
        own coroutine: no extra frame per message."""
        return self.shared.dispatcher.dispatch(request, self.broker.name, deadline,
                                               props.user_id, props.message_id,
                                               read_after_of(props.headers),
                                               self.shared.max_reply_bytes)

    async def _reply_failed(self, channel: Channel, tag: int, meta: dict[str, Any],
                            outcome: str, disposition: Disposition, ran: bool, attempt: int,
                            deadline: float | None, correlation_id: str | None) -> str:
        """The caller did not get its answer. Run the request again only if that cannot repeat
        a write (nothing ran, a read, an idempotent write), after the retry back-off and within
        the queue's count; otherwise settle it as answered: the reply is at-most-once."""
        route = self.shared.dispatcher.routes.get((meta["template"], meta["op"]))
        delay = None
        if disposition is Disposition.ACK and may_run_again(route.op if route else None, ran):
            delay = backoff(self.broker, attempt, deadline)
        if delay is not None:
            await asyncio.sleep(delay)
            return "requeued" if self._settle(channel, tag, requeue=True) else "unacked"
        _errlog.warning("reply.lost", broker=self.broker.name, correlation_id=correlation_id,
                        template=meta["template"], op=meta["op"], outcome=outcome,
                        hint="the request is settled without its reply; a write is not run "
                             "again (retry with the same request id for its stored outcome)")
        if not self._settle(channel, tag, ack=disposition is Disposition.ACK):
            return "unacked"
        return "reply_lost"

    def _retry_delay(self, exc: RequestError, meta: dict[str, Any], attempt: int,
                     deadline: float | None) -> float | None:
        if not exc.retryable:
            return None
        route = self.shared.dispatcher.routes.get((meta["template"], meta["op"]))
        return retry_delay(exc, route.op if route else None, self.broker, attempt, deadline)

    @staticmethod
    def _settle(channel: Channel, tag: int, ack: bool = False, requeue: bool = False) -> bool:
        """ack, reject to the dead-letter exchange, or requeue (queued for the connection's next
        write). False if the channel died: then RabbitMQ redelivers the message and an ack for
        it would mean nothing."""
        try:
            if requeue:
                # basic.reject, never basic.nack: from RabbitMQ 4.3 only a reject raises
                # x-delivery-count, and the retry limit and x-delivery-limit count on it.
                channel.basic_reject(tag, requeue=True)
            elif ack:
                channel.basic_ack(tag)
            else:
                channel.basic_reject(tag, requeue=False)
        except AMQP_ERRORS:
            return False
        return True

    def _log(self, meta: dict[str, Any], outcome: str, rows: int, started: float,
             props: Properties, delivery: Delivery, attempt: int) -> None:
        elapsed = time.perf_counter() - started
        shared = self.shared
        if shared.metrics is not None:
            shared.metrics.observe(meta["template"], meta["op"], outcome, elapsed,
                                   self.broker.name)
            if delivery.redelivered:
                shared.metrics.count(self.broker.name, "redelivered")
        if shared.log_requests or outcome in SERVER_SIDE:
            # The order of these keys is the order of the line's fields (log_line keeps it).
            fields = {"template": meta["template"], "op": meta["op"], "outcome": outcome,
                      "rows": rows, "elapsed_ms": round(elapsed * 1000, 3),
                      "correlation_id": props.correlation_id, "message_id": props.message_id,
                      "user": props.user_id, "redelivered": delivery.redelivered or None,
                      "attempt": attempt + 1, "node": shared.node, "broker": self.broker.name}
            trace = self._trace_fields(props.headers)
            if trace:
                fields.update(trace)
            log_line(log, "warning" if outcome in SERVER_SIDE else "info", "request", fields)
        if shared.audit is not None and outcome != "retry":
            route = shared.dispatcher.routes.get((meta["template"], meta["op"]))
            if route is not None and route.op.kind in (OpKind.WRITE, OpKind.BULK):
                shared.audit({"template": meta["template"], "op": meta["op"], "outcome": outcome,
                              "user": props.user_id, "correlation_id": props.correlation_id,
                              "message_id": props.message_id, "node": shared.node,
                              "broker": self.broker.name, "elapsed_ms": round(elapsed * 1000, 3)})

    def _trace_fields(self, headers: dict[str, Any] | None) -> Mapping[str, str]:
        """trace_id/span_id for the request line: the caller's, from its traceparent header
        (beds.brokers.traced gives the node's own span instead)."""
        return trace_fields(headers)

    @staticmethod
    def _error(exc: RequestError, meta: dict[str, Any],
               started: float) -> tuple[bytes, str, Disposition]:
        meta["elapsed_ms"] = round((time.perf_counter() - started) * 1000, 3)
        return encode_error(exc, meta), exc.code, exc.disposition

    async def _reply(self, reply_to: str | None, body: bytes, correlation_id: str | None) -> bool:
        if not reply_to:
            return True   # fire-and-forget request: nothing to send
        try:
            await self.shared.publisher.publish(reply_to, body, correlation_id)
        except AMQP_ERRORS as exc:
            _errlog.warning("reply.failed", broker=self.broker.name,
                            correlation_id=correlation_id, error=f"{type(exc).__name__}: {exc}")
            return False
        return True


def _close_reason(channel: Channel) -> str:
    closing = channel.closing
    if closing.done() and not closing.cancelled() and closing.exception() is not None:
        return f"{type(closing.exception()).__name__}: {closing.exception()}"
    return "closed"
