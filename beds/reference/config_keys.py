"""Every config key, with the type, default and constraint the settings loader applies.

Layer: tooling. Runs `beds.config`'s own validation over `config/beds.toml` with a
`RecordingTable`, so a key added to the loader appears here at the next docs build; a key without
a description below (or a trailing comment in config/beds.toml) fails the build.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

from beds.config import load as config_load
from beds.reference.markdown import code, default_of, table
from beds.reference.recording import Recorder, RecordingTable
from beds.table import Table

DESCRIPTIONS = {
    "node.name": "Node name in logs, metrics, replies (`meta.node`) and control commands; "
                 "must differ per process sharing a RabbitMQ",
    "node.templates_dir": "Template folder, relative to the project (the folder above config/)",
    "node.grace_seconds": "SIGTERM: how long in-flight requests may take to finish",
    "node.log_level": "Lowest level logged",
    "node.log_requests": "One JSON line per request (failures are logged at warning regardless)",
    "amqp.url": "RabbitMQ URL of a single node (ignored when `urls` is set)",
    "amqp.urls": "The RabbitMQ cluster's endpoints, a list (or one comma-separated string, "
                 "`$BEDS_AMQP_URLS`); each connection uses one and moves to another when it is "
                 "lost (docs/scale.md)",
    "amqp.quorum_initial_group_size": "`x-quorum-initial-group-size` of the request, dead-letter "
                                      "and unrouted queues (unset: a member on every node)",
    "amqp.queue_leader_locator": "`x-queue-leader-locator` of those queues: `client-local` or "
                                 "`balanced` (unset: RabbitMQ's default, client-local)",
    "amqp.exchange": "Topic exchange requests are published to (routing key `<template>.<op>`)",
    "amqp.dlx": "Dead-letter exchange of every request queue",
    "amqp.dlq": "Queue bound to the dead-letter exchange: what was dead-lettered, for a human",
    "amqp.max_message_bytes": "BEDS's own request size cap (RabbitMQ's is 128 MiB): "
                              "a bigger body is answered `TOO_LARGE`",
    "amqp.max_reply_bytes": "A bigger result is answered `REPLY_TOO_LARGE` (MariaDB/MySQL: the "
                            "node stops holding a result's rows once they pass this size)",
    "amqp.heartbeat": "AMQP heartbeat, seconds (0 = off)",
    "amqp.reconnect_max_seconds": "Reconnect backoff cap while RabbitMQ is away",
    "datasources.NAME.engine": "Database engine; its driver is imported only when used",
    "datasources.NAME.dsn": "The application account (`scheme://user:password@host:port/db`); "
                            "use `${VAR}` for the password",
    "datasources.NAME.admin_dsn": "Used only by `beds schema apply` (creates the database, the "
                                  "account and the routines)",
    "datasources.NAME.pool_min": "Connections opened at start",
    "datasources.NAME.pool_max": "Most connections in the pool (>= pool_min)",
    "datasources.NAME.connect_timeout": "Seconds to connect",
    "datasources.NAME.statement_timeout": "Seconds a statement may run, enforced by the server "
                                          "where the engine can (0 = no limit)",
    "datasources.NAME.replicas": "Read replicas' DSNs (mysql, postgres only): reads go to a "
                                 "healthy one in turn, writes to `dsn`; see replicas.md",
    "datasources.NAME.max_lag_seconds": "A replica further behind than this serves no reads",
    "datasources.NAME.ryw_wait_ms": "How long a read carrying `x-read-after` waits for a "
                                    "replica to apply that write before the primary serves it",
    "datasources.NAME.schema_dir": "Schema files `beds schema apply` runs in name order; also "
                                   "where MongoDB/DynamoDB named operations are read",
    "brokers.NAME.queue": "The broker's queue",
    "brokers.NAME.kinds": "Op kinds it serves (`read`, `write`, `bulk`)",
    "brokers.NAME.templates": "`[\"*\"]` = every template not claimed by a broker naming it; "
                              "`[]` = only ops that name this broker",
    "brokers.NAME.instances": "Consumer tasks per node (0 = declared but idle)",
    "brokers.NAME.prefetch": "Unacknowledged requests per instance",
    "brokers.NAME.queue_type": "`quorum` (delivery limit, broker retries) or `classic`",
    "brokers.NAME.retries": "Transient failures (`DB_UNAVAILABLE`) requeued this often before "
                            "the caller is answered; quorum queues only",
    "brokers.NAME.service": "`requests` serves template requests; the others are the built-in "
                            "services of the admin and segundo roles",
    "roles.NAME.brokers": "Brokers a node of this role runs",
    "roles.NAME.templates": "This role's folder under `[node] templates_dir` (`\"\"` = that "
                            "folder)",
    "tracing.enabled": "OpenTelemetry spans per request (extra `otel`); the exporter is set by "
                       "the standard `OTEL_*` variables. See [Tracing](../tracing.md).",
    "security.require_user_id": "Refuse requests without the AMQP `user_id` property "
                                "(`FORBIDDEN`)",
    "ops.operators": "RabbitMQ users allowed to drain, resume, rescale and reload nodes "
                     "(the command's `user_id`); default: the user of `[amqp] url`. "
                     "See [Security](../security.md).",
    "ops.control_exchange": "Commands: key `admin` to the admin node, `node.<name>` to one node",
    "ops.events_exchange": "Node events, relayed by the admin's adminBrokerOut",
    "ops.metrics_exchange": "Metric snapshots, key `node.<name>`",
    "ops.logs_exchange": "Shipped log lines and audit events, key `<level>.<node>`",
    "ops.snapshot_seconds": "How often each node publishes its snapshot",
    "ops.http_listen": "`host:port` of /live /ready /metrics (`\"\"` = off)",
    "ops.ship_level": "Lowest log level shipped to the logs exchange",
    "ops.audit_writes": "Ship one audit event per write/bulk call",
    "ops.command_timeout": "Seconds a control command waits for its answer",
    "admin.dashboard_listen": "`host:port` of the dashboard (`\"\"` = off)",
    "admin.log_template": "Template of the log store",
    "admin.log_op": "Op of `log_template` that appends a batch",
    "admin.log_batch": "Lines per log-store batch",
    "admin.log_flush_seconds": "A partial batch is written after this long",
    "admin.syslog": "`udp://host:port` or `unix:///dev/log` (`\"\"` = off)",
    "admin.syslog_app_name": "RFC 5424 APP-NAME",
    "admin.history_seconds": "Metric history the dashboard keeps",
    "admin.syslog_facility": "RFC 5424 facility",
}
"""Keys the code reads -> what they mean. Kept complete by `config_reference` (it refuses a key
that has neither an entry here nor a trailing comment in config/beds.toml)."""

DEFAULT_SHOWN = {
    "brokers.NAME.queue": "`beds.<NAME>`",
    "datasources.NAME.schema_dir": "`schema/<engine>`",
}
"""Defaults computed from the table's name or engine."""

