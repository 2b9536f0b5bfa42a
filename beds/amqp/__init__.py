"""BEDS's own asyncio AMQP 0-9-1 client: the connection every node, client and command uses.

Layer: infrastructure. Built for CPU per message (see connection.py); covers what BEDS does with
RabbitMQ: PLAIN login and tune, heartbeats, blocked/unblocked, channels and their close reason,
exchange/queue declare/bind/unbind/delete/purge, qos, consume/cancel (also server-sent),
publish with mandatory and pipelined confirms, ack/reject/nack, flow.
"""

from beds.amqp.channel import Channel, Delivery, QueueDeclareOk
from beds.amqp.connection import Connection, connect
from beds.amqp.errors import (
    AccessRefused,
    AMQPError,
    AuthenticationError,
    ChannelClosed,
    ConnectionClosed,
    ConnectionLost,
    FrameError,
    NotFound,
    PreconditionFailed,
    PublishNacked,
    PublishReturned,
    ResourceLocked,
)
from beds.amqp.properties import Properties

__all__ = [
    "AMQPError",
    "AccessRefused",
    "AuthenticationError",
    "Channel",
    "ChannelClosed",
    "Connection",
    "ConnectionClosed",
    "ConnectionLost",
    "Delivery",
    "FrameError",
    "NotFound",
    "PreconditionFailed",
    "Properties",
    "PublishNacked",
    "PublishReturned",
    "QueueDeclareOk",
    "ResourceLocked",
    "connect",
]
