"""The node settings model: frozen, typed dataclasses and the enums spelled as in TOML.

Layer: foundation. Pure data; `beds.config.load` builds these from the TOML files and validates
every value before anything connects.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from beds.config.ops import (
    AdminSettings,
    OpsSettings,
    Service,
    TracingSettings,
    admin_settings,
    ops_settings,
)
from beds.errors import ConfigError
from beds.table import Table

DELIVERY_LIMIT = 20
"""Quorum queues dead-letter a message delivered more often than this (a crash loop)."""


class OpKind(StrEnum):
    READ = "read"
    WRITE = "write"
    BULK = "bulk"


class Engine(StrEnum):
    MYSQL = "mysql"
    POSTGRES = "postgres"
    MONGODB = "mongodb"
    DYNAMODB = "dynamodb"


class QueueType(StrEnum):
    QUORUM = "quorum"
    CLASSIC = "classic"


@dataclass(frozen=True)
class NodeSettings:
    name: str
    templates_dir: Path
    grace_seconds: float
    log_level: str
    log_requests: bool


@dataclass(frozen=True)
class AmqpSettings:
    url: str
    exchange: str
    dlx: str
    dlq: str
    max_message_bytes: int
    max_reply_bytes: int
    heartbeat: int
    reconnect_max_seconds: float
    # [amqp] urls: the cluster's endpoints; when set, `url` is its first entry (see endpoints).
    urls: tuple[str, ...] = ()
    quorum_group_size: int | None = None   # x-quorum-initial-group-size; None: every node
    leader_locator: str | None = None      # x-queue-leader-locator; None: RabbitMQ's default

    @property
    def endpoints(self) -> tuple[str, ...]:
        """Every RabbitMQ endpoint a connection may use: `urls`, else the one `url`."""
        return self.urls or (self.url,)


LEADER_LOCATORS = ("client-local", "balanced")


@dataclass(frozen=True)
class DatasourceSettings:
    name: str
    engine: Engine
    dsn: str
    admin_dsn: str | None
    pool_min: int
    pool_max: int
    connect_timeout: float
    statement_timeout: float
    schema_dir: Path
    replicas: tuple[str, ...] = ()      # read replicas' DSNs (mysql, postgres): docs/replicas.md
    max_lag_seconds: float = 5.0        # a replica further behind serves no reads
    ryw_wait_ms: int = 200              # how long a read-your-writes read waits for a replica


@dataclass(frozen=True)
class BrokerSettings:
    name: str
    queue: str
    kinds: tuple[OpKind, ...]
    templates: tuple[str, ...]   # "*" = every template not claimed by a broker naming it
    instances: int
    prefetch: int
    queue_type: QueueType
    retries: int        # transient failures requeued this often (quorum queues) before answering
    service: Service = Service.REQUESTS   # what the broker runs (template requests or built-in)


@dataclass(frozen=True)
class RoleSettings:
    name: str
    brokers: tuple[str, ...]
    templates: str = ""   # this role's folder under [node] templates_dir; "" = that folder


@dataclass(frozen=True)
class SecuritySettings:
    require_user_id: bool = False   # every request must carry the AMQP user_id property


@dataclass(frozen=True)
class Settings:
    node: NodeSettings
    amqp: AmqpSettings
    datasources: dict[str, DatasourceSettings]
    brokers: dict[str, BrokerSettings]
    roles: dict[str, RoleSettings]
    security: SecuritySettings = field(default_factory=SecuritySettings)
    ops: OpsSettings = field(default_factory=lambda: ops_settings(Table({}, lambda _p: "")))
    admin: AdminSettings = field(default_factory=lambda: admin_settings(Table({}, lambda _p: "")))
    tracing: TracingSettings = field(default_factory=TracingSettings)
    files: tuple[str, ...] = field(default=())
    merged: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)
    unset: dict[str, tuple[str, ...]] = field(default_factory=dict, compare=False)
    """${VAR}s not set, left empty (only outside the `sections` loaded): VAR -> config keys."""

    def role(self, name: str) -> RoleSettings:
        if name not in self.roles:
            known = ", ".join(sorted(self.roles))
            raise ConfigError(f"{self.files[0]}: roles.{name}: no such role; expected one of: {known}")
        return self.roles[name]

    def templates_dir(self, role: str | None = None) -> Path:
        """Where the templates a node of `role` serves live (`[roles.X] templates`)."""
        sub = self.roles[role].templates if role in self.roles else ""
        return self.node.templates_dir / sub if sub else self.node.templates_dir
