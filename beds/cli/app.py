"""`main(argv) -> int`: parse, read the environment, load only the config a command needs, run it.

Layer: interface (CLI), top. Every failure a command can expect arrives here as a BEDS error
(or an OSError naming a file) and leaves as one line on stderr (beds.cli.failures); --debug adds
the traceback. Nothing below prints a traceback of its own.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path

from beds import asyncapi, clientgen
from beds.cli import commands, completion
from beds.cli.check import templates_check
from beds.cli.dotenv import environment
from beds.cli.failures import report
from beds.cli.parser import build_parser
from beds.config import DEFAULT_CONFIG, Settings, load_settings
from beds.log import setup_logging
from beds.ops import console
from beds.scaffold import command as scaffold


def sections(args: argparse.Namespace) -> tuple[str, ...] | None:
    """The config tables whose ${VAR}s the command uses; an unset variable elsewhere is no error,
    so commands that never connect need no secrets. None = all (a node)."""
    match args.command, getattr(args, "action", None):
        case ("call" | "docs" | "client-gen"), _:
            return ("node", "amqp")
        case command, _ if command in console.COMMANDS:
            return ("node", "amqp", "ops")
        case "templates", "check" if not args.offline:
            return ("node", "datasources")
        case ("templates" | "config"), _:
            return ("node",)
        case "schema", _:
            return ("node", f"datasources.{args.datasource}")
    return None


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    args.config = getattr(args, "config", None)
    args.env = getattr(args, "env", None)
    args.debug = getattr(args, "debug", False)
    if args.command is None and not args.role:
        parser.print_help(sys.stderr)
        return 2
    # aiormq logs a failed connect itself before raising: the one line says it already. A node
    # keeps aiormq's log lines (they go to its log with everything else), and so does --debug.
    quiet = args.command is not None and not args.debug
    with _silenced("aiormq") if quiet else contextlib.nullcontext():
        try:
            return _dispatch(parser, args)
        except (Exception, KeyboardInterrupt) as exc:   # every failure leaves as one line
            return report(exc, args)


@contextlib.contextmanager
def _silenced(name: str) -> Iterator[None]:
    logger = logging.getLogger(name)
    before = logger.propagate
    handler = logging.NullHandler()
    logger.addHandler(handler)
    logger.propagate = False
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.propagate = before


def _dispatch(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    project = Path(args.config or DEFAULT_CONFIG).parent.parent   # as beds.config.load resolves it
    if args.command == "completion":
        print(completion.script(parser, args.shell), end="")
        return 0
    environ = environment()
    if args.command == "scaffold":      # needs no config: a spec in, files out
        return scaffold.run_scaffold(args, project, environ)
    settings = load_settings(args.config, args.env, environ, sections=sections(args))
    if args.command is None:
        return _run_node(settings, args, environ)
    if args.command in console.COMMANDS:
        return console.run(settings, args)
    match args.command, getattr(args, "action", None):
        case "call", _:
            return asyncio.run(commands.call(settings, args))
        case "templates", "list":
            return commands.templates_list(settings, args)
        case "templates", _:
            return asyncio.run(templates_check(settings, args))
        case "config", _:
            return commands.config_show(settings, args)
        case "docs", _:
            return asyncapi.run_docs(settings, Path(args.out) if args.out else project / "docs/api")
        case "client-gen", _:
            return clientgen.run_client_gen(settings, Path(args.python))
    return asyncio.run(commands.schema_apply(settings, args))


def _run_node(settings: Settings, args: argparse.Namespace, environ: dict[str, str]) -> int:
    # Worker processes and what the node starts read os.environ: give them .env's values too
    # (still never over a variable already set).
    os.environ.update({k: v for k, v in environ.items() if k not in os.environ})
    if args.workers != 1:
        from beds.processes import run_workers
        return run_workers(settings, args.role, args.workers, args.config, args.env)
    from beds.node import Node

    setup_logging(settings.node.log_level, node=settings.node.name, role=args.role)
    node = Node.build(settings, args.role)   # raises before anything connects
    try:
        import uvloop
        uvloop.run(node.run())
    except ImportError:
        asyncio.run(node.run())
    return 0
