"""Settings of the operations plane: control commands, events, metric snapshots, log shipping,
health endpoints (`[ops]`), what the admin role does with them (`[admin]`) and tracing
(`[tracing]`).

Layer: foundation, beside `beds.config.load` (which calls `ops_settings` / `admin_settings`). Pure.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

from beds.table import Table

_NAME_RE = re.compile(r"[A-Za-z0-9_.:-]{1,200}")
_LISTEN_RE = re.compile(r"(|[A-Za-z0-9_.-]+:\d{1,5}|\[[0-9A-Fa-f:]+\]:\d{1,5})")
_SYSLOG_RE = re.compile(r"(|udp://[A-Za-z0-9_.-]+:\d{1,5}|unix://\S+)")
SYSLOG_FACILITIES = ("kern", "user", "mail", "daemon", "auth", "syslog", "lpr", "news", "uucp",
                     "cron", "authpriv", "ftp", "local0", "local1", "local2", "local3", "local4",
                     "local5", "local6", "local7")   # RFC 5424 facility codes 0-11, 16-23


class Service(StrEnum):
    """What a broker runs. `requests` consumes template requests; the others are built in."""

    REQUESTS = "requests"
    ADMIN_IN = "admin-in"          # control commands for the cluster
    ADMIN_OUT = "admin-out"        # node events -> the events exchange
    ADMIN_LOGS = "admin-logs"      # log lines -> the log store template, in batches
    ADMIN_SYSLOG = "admin-syslog"  # log lines -> syslog (RFC 5424)
    ADMIN_GRAPH = "admin-graph"    # metric snapshots -> dashboard
    WAREHOUSE = "warehouse"        # HOT -> COOL mover (segundo)


@dataclass(frozen=True)
class OpsSettings:
    control_exchange: str      # commands: key "admin" -> admin nodes, "node.<name>" -> one node
    events_exchange: str       # node events, relayed by the admin's adminBrokerOut
    metrics_exchange: str      # periodic metric snapshots, key "node.<name>"
    logs_exchange: str         # warning-and-above lines and audit events, key "<level>.<node>"
    snapshot_seconds: float
    http_listen: str           # "host:port" for /live /ready /metrics; "" = off
    ship_level: str            # lowest level shipped to the logs exchange
    audit_writes: bool         # ship one audit event per write/bulk call
    command_timeout: float     # how long a command waits for its answer
    # RabbitMQ users whose commands change a node (drain, resume, set-instances, reload);
    # None = the user of [amqp] url. RabbitMQ validates a message's user_id against its
    # connection, so a node account not listed here cannot drain the cluster.
    operators: tuple[str, ...] | None = None


@dataclass(frozen=True)
class AdminSettings:
    dashboard_listen: str      # "host:port" of the dashboard; "" = off
    log_template: str          # the DBA-owned log store: template and op that append a batch
    log_op: str
    log_batch: int
    log_flush_seconds: float
    syslog: str                # udp://host:port or unix:///dev/log; "" = off
    syslog_app_name: str
    history_seconds: int       # how much metric history the dashboard keeps
    syslog_facility: str = "local0"   # one of SYSLOG_FACILITIES


@dataclass(frozen=True)
class TracingSettings:
    enabled: bool = False      # OpenTelemetry spans (extra `otel`); OTEL_* env vars configure them


def tracing_settings(t: Table) -> TracingSettings:
    t.reject_unknown(["enabled"])
    return TracingSettings(enabled=t.flag("enabled", False))


def ops_settings(t: Table) -> OpsSettings:
    t.reject_unknown(["control_exchange", "events_exchange", "metrics_exchange", "logs_exchange",
                      "snapshot_seconds", "http_listen", "ship_level", "audit_writes",
                      "command_timeout", "operators"])
    return OpsSettings(
        control_exchange=t.text("control_exchange", "beds.control", pattern=_NAME_RE),
        events_exchange=t.text("events_exchange", "beds.events", pattern=_NAME_RE),
        metrics_exchange=t.text("metrics_exchange", "beds.metrics", pattern=_NAME_RE),
        logs_exchange=t.text("logs_exchange", "beds.logs", pattern=_NAME_RE),
        snapshot_seconds=t.number("snapshot_seconds", 2.0, minimum=0.1),
        http_listen=t.text("http_listen", "", pattern=_LISTEN_RE),
        ship_level=t.text("ship_level", "warning", choices=("warning", "error", "critical")),
        audit_writes=t.flag("audit_writes", True),
        command_timeout=t.number("command_timeout", 5.0, minimum=0.1),
        operators=t.names("operators", None),
    )


def admin_settings(t: Table) -> AdminSettings:
    t.reject_unknown(["dashboard_listen", "log_template", "log_op", "log_batch",
                      "log_flush_seconds", "syslog", "syslog_app_name", "history_seconds",
                      "syslog_facility"])
    return AdminSettings(
        dashboard_listen=t.text("dashboard_listen", "", pattern=_LISTEN_RE),
        log_template=t.text("log_template", "logs"),
        log_op=t.text("log_op", "append"),
        log_batch=t.integer("log_batch", 200, minimum=1),
        log_flush_seconds=t.number("log_flush_seconds", 1.0, minimum=0.05),
        syslog=t.text("syslog", "", pattern=_SYSLOG_RE),
        syslog_app_name=t.text("syslog_app_name", "beds", pattern=re.compile(r"[!-~]{1,48}")),
        history_seconds=t.integer("history_seconds", 600, minimum=10),
        syslog_facility=t.text("syslog_facility", "local0", choices=SYSLOG_FACILITIES),
    )


def split_listen(listen: str) -> tuple[str, int]:
    """"host:port" -> (host, port); "[::1]:80" -> ("::1", 80)."""
    host, _, port = listen.rpartition(":")
    return host.strip("[]"), int(port)
