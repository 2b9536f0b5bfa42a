"""Exchanges, queues and bindings a node declares before it consumes.

Layer: infrastructure. Idempotent: every node declares the same objects with the same arguments.

  exchange  beds       (topic, durable)  requests, routing key <template>.<op>
  exchange  beds.unrouted (fanout)       the alternate exchange of `beds`: a routing key no queue
                                         is bound to lands here, and the node answers it with
                                         TEMPLATE_NOT_FOUND / OP_NOT_FOUND instead of silence
  exchange  beds.dlx   (fanout, durable) poison requests, rejected without requeue
  queue     beds.dead  (quorum, bounded) bound to beds.dlx: what was dead-lettered, for a human
  queue     per broker (quorum by default, x-dead-letter-exchange = beds.dlx)

`beds.unrouted` and `beds.dead` are quorum queues with a length bound and reject-publish (so
dead-lettering into them is at-least-once and a flood cannot grow them without end). Every
quorum queue here is replicated over the cluster ([amqp] quorum_initial_group_size members,
leader placed by queue_leader_locator); the per-node control queues (beds.ops.control) are
exclusive to their connection and stay on its RabbitMQ node. Queues
declared by an older BEDS as classic must be deleted once (docs/migration.md): RabbitMQ refuses
to redeclare a queue with other arguments.
"""

from __future__ import annotations

from typing import Any

import aiormq
from aiormq.abc import AbstractChannel

from beds.config import DELIVERY_LIMIT, AmqpSettings, BrokerSettings, QueueType
from beds.config.ops import OpsSettings
from beds.errors import BedsError


class TopologyError(BedsError):
    """RabbitMQ refused a declaration (usually: the queue exists with other arguments)."""


def unrouted_name(amqp: AmqpSettings) -> str:
    return f"{amqp.exchange}.unrouted"


UNROUTED_MAX = 100_000       # unroutable requests waiting for an answer
DEAD_MAX = 1_000_000         # dead letters kept for a human ...
DEAD_MAX_BYTES = 1 << 30     # ... and their bytes (1 GiB)


def unrouted_broker(amqp: AmqpSettings) -> BrokerSettings:
    """Every node answers unroutable requests (unknown template or op) from this queue."""
    return BrokerSettings(name="unrouted", queue=unrouted_name(amqp), kinds=(), templates=(),
                          instances=1, prefetch=16, queue_type=QueueType.QUORUM, retries=0)


def bounded_quorum(max_length: int, max_bytes: int | None = None) -> dict[str, Any]:
    args: dict[str, Any] = {"x-queue-type": "quorum", "x-max-length": max_length,
                            "x-overflow": "reject-publish"}
    if max_bytes is not None:
        args["x-max-length-bytes"] = max_bytes
    return args


def placement(amqp: AmqpSettings) -> dict[str, Any]:
    """Where a quorum queue's members and leader go ([amqp] quorum_initial_group_size,
    queue_leader_locator); nothing when unset, so queues declared before keep their arguments
    (RabbitMQ refuses a redeclaration with other ones: docs/scale.md, migrating)."""
    args: dict[str, Any] = {}
    if amqp.quorum_group_size is not None:
        args["x-quorum-initial-group-size"] = amqp.quorum_group_size
    if amqp.leader_locator is not None:
        args["x-queue-leader-locator"] = amqp.leader_locator
    return args


def queue_arguments(amqp: AmqpSettings, broker: BrokerSettings) -> dict[str, Any]:
    args: dict[str, Any] = {"x-queue-type": broker.queue_type.value,
                            "x-dead-letter-exchange": amqp.dlx}
    if broker.queue_type is QueueType.QUORUM:
        args.update(placement(amqp))
        args["x-delivery-limit"] = DELIVERY_LIMIT
        # Dead-lettering is at-most-once unless asked otherwise: a poison message rejected while
        # the dead-letter queue cannot take it would vanish. At-least-once needs reject-publish.
        args["x-dead-letter-strategy"] = "at-least-once"
        args["x-overflow"] = "reject-publish"
    return args


async def declare(channel: AbstractChannel, amqp: AmqpSettings,
                  bindings: dict[BrokerSettings, list[str]]) -> None:
    try:
        await channel.exchange_declare(unrouted_name(amqp), exchange_type="fanout", durable=True)
        await channel.queue_declare(unrouted_name(amqp), durable=True, arguments={
            **queue_arguments(amqp, unrouted_broker(amqp)), **bounded_quorum(UNROUTED_MAX)})
        await channel.queue_bind(unrouted_name(amqp), unrouted_name(amqp), routing_key="")
        await channel.exchange_declare(amqp.exchange, exchange_type="topic", durable=True,
                                       arguments={"alternate-exchange": unrouted_name(amqp)})
        await channel.exchange_declare(amqp.dlx, exchange_type="fanout", durable=True)
        await channel.queue_declare(amqp.dlq, durable=True, arguments={
            **bounded_quorum(DEAD_MAX, DEAD_MAX_BYTES), **placement(amqp)})
        await channel.queue_bind(amqp.dlq, amqp.dlx, routing_key="")
        for broker, keys in bindings.items():
            await channel.queue_declare(broker.queue, durable=True,
                                        arguments=queue_arguments(amqp, broker))
            for key in keys:
                await channel.queue_bind(broker.queue, amqp.exchange, routing_key=key)
    except aiormq.exceptions.ChannelPreconditionFailed as exc:
        raise TopologyError(
            f"RabbitMQ refused a declaration: {exc}. A queue or exchange of that name exists "
            "with other arguments (e.g. a classic queue where the config says quorum): delete "
            "it, or choose another name in the config (brokers.NAME.queue / amqp.exchange); "
            "see docs/migration.md"
        ) from None


async def declare_ops(channel: AbstractChannel, ops: OpsSettings) -> None:
    """The operations plane's exchanges; every node declares them, the admin binds queues."""
    for name in (ops.control_exchange, ops.events_exchange, ops.metrics_exchange,
                 ops.logs_exchange):
        try:
            await channel.exchange_declare(name, exchange_type="topic", durable=True)
        except aiormq.exceptions.ChannelPreconditionFailed as exc:
            raise TopologyError(f"RabbitMQ refused exchange {name!r}: {exc}. It exists with "
                                "another type: delete it or rename it in [ops]") from None