_SECTION_RE = re.compile(r"^\[([^\]]+)\]")
_COMMENTED_RE = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)\s*=.*?#\s*(.+)$")


def record(path: Path) -> Recorder:
    """Run the settings validation over `path` (unset ${VAR}s read as "") and note every key."""
    raw = tomllib.loads(path.read_text(encoding="utf-8"))
    merged = config_load._substitute(raw, "", {}, [])
    recorder = Recorder()
    config_load._validate(RecordingTable(merged, recorder, source=str(path)), path.parent)
    return recorder


def _comments(path: Path) -> dict[str, str]:
    """`key = value   # comment` lines of a config file, by dotted path."""
    found: dict[str, str] = {}
    section = ""
    for line in path.read_text(encoding="utf-8").splitlines():
        if match := _SECTION_RE.match(line):
            section = match.group(1)
        elif match := _COMMENTED_RE.match(line):
            found[f"{section}.{match.group(1)}"] = match.group(2).strip()
    return found


def _generic(table_name: str) -> str:
    return re.sub(r"^(datasources|brokers|roles)\.[^.]+", r"\1.NAME", table_name)


def config_reference(path: Path) -> str:
    """Markdown: one section per config table, one row per key."""
    recorder = record(path)
    shipped: dict[str, Any] = tomllib.loads(path.read_text(encoding="utf-8"))
    comments = {_generic(k.rpartition(".")[0]) + "." + k.rpartition(".")[2]: v
                for k, v in _comments(path).items() if _generic(k) == k}
    missing = [doc.path for doc in recorder.keys.values()
               if doc.path not in DESCRIPTIONS and doc.path not in comments]
    if missing:
        raise ValueError(f"config keys without a description (add them to "
                         f"beds/reference/config_keys.py DESCRIPTIONS): {', '.join(missing)}")
    sections = []
    for name in recorder.tables():
        dynamic = name.endswith(".NAME")
        header = ["key", "type", "default", "accepts"]
        header += [] if dynamic else [f"in `{path.name}`"]
        rows = []
        for doc in recorder.in_table(name):
            row = [f"`{doc.key}`", doc.kind, default_of(doc, DEFAULT_SHOWN),
                   doc.constraint or "any"]
            if not dynamic:
                value = shipped.get(name, {}).get(doc.key)
                row.append(code(value) if value is not None else "—")
            rows.append([*row, DESCRIPTIONS.get(doc.path) or comments[doc.path]])
        header.append("meaning")
        text = f"### `[{name}]`\n\n{table(header, rows)}"
        if dynamic:
            parent = name.removesuffix(".NAME")
            names = ", ".join(f"`{n}`" for n in shipped.get(parent, {}))
            text += f"\n\n`{path.name}` declares: {names or '(none)'}."
        sections.append(text)
    return "\n\n".join(sections)


