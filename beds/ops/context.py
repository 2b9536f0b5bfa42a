"""What a built-in service (admin, warehouse) gets from the node that runs it.

Layer: operations. Services never import beds.node: they see the node through `ServingNode`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from beds.adapters import Adapter
from beds.brokers.link import AmqpLink, ReplyPublisher
from beds.brokers.pool import Worker
from beds.config import BrokerSettings, RoleSettings, Settings
from beds.dispatch import Dispatcher
from beds.ops.control import Controllable
from beds.ops.events import Events
from beds.ops.metrics import NodeMetrics


class ServingNode(Controllable, Protocol):
    dispatcher: Dispatcher           # replaced on reload: read it per use, do not keep it
    adapters: dict[str, Adapter]
    ready: asyncio.Event             # set once the first consumers are registered
    draining: bool


@dataclass
class NodeContext:
    settings: Settings
    role: RoleSettings
    node: ServingNode
    link: AmqpLink                   # the consuming connection: open channels with link.channel()
    publisher: ReplyPublisher        # confirmed publishes: replies, events, snapshots, logs
    metrics: NodeMetrics
    events: Events
    shared: dict[str, Any] = field(default_factory=dict)   # state the role's services share


ServiceFactory = Callable[[NodeContext, BrokerSettings, int], Worker]
