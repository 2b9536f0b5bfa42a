"""The consumer's settle decision for each outcome, on an in-memory channel (no RabbitMQ):
ack, reject to the dead-letter exchange, requeue with basic.reject(requeue=True) (never nack:
RabbitMQ 4.3+ counts x-delivery-count only on reject), or nothing when the channel died.

The reply goes through the real ReplyPublisher onto the same in-memory channel, so a failing
confirm (a named reply queue that is gone, a closed channel) takes the real path."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from beds.amqp import ChannelClosed, PublishReturned
from beds.brokers import consumer as consumer_module
from beds.brokers.consumer import Consumer, Shared
from beds.brokers.link import ReplyPublisher
from beds.config import QueueType
from beds.errors import BadRequest, DbUnavailable
from beds.protocol import Result, encode_request
from tests.support.amqp_memory import MemoryChannel, MemoryLink, delivery
from tests.unit.test_dispatch import SETTINGS, build

MAX_BYTES = 4096
PAYMENT = {"customer_id": 1, "amount": 1.5, "paid_at": "2026-12-01T10:00:00"}


class _RecordedSleep:
    """The consumer module's `asyncio`, whose sleep records the retry back-off instead of
    sleeping (only that module's name is replaced: the event loop's other tasks still sleep)."""

    def __init__(self) -> None:
        self.slept: list[float] = []

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)

    def __getattr__(self, name: str) -> Any:
        return getattr(asyncio, name)


@pytest.fixture(autouse=True)
def no_backoff(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    recorded = _RecordedSleep()
    monkeypatch.setattr(consumer_module, "asyncio", recorded)
    return recorded.slept


class Rig:
    def __init__(self, broker: str = "rBroker", queue_type: QueueType = QueueType.QUORUM) -> None:
        self.dispatcher, self.stub = build()
        self.channel = MemoryChannel()                 # deliveries arrive and settle here
        self.replies = MemoryChannel()                 # the reply publisher's channel
        settings = SETTINGS.brokers[broker]
        self.broker = type(settings)(**{**settings.__dict__, "queue_type": queue_type})
        shared = Shared(node="n1", dispatcher=self.dispatcher, link=None,  # type: ignore[arg-type]
                        publisher=ReplyPublisher(MemoryLink(self.replies)),  # type: ignore[arg-type]
                        max_message_bytes=MAX_BYTES, max_reply_bytes=1 << 20,
                        log_requests=False, grace_seconds=1.0)
        self.consumer = Consumer(self.broker, 1, shared)

    async def handle(self, template: str, op: str, params: dict[str, Any] | None = None, *,
                     attempt: int = 0, reply_to: str = "amq.rabbitmq.reply-to.abc",
                     **options: Any) -> list[tuple[str, int, bool]]:
        body = encode_request(template, op, params or {})
        headers = {"x-delivery-count": attempt} if attempt else None
        message = delivery(self.channel, body, 7, redelivered=attempt > 0, headers=headers,
                           routing_key=f"{template}.{op}", correlation_id="c1",
                           reply_to=reply_to, message_id="m1", **options)
        await self.consumer._handle(message)
        return self.channel.settled

    def reply(self) -> dict[str, Any]:
        (sent,) = self.replies.published
        assert sent["properties"].correlation_id == "c1"
        return dict(json.loads(sent["body"]))


async def test_ok_is_acked_after_its_reply() -> None:
    rig = Rig()
    rig.stub.results["film_fetch"] = Result(rows=[{"film_id": 1}])
    assert await rig.handle("film", "fetch", {"film_id": 1}) == [("ack", 7, False)]
    assert rig.reply()["ok"] is True and rig.reply()["data"] == [{"film_id": 1}]


async def test_a_caller_error_is_answered_and_dead_lettered() -> None:
    rig = Rig()
    assert await rig.handle("film", "nope") == [("reject", 7, False)]
    assert rig.reply()["error"]["code"] == "OP_NOT_FOUND"


async def test_bad_json_is_answered_and_dead_lettered() -> None:
    rig = Rig()
    rig.stub.results["film_fetch"] = BadRequest("never reached")
    message = delivery(rig.channel, b"{not json", 3, correlation_id="c1",
                       reply_to="amq.rabbitmq.reply-to.abc")
    await rig.consumer._handle(message)
    assert rig.channel.settled == [("reject", 3, False)]
    assert rig.reply()["error"]["code"] == "BAD_REQUEST"


async def test_an_oversized_delivery_is_refused_like_a_big_body(no_backoff: list[float]) -> None:
    """A body the connection skipped (over max_body_bytes) gets decode_request's own refusal."""
    rig = Rig()
    message = delivery(rig.channel, b"", 9, oversized_size=MAX_BYTES * 10, correlation_id="c1",
                       reply_to="amq.rabbitmq.reply-to.abc")
    await rig.consumer._handle(message)
    assert rig.channel.settled == [("reject", 9, False)]
    error = rig.reply()["error"]
    assert error["code"] == "TOO_LARGE"
    assert error["message"] == f"body: {MAX_BYTES * 10} bytes exceeds the limit of {MAX_BYTES} bytes"
    big = Rig()
    await big.handle("film", "fetch", {"title": "x" * MAX_BYTES})   # assembled, then refused
    assert big.reply()["error"]["message"].startswith("body: ")
    assert big.reply()["error"]["code"] == "TOO_LARGE" and big.channel.settled[0][0] == "reject"
    assert not no_backoff


