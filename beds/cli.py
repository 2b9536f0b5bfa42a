"""The `beds` command. Thin: parse, load settings, hand over. `main(argv) -> int` for tests.

Exit codes: 0 ok; 1 the work failed (error reply, problems found, runtime failure);
2 usage, config or template error (nothing was started).

  beds --role NAME [--config PATH] [--env PATH]      run a node
       [--workers N]                                  ... as N processes under a supervisor
  beds call TEMPLATE OP [--params JSON] [--limit N] [--offset N] [--timeout S]
  beds templates check [--role NAME]                  templates vs the live database
  beds config show [--role NAME]                      effective config, secrets masked
  beds schema apply --datasource NAME                 apply schema/<engine>/ files in order
  beds scaffold SPEC --engine ENGINE [--out DIR]      schema + template + docs from a domain spec
  beds scaffold --describe TEXT [--write SPEC]        a spec drafted by a chat endpoint you provide
  beds docs [--out DIR]                               AsyncAPI 3.0 document + Markdown catalogue
  beds client-gen --python OUT                        a typed client module for the catalogue
  beds status | ping                                  the cluster, as the admin node sees it
  beds scale NODE BROKER N                            run N instances of a broker, now
  beds drain NODE | beds resume NODE                  stop / restart taking requests on a node
  beds reload [NODE]                                  reload templates (checked first)
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Coroutine, Sequence
from pathlib import Path
from typing import Any

import tomli_w

from beds import asyncapi, clientgen
from beds.config import DEFAULT_CONFIG, Settings, load_settings, masked
from beds.errors import BedsError, CallTimeout, ConfigError, NoRoute, RequestError, TemplateError
from beds.log import setup_logging
from beds.ops import console
from beds.scaffold import command as scaffold


def _parser() -> argparse.ArgumentParser:
    # SUPPRESS: a subcommand repeating these options must not reset what was given before it
    # (`beds --env X schema apply` and `beds schema apply --env X` mean the same).
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--config", default=argparse.SUPPRESS,
                        help="base config file (default: config/beds.toml)")
    common.add_argument("--env", default=argparse.SUPPRESS,
                        help="environment override file (default: $BEDS_ENV_FILE, else "
                             "config/env.toml when present)")
    parser = argparse.ArgumentParser(prog="beds", parents=[common],
                                     description="BEDS: template RPC over RabbitMQ")
    parser.add_argument("--role", help="run a node with this role (appServer, admin, ...)")
    parser.add_argument("--workers", type=int, default=1,
                        help="with --role: run N worker processes under a supervisor (default 1)")
    sub = parser.add_subparsers(dest="command")

    call = sub.add_parser("call", parents=[common], help="make one RPC call, print the reply")
    call.add_argument("template")
    call.add_argument("op")
    call.add_argument("--params", default="{}", help='JSON object, e.g. \'{"film_id": 1}\'')
    call.add_argument("--limit", type=int)
    call.add_argument("--offset", type=int)
    call.add_argument("--timeout", type=float, default=10.0, help="seconds (default 10)")

    templates = sub.add_parser("templates", parents=[common], help="template tools")
    tsub = templates.add_subparsers(dest="action", required=True)
    role_opt = argparse.ArgumentParser(add_help=False)
    role_opt.add_argument("--role", dest="templates_role",
                          help="the templates this role serves (default: the first role)")
    tsub.add_parser("check", parents=[common, role_opt],
                    help="check templates against the live database")
    tsub.add_parser("list", parents=[common, role_opt], help="list template ops and their brokers")

    config = sub.add_parser("config", parents=[common], help="config tools")
    csub = config.add_subparsers(dest="action", required=True)
    show = csub.add_parser("show", parents=[common], help="print the effective config")
    show.add_argument("--role", dest="show_role", help="only what this role uses")

    schema = sub.add_parser("schema", parents=[common], help="schema tools")
    ssub = schema.add_subparsers(dest="action", required=True)
    apply = ssub.add_parser("apply", parents=[common], help="apply schema files in order")
    apply.add_argument("--datasource", required=True)

    scaffold.add_parser(sub, common)
    asyncapi.add_parser(sub, common)
    clientgen.add_parser(sub, common)
    console.add_parsers(sub, common)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    args.config = getattr(args, "config", None)
    args.env = getattr(args, "env", None)
    project = Path(args.config or DEFAULT_CONFIG).parent.parent   # as config.py resolves it
    try:
        if args.command == "scaffold":      # needs no config: a spec in, files out
            return scaffold.run_scaffold(args, project)
        needs: tuple[str, ...] | None = None
        if args.command in ("call", "docs", "client-gen"):
            needs = ("node", "amqp")
        elif args.command in console.COMMANDS:
            needs = ("node", "amqp", "ops")
        settings = load_settings(args.config, args.env, sections=needs)
        if args.command in console.COMMANDS:
            return console.run(settings, args)
        if args.command is None:
            if not args.role:
                parser.error("give --role NAME to run a node, or a command (call, templates, "
                             "config, schema, scaffold, docs)")
            if args.workers != 1:
                from beds.workers import run_workers
                return run_workers(settings, args.role, args.workers, args.config, args.env)
            return _run_node(settings, args.role)
        if args.command == "call":
            return _run(_call(settings, args))
        if args.command == "templates":
            return _run(_templates(settings, args.action, args.templates_role))
        if args.command == "config":
            return _config_show(settings, args.show_role)
        if args.command == "docs":
            return asyncapi.run_docs(settings, Path(args.out) if args.out else project / "docs/api")
        if args.command == "client-gen":
            return clientgen.run_client_gen(settings, Path(args.python))
        return _run(_schema_apply(settings, args.datasource))
    except (ConfigError, TemplateError) as exc:
        print(f"beds: {exc}", file=sys.stderr)
        return 2
    except BedsError as exc:
        print(f"beds: {exc}", file=sys.stderr)
        return 1


def _run(coro: Coroutine[Any, Any, int]) -> int:
    return asyncio.run(coro)


def _run_node(settings: Settings, role: str) -> int:
    from beds.node import Node

    setup_logging(settings.node.log_level, node=settings.node.name, role=role)
    node = Node.build(settings, role)   # raises before anything connects
    try:
        import uvloop
        uvloop.run(node.run())
    except ImportError:
        asyncio.run(node.run())
    return 0


async def _call(settings: Settings, args: argparse.Namespace) -> int:
    from beds.client import Client

    try:
        params = json.loads(args.params)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"--params: not valid JSON: {exc}") from None
    if not isinstance(params, dict):
        raise ConfigError("--params: expected a JSON object")
    async with Client(urls=settings.amqp.endpoints, exchange=settings.amqp.exchange) as client:
        try:
            reply = await client.call_raw(args.template, args.op, params, limit=args.limit,
                                          offset=args.offset, timeout=args.timeout)
        except (CallTimeout, NoRoute) as exc:
            print(f"beds: {exc}", file=sys.stderr)
            return 1
    print(json.dumps(reply, indent=2, ensure_ascii=False))
    return 0 if reply.get("ok") else 1


async def _templates(settings: Settings, action: str, role: str | None) -> int:
    from beds.node import Node

    node = Node.build(settings, role or next(iter(settings.roles)))
    if action == "list":
        for (template, op), route in sorted(node.dispatcher.routes.items()):
            print(f"{template}.{op}\t{route.op.kind.value}\t{route.op.target.value} "
                  f"{route.op.object_name}\t{route.broker}\t{route.template.datasource}")
        return 0
    from beds.adapters.base import Problem
    from beds.templates.repeats import unexplained_repeats

    problems = [Problem(where, message, warning=True)
                for where, message in unexplained_repeats(node.registry)]
    for name, adapter in node.adapters.items():
        templates = [t for t in node.registry if t.datasource == name]
        try:
            problems += await adapter.check(templates)
        except RequestError as exc:
            print(f"datasource {name}: cannot check: {exc}", file=sys.stderr)
            return 1
        finally:
            await adapter.close()
    for problem in problems:
        print(problem)
    errors = [p for p in problems if not p.warning]
    ops = sum(len(t.ops) for t in node.registry)
    print(f"{len(node.registry)} templates, {ops} ops checked: {len(errors)} errors, "
          f"{len(problems) - len(errors)} warnings", file=sys.stderr)
    return 1 if errors else 0


def _config_show(settings: Settings, role: str | None) -> int:
    data = dict(settings.merged)
    if role is not None:
        chosen = settings.role(role)
        data["roles"] = {role: data["roles"][role]}
        data["brokers"] = {b: data["brokers"][b] for b in chosen.brokers}
    print(f"# effective config from: {', '.join(settings.files)} (secrets masked)")
    print(tomli_w.dumps(masked(data)), end="")
    return 0


async def _schema_apply(settings: Settings, datasource: str) -> int:
    from beds.adapters import create_adapter

    if datasource not in settings.datasources:
        known = ", ".join(sorted(settings.datasources))
        raise ConfigError(f"--datasource: no datasource {datasource!r}; known: {known}")
    ds = settings.datasources[datasource]
    files = sorted(p for p in ds.schema_dir.glob("*") if p.is_file() and p.suffix in
                   (".sql", ".json", ".js", ".toml"))
    if not files:
        raise ConfigError(f"datasources.{datasource}.schema_dir: no schema files in {ds.schema_dir}")
    adapter = create_adapter(ds)
    for path in await adapter.apply_schema(files):
        print(f"applied {path}")
    return 0


if __name__ == "__main__":   # pragma: no cover
    sys.exit(main())
