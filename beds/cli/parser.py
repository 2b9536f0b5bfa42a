"""The argparse tree of the `beds` command: every command, option and help string.

Layer: interface (CLI). Pure: builds the parser, runs nothing. The help strings are the command
reference (the docs site renders them), so each says what the option does, its unit and default.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any, NoReturn

from beds import __version__, asyncapi, clientgen
from beds.ops import console
from beds.scaffold import command as scaffold

EPILOG = """\
exit codes: 0 ok; 1 the work failed (an error reply, problems found, a service unreachable, a
path not writable); 2 usage, config or template error (nothing was started).
environment: ${VAR} in the config comes from the environment, then from ./.env when present
(a variable already set wins). --debug shows the traceback behind a one-line error.
"""


class OneLineParser(argparse.ArgumentParser):
    """Usage errors as one line (`beds call: argument --params: ...`) and exit 2, as argparse
    does, without the usage block: `--help` shows that."""

    def error(self, message: str) -> NoReturn:
        print(f"{self.prog}: {message} (see `{self.prog} --help`)", file=sys.stderr)
        sys.exit(2)


def params_object(text: str) -> dict[str, Any]:
    """`--params`: a JSON object, or a usage error that says how to write one."""
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise argparse.ArgumentTypeError(
            f"not valid JSON ({exc.msg} at column {exc.colno}); write an object in single "
            f"quotes, e.g. --params '{{\"film_id\": 1}}'") from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError(f"expected a JSON object, got {type(value).__name__}; "
                                         "e.g. --params '{\"film_id\": 1}'")
    return value


def seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected seconds (a number), got {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected seconds > 0, got {text!r}")
    return value


def build_parser() -> argparse.ArgumentParser:
    # SUPPRESS: a subcommand repeating these options must not reset what was given before it
    # (`beds --env X schema apply` and `beds schema apply --env X` mean the same).
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--config", default=argparse.SUPPRESS, metavar="PATH",
                        help="base config file (default: config/beds.toml)")
    common.add_argument("--env", default=argparse.SUPPRESS, metavar="PATH",
                        help="environment override file (default: $BEDS_ENV_FILE, else "
                             "config/env.toml when present)")
    common.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                        help="on an error, show the Python traceback behind the one-line message")
    as_json = argparse.ArgumentParser(add_help=False)
    as_json.add_argument("--json", action="store_true",
                         help="print one JSON document on stdout (for scripts); errors stay one "
                              "line on stderr")
    # Typed as the base class so the helpers of other modules take its subparsers; at run time
    # every subparser is a OneLineParser too (argparse makes them of the parent's class).
    parser: argparse.ArgumentParser = OneLineParser(
        prog="beds", parents=[common], epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="BEDS: template RPC over RabbitMQ. Run a node with --role, or give a command.")
    parser.add_argument("--version", action="version", version=f"beds {__version__}")
    parser.add_argument("--role", help="run a node with this role (appServer, admin, segundo, "
                                       "tercero, or one your config declares)")
    parser.add_argument("--workers", type=int, default=1, metavar="N",
                        help="with --role: run N worker processes under a supervisor (default 1)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    _add_call(sub, common)
    _add_templates(sub, common, as_json)
    config = sub.add_parser("config", parents=[common], help="config tools",
                            description="Config tools. Needs no secrets: unset ${VAR}s show empty.")
    csub = config.add_subparsers(dest="action", required=True, metavar="ACTION")
    show = csub.add_parser("show", parents=[common, as_json],
                           help="print the effective merged config, secrets masked")
    show.add_argument("--role", dest="show_role", metavar="NAME",
                      help="only what this role uses (its role and brokers)")
    schema = sub.add_parser("schema", parents=[common], help="schema tools")
    ssub = schema.add_subparsers(dest="action", required=True, metavar="ACTION")
    apply = ssub.add_parser(
        "apply", parents=[common],
        help="create the database and the application account, then apply the datasource's "
             "schema files in order",
        description="Create the database and the application account when missing, then run "
                    "every file of the datasource's schema_dir in name order. An account that "
                    "exists keeps its password unless --reset-password is given.")
    apply.add_argument("--datasource", required=True, metavar="NAME",
                       help="the [datasources.NAME] entry to apply (e.g. main)")
    apply.add_argument("--reset-password", action="store_true",
                       help="set an existing application account's password to the one in the "
                            "datasource's dsn (default: leave it unchanged)")
    scaffold.add_parser(sub, common)
    asyncapi.add_parser(sub, common)
    clientgen.add_parser(sub, common)
    console.add_parsers(sub, common)
    completion = sub.add_parser("completion", parents=[common],
                                help="print a shell completion script",
                                description="Print a completion script for bash or zsh; e.g. "
                                            "`source <(beds completion bash)`.")
    completion.add_argument("shell", choices=("bash", "zsh"), help="the shell to complete in")
    return parser


def _add_call(sub: argparse._SubParsersAction[argparse.ArgumentParser],
              common: argparse.ArgumentParser) -> None:
    call = sub.add_parser(
        "call", parents=[common], help="make one RPC call, print the reply",
        description="Publish one request (routing key TEMPLATE.OP) and print the reply as JSON; "
                    "exit 1 on an error reply.")
    call.add_argument("--json", action="store_true",
                      help="print the reply as one line of JSON (default: indented) for scripts")
    call.add_argument("template", help="template name, e.g. film")
    call.add_argument("op", help="op of that template, e.g. fetch")
    call.add_argument("--params", type=params_object, default={}, metavar="JSON",
                      help='the op\'s parameters as a JSON object, e.g. \'{"film_id": 1}\' '
                           "(default {})")
    call.add_argument("--limit", type=int, metavar="N", help="view ops: at most N rows")
    call.add_argument("--offset", type=int, metavar="N", help="view ops: skip N rows")
    call.add_argument("--cursor", metavar="TOKEN",
                      help="cursor engines (DynamoDB): the next_cursor of the previous reply")
    call.add_argument("--timeout", type=seconds, default=10.0, metavar="S",
                      help="seconds to wait for the reply (default 10)")
    call.add_argument("--deadline", type=seconds, metavar="S",
                      help="seconds the node has to take and run the request, sent as the "
                           "x-deadline header and the message expiration (default: --timeout)")
    call.add_argument("--message-id", metavar="ID",
                      help="the AMQP message_id: the request id of idempotent writes "
                           "(default: a random id per call)")
    call.add_argument("--user-id", metavar="USER",
                      help="the AMQP user_id, checked by RabbitMQ: must be the user of the "
                           "[amqp] url; templates' allow lists name it")


def _add_templates(sub: argparse._SubParsersAction[argparse.ArgumentParser],
                   common: argparse.ArgumentParser, as_json: argparse.ArgumentParser) -> None:
    templates = sub.add_parser("templates", parents=[common], help="template tools")
    tsub = templates.add_subparsers(dest="action", required=True, metavar="ACTION")
    role_opt = argparse.ArgumentParser(add_help=False)
    role_opt.add_argument("--role", dest="templates_role", metavar="NAME",
                          help="the templates this role serves (default: the first role)")
    check = tsub.add_parser(
        "check", parents=[common, role_opt, as_json],
        help="check every template: files, names, brokers, and against the live database",
        description="Report every problem, one per line (exit 1 if any is an error): template "
                    "files that do not load, names taken by another role, ops no broker serves, "
                    "and, unless --offline, routines, parameters and view columns missing from "
                    "the database.")
    check.add_argument("--offline", action="store_true",
                       help="skip the database checks (needs no database and no secrets)")
    tsub.add_parser("list", parents=[common, role_opt, as_json],
                    help="list every op with its kind, target, broker and datasource (offline)")