async def test_a_transient_error_with_retries_left_is_requeued_by_reject(
        no_backoff: list[float]) -> None:
    rig = Rig()
    rig.stub.results["film_fetch"] = DbUnavailable("connection lost")
    assert await rig.handle("film", "fetch", {"film_id": 1}, attempt=1) == [("reject", 7, True)]
    assert rig.replies.published == []          # the caller hears only the final outcome
    assert no_backoff == [0.4]


async def test_a_transient_error_without_retries_left_is_answered(
        no_backoff: list[float]) -> None:
    rig = Rig()
    rig.stub.results["film_fetch"] = DbUnavailable("connection lost")
    retries = rig.broker.retries
    assert await rig.handle("film", "fetch", {"film_id": 1}, attempt=retries) == [
        ("reject", 7, False)]
    assert rig.reply()["error"]["code"] == "DB_UNAVAILABLE" and not no_backoff


async def test_a_classic_queue_answers_a_transient_error_at_once() -> None:
    rig = Rig(queue_type=QueueType.CLASSIC)
    rig.stub.results["film_fetch"] = DbUnavailable("connection lost")
    assert await rig.handle("film", "fetch", {"film_id": 1}) == [("reject", 7, False)]


async def test_a_lost_reply_of_a_read_is_requeued(no_backoff: list[float]) -> None:
    rig = Rig()
    rig.replies.fail_publish = ChannelClosed(0, "channel 1 is closed")
    assert await rig.handle("film", "fetch", {"film_id": 1}) == [("reject", 7, True)]
    assert no_backoff == [0.2]


async def test_a_lost_reply_of_a_write_is_settled_as_answered(no_backoff: list[float]) -> None:
    """A write without an idempotency key is never run twice: the reply is at-most-once."""
    rig = Rig("wBroker")
    rig.replies.fail_publish = PublishReturned(312, "NO_ROUTE", "", "gone.queue")
    settled = await rig.handle("customer", "add_payment", PAYMENT, reply_to="gone.queue")
    assert rig.stub.calls[0][0] == "payment_add"   # it ran: running it again would pay twice
    assert settled == [("ack", 7, False)] and not no_backoff
    assert rig.replies.published[0]["mandatory"] is True   # a named reply queue: mandatory


async def test_a_lost_reply_of_an_idempotent_write_is_requeued(no_backoff: list[float]) -> None:
    rig = Rig("wBroker")
    rig.replies.fail_publish = PublishReturned(312, "NO_ROUTE", "", "gone.queue")
    settled = await rig.handle("customer", "pay", {**PAYMENT, "request_id": "r1"},
                               reply_to="gone.queue")
    assert rig.stub.calls[0][0] == "payment_record"
    assert settled == [("reject", 7, True)] and no_backoff == [0.2]


async def test_a_dead_channel_leaves_the_message_unacked() -> None:
    rig = Rig()
    rig.channel.close_with(ChannelClosed(320, "CONNECTION_FORCED"))
    assert await rig.handle("film", "fetch", {"film_id": 1}) == []
    assert rig.reply()["ok"] is True               # answered; RabbitMQ redelivers the request
