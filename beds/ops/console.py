"""`beds status | ping | scale | drain | resume | reload`: the operator's side of the control plane.

Layer: interface (CLI). Every command goes to the admin node (routing key `admin` on the control
exchange), which answers for the cluster or forwards to the node named. Exit codes as in cli.py:
0 done, 1 refused or unanswered, 2 usage.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from typing import Any

from beds.config import Settings
from beds.ops.commands import ADMIN_KEY, CommandFailed, open_command_client

COMMANDS = ("status", "ping", "scale", "drain", "resume", "reload")


def add_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser],
                common: argparse.ArgumentParser) -> None:
    timeout = argparse.ArgumentParser(add_help=False)
    timeout.add_argument("--timeout", type=float, default=30.0,
                         help="seconds to wait for the answer (default 30)")
    timeout.add_argument("--json", action="store_true", help="print the raw JSON answer")
    parents = [common, timeout]
    sub.add_parser("status", parents=parents,
                   help="the cluster as the admin node sees it: nodes, brokers, rates, DLQ")
    sub.add_parser("ping", parents=parents, help="which nodes answer")
    scale = sub.add_parser("scale", parents=parents,
                           help="run N instances of a broker on a node, now, without a restart")
    scale.add_argument("node")
    scale.add_argument("broker")
    scale.add_argument("instances", type=int)
    for name, text in (("drain", "stop a node taking requests (in-flight ones finish)"),
                       ("resume", "let a drained node take requests again")):
        sub.add_parser(name, parents=parents, help=text).add_argument("node")
    reload = sub.add_parser("reload", parents=parents,
                            help="reload templates on a node (or every node: --all), checked first")
    reload.add_argument("node", nargs="?")
    reload.add_argument("--all", action="store_true", dest="every",
                        help="reload every node (required when no node is named)")


def run(settings: Settings, args: argparse.Namespace) -> int:
    cmd, cmd_args = _command(args)
    every = bool(getattr(args, "every", False))
    if args.command == "reload" and not args.node and not every:
        print("beds reload: name a node, or reload every node with --all", file=sys.stderr)
        return 2
    try:
        answer = asyncio.run(_send(settings, cmd, cmd_args, args.timeout, every))
    except CommandFailed as exc:
        print(f"beds {args.command}: {exc} ({exc.code})", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(answer, indent=2, ensure_ascii=False))
    else:
        print(render(args.command, answer))
    return 0


def _command(args: argparse.Namespace) -> tuple[str, dict[str, Any]]:
    # The admin forwards with a little less time than we wait, so its answer still reaches us.
    common = {"timeout": max(1.0, args.timeout - 1.0)}
    match args.command:
        case "scale":
            return "set-instances", {**common, "node": args.node, "broker": args.broker,
                                     "instances": args.instances}
        case "drain" | "resume":
            return args.command, {**common, "node": args.node}
        case "reload":
            return "reload-templates", {**common, **({"node": args.node} if args.node else {})}
    return args.command, common


async def _send(settings: Settings, cmd: str, args: dict[str, Any], timeout: float,
                every: bool = False) -> Any:
    client, connection = await open_command_client(settings.amqp.endpoints,
                                                   settings.ops.control_exchange, timeout)
    try:
        return await client.send(ADMIN_KEY, cmd, args, timeout=timeout, every=every)
    finally:
        await connection.close()


def render(command: str, answer: Any) -> str:
    if command == "status":
        return render_status(answer)
    if command == "ping":
        return "\n".join(f"{n['node']}\t{n['role']}\t{n['state']}\tpid {n['pid']}\t"
                         f"up {n['uptime']:.0f}s" for n in answer["nodes"]) or "no node answered"
    if command == "scale":
        return (f"{answer['node']}: {answer['broker']} {answer['before']} -> "
                f"{answer['instances']} instances")
    if command in ("drain", "resume"):
        return f"{answer['node']}: {answer['state']}"
    if isinstance(answer, dict) and "answers" in answer:
        return "\n".join(_reload_line(a) for a in answer["answers"]) or "no node answered"
    return f"{answer['node']}: templates reloaded ({', '.join(answer['templates'])})"


def _reload_line(answer: dict[str, Any]) -> str:
    if answer.get("ok"):
        result = answer["result"]
        return f"{result['node']}: reloaded ({', '.join(result['templates'])})"
    return f"refused: {answer.get('error', {}).get('message')}"


def render_status(status: dict[str, Any]) -> str:
    queues = status.get("queues", {})
    lines = [f"{'NODE':<16}{'ROLE':<11}{'STATE':<10}{'REQ/S':>8}{'ERR/S':>8}{'P95 MS':>8}  BROKERS"]
    for node in status["nodes"]:
        rates = node.get("rates") or {}
        brokers = ", ".join(
            f"{name} {b['instances']}" + (f" (queue consumers {queues[b['queue']]['consumers']})"
                                          if b["queue"] in queues else "")
            for name, b in node["brokers"].items())
        lines.append(f"{node['node']:<16}{node['role']:<11}{node['state']:<10}"
                     f"{_num(rates.get('rps')):>8}{_num(rates.get('errors_per_s')):>8}"
                     f"{_num(rates.get('p95')):>8}  "
                     f"{brokers}")
    for name in status.get("lost", []):
        lines.append(f"{name:<16}{'?':<11}{'lost':<10}  (no snapshot lately)")
    lines.append(f"dead letters: {_num(status.get('dead_letters'))}")
    return "\n".join(lines)


def _num(value: Any) -> str:
    if value is None:
        return "-"
    return f"{value:.1f}" if isinstance(value, float) else str(value)