def env_variables(paths: list[Path]) -> str:
    """Markdown list of the ${VAR}s the shipped config files read, with their defaults."""
    seen: dict[str, set[str]] = {}
    for path in paths:
        lines = path.read_text(encoding="utf-8").splitlines()
        text = "\n".join(line for line in lines if not line.lstrip().startswith("#"))
        for match in config_load._VAR_RE.finditer(text):
            name, default = match.group(1), match.group(2)
            note = ("required" if default is None else
                    "default empty" if not default else f"default `{default}`")
            seen.setdefault(name, set()).add(f"`{path.name}`: {note}")
    rows = [[f"`{name}`", "; ".join(sorted(notes))] for name, notes in sorted(seen.items())]
    return table(["variable", "read by"], rows)


def roles_table(path: Path) -> str:
    """Markdown: each role of the shipped config, its brokers and what each one does."""
    raw = tomllib.loads(path.read_text(encoding="utf-8"))
    merged = config_load._substitute(raw, "", {}, [])
    settings = config_load._validate(Table(merged, lambda _p: str(path)), path.parent)
    rows = []
    for role in settings.roles.values():
        folder = f"`{settings.node.templates_dir.name}/{role.templates}/`" if role.templates \
            else f"`{settings.node.templates_dir.name}/`"
        for name in role.brokers:
            broker = settings.brokers[name]
            serves = (f"service `{broker.service.value}`" if broker.service.value != "requests"
                      else "kinds " + ", ".join(k.value for k in broker.kinds) + "; templates "
                      + (", ".join(broker.templates) or "only ops naming it"))
            rows.append([f"**{role.name}**", folder, f"`{name}`", f"`{broker.queue}`",
                         str(broker.instances), serves])
    return table(["role", "templates", "broker", "queue", "instances", "serves"], rows)
