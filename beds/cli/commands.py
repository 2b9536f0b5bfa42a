"""The CLI commands that work on one config: call, templates list, config show, schema apply.

Layer: interface (CLI). Each takes the loaded Settings and the parsed arguments, prints its
result (JSON with --json) and returns the exit code; failures are raised as BEDS errors and
worded once by beds.cli.failures.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

import tomli_w

from beds.config import Settings, masked
from beds.errors import ConfigError


def print_json(data: Any, compact: bool = False) -> None:
    print(json.dumps(data, ensure_ascii=False, indent=None if compact else 2))


async def call(settings: Settings, args: argparse.Namespace) -> int:
    from beds.client import Client

    # One --timeout for the whole call, connecting included (the client retries a connect
    # that fails until then: RabbitMQ may be starting).
    async with Client(urls=settings.amqp.endpoints, exchange=settings.amqp.exchange,
                      default_timeout=args.timeout,
                      user_id=args.user_id) as client:
        reply = await client.call_raw(args.template, args.op, args.params, limit=args.limit,
                                      offset=args.offset, cursor=args.cursor,
                                      timeout=args.timeout, deadline=args.deadline,
                                      message_id=args.message_id)
    print_json(reply, compact=args.json)
    return 0 if reply.get("ok") else 1


def templates_list(settings: Settings, args: argparse.Namespace) -> int:
    from beds.node import Node

    node = Node.build(settings, args.templates_role or next(iter(settings.roles)))
    rows = [{"template": template, "op": op, "kind": route.op.kind.value,
             "target": route.op.target.value, "object": route.op.object_name,
             "broker": route.broker, "datasource": route.template.datasource}
            for (template, op), route in sorted(node.dispatcher.routes.items())]
    if args.json:
        print_json(rows)
        return 0
    for row in rows:
        print(f"{row['template']}.{row['op']}\t{row['kind']}\t{row['target']} {row['object']}\t"
              f"{row['broker']}\t{row['datasource']}")
    return 0


def config_show(settings: Settings, args: argparse.Namespace) -> int:
    data = dict(settings.merged)
    role = args.show_role
    if role is not None:
        chosen = settings.role(role)
        data["roles"] = {role: data["roles"][role]}
        data["brokers"] = {b: data["brokers"][b] for b in chosen.brokers}
    if args.json:
        print_json({"files": list(settings.files), "config": masked(data),
                    "unset": {name: list(keys) for name, keys in settings.unset.items()}})
        return 0
    print(f"# effective config from: {', '.join(settings.files)} (secrets masked)")
    for name, keys in settings.unset.items():
        print(f"# {name} is not set: empty in {', '.join(keys)}")
    print(tomli_w.dumps(masked(data)), end="")
    return 0


async def schema_apply(settings: Settings, args: argparse.Namespace) -> int:
    from beds.adapters import create_adapter, schema_tool

    name = args.datasource
    if name not in settings.datasources:
        known = ", ".join(sorted(settings.datasources))
        raise ConfigError(f"--datasource: no datasource {name!r}; known: {known}")
    ds = settings.datasources[name]
    files = sorted(p for p in ds.schema_dir.glob("*") if p.is_file() and p.suffix in
                   (".sql", ".json", ".js", ".toml"))
    if not files:
        raise ConfigError(f"datasources.{name}.schema_dir: no schema files in {ds.schema_dir}")
    applied = await schema_tool(create_adapter(ds)).apply_schema(files, args.reset_password)
    for path in applied.files:
        print(f"applied {path}")
    print(applied.account)
    return 0
