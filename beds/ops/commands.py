"""Control commands on the wire, and the client that sends them (CLI and admin node).

Layer: operations, pure encoding plus one small AMQP client. A command is a JSON object
`{"cmd": NAME, "args": {...}}` published to the control exchange: routing key `admin` reaches
the admin nodes, `node.<name>` one node, `node.all` every node. The answer comes back on
direct reply-to as `{"ok": true, "result": ...}` or `{"ok": false, "error": {code, message}}`.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import msgspec

from beds.amqp import Channel, Connection, Delivery, NotFound, Properties, PublishReturned
from beds.brokers.link import amqp_user, confirmed, connect_first
from beds.errors import BedsError, Disconnected

ADMIN_KEY = "admin"
ALL_NODES_KEY = "node.all"
DIRECT_REPLY_TO = "amq.rabbitmq.reply-to"
NODE_COMMANDS = ("ping", "status", "reload-templates", "set-instances", "drain", "resume")
CLUSTER_COMMANDS = NODE_COMMANDS   # the admin takes the same names, with a `node` argument
READ_ONLY = frozenset(("ping", "status"))   # anyone who may publish may ask these
EVERY_NODE_NEEDS_ALL = frozenset(("reload-templates", "set-instances", "drain"))
"""Commands that change every node at once when sent to `node.all`: only with `"all": true`."""


def node_key(node: str) -> str:
    return f"node.{node}"


class CommandFailed(BedsError):
    """A command was refused, or nobody answered it."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class Command:
    cmd: str
    args: dict[str, Any]
    all: bool = False          # the sender means every node (`--all`)


def operators_of(operators: tuple[str, ...] | None, amqp_url: str) -> frozenset[str]:
    """`[ops] operators`, or by default the user of `[amqp] url` (one account for everything:
    a fresh clone's `beds drain` works; docs/security.md says how to split the accounts)."""
    return frozenset(operators) if operators is not None else frozenset((amqp_user(amqp_url),))


def authorize(command: Command, user_id: str | None, operators: frozenset[str],
              routing_key: str | None) -> None:
    """Refuse a command its sender may not give. `user_id` is the AMQP property, which
    RabbitMQ checks against the sender's connection whenever it is set."""
    if command.cmd in READ_ONLY:
        return
    if user_id is None or user_id not in operators:
        who = "a sender without user_id" if user_id is None else f"user {user_id!r}"
        raise CommandFailed("FORBIDDEN", f"{command.cmd}: {who} is not in [ops] operators; "
                                         "send it as an operator, with the AMQP user_id set")
    if routing_key == ALL_NODES_KEY and command.cmd in EVERY_NODE_NEEDS_ALL and not command.all:
        raise CommandFailed("NEEDS_ALL", f"{command.cmd}: sent to every node ({ALL_NODES_KEY}) "
                                         'without "all": true; name one node, or say all')


def decode_command(body: bytes) -> Command:
    try:
        data = msgspec.json.decode(body)
    except (msgspec.DecodeError, UnicodeDecodeError) as exc:
        raise CommandFailed("BAD_COMMAND", f"not a JSON command: {exc}") from None
    if not isinstance(data, dict) or not isinstance(data.get("cmd"), str):
        raise CommandFailed("BAD_COMMAND", 'expected {"cmd": NAME, "args": {...}}')
    args = data.get("args", {})
    if not isinstance(args, dict):
        raise CommandFailed("BAD_COMMAND", f"args: expected an object, got {type(args).__name__}")
    return Command(data["cmd"], args, data.get("all") is True)


def encode_command(cmd: str, args: dict[str, Any] | None = None, every: bool = False) -> bytes:
    body: dict[str, Any] = {"cmd": cmd, "args": args or {}}
    if every:
        body["all"] = True
    return msgspec.json.encode(body)


def encode_answer(result: Any) -> bytes:
    return msgspec.json.encode({"ok": True, "result": result})


def encode_refusal(exc: CommandFailed) -> bytes:
    return msgspec.json.encode({"ok": False, "error": {"code": exc.code, "message": str(exc)}})


def result_of(answer: dict[str, Any]) -> Any:
    if answer.get("ok"):
        return answer.get("result")
    error = answer.get("error") or {}
    raise CommandFailed(str(error.get("code", "FAILED")), str(error.get("message", answer)))


def arg_text(command: Command, name: str) -> str:
    value = command.args.get(name)
    if not isinstance(value, str) or not value:
        raise CommandFailed("BAD_COMMAND", f"{command.cmd}: args.{name}: expected a non-empty "
                                           f"string, got {value!r}")
    return value


def arg_int(command: Command, name: str, minimum: int, maximum: int) -> int:
    value = command.args.get(name)
    if type(value) is not int or not minimum <= value <= maximum:
        raise CommandFailed("BAD_COMMAND", f"{command.cmd}: args.{name}: expected an integer "
                                           f"from {minimum} to {maximum}, got {value!r}")
    return value


class CommandClient:
    """Sends commands on the control exchange and waits for their answers.

    `send` returns the first answer; `gather` collects every answer that arrives within a
    window (a command to `node.all`).
    """

    def __init__(self, exchange: str, timeout: float, user_id: str | None = None) -> None:
        self.exchange = exchange
        self.timeout = timeout
        self.user_id = user_id   # the connection's user: nodes act only on operators' commands
        self._channel: Channel | None = None
        self._answers: dict[str, asyncio.Queue[dict[str, Any]]] = {}

    async def attach(self, channel: Channel) -> None:
        """Use `channel` (confirms on) for commands and their direct replies."""
        self._channel = channel
        await channel.basic_consume(DIRECT_REPLY_TO, self._on_answer, no_ack=True)

    async def _on_answer(self, message: Delivery) -> None:
        queue = self._answers.get(message.properties.correlation_id or "")
        if queue is None:
            return   # an answer that came after its window closed
        try:
            queue.put_nowait(msgspec.json.decode(message.body))
        except (msgspec.DecodeError, UnicodeDecodeError):
            queue.put_nowait({"ok": False, "error": {"code": "BAD_ANSWER",
                                                     "message": "an answer that is not JSON"}})

    async def send(self, key: str, cmd: str, args: dict[str, Any] | None = None,
                   timeout: float | None = None, every: bool = False) -> Any:
        answers = await self._exchange(key, cmd, args, timeout or self.timeout, first=True,
                                       every=every)
        if not answers:
            raise CommandFailed("TIMEOUT", f"no answer to {cmd!r} on {key!r} within "
                                           f"{timeout or self.timeout:g}s")
        return result_of(answers[0])

    async def gather(self, key: str, cmd: str, args: dict[str, Any] | None = None,
                     window: float = 1.0, every: bool = False) -> list[dict[str, Any]]:
        return await self._exchange(key, cmd, args, window, first=False, every=every)

    async def _exchange(self, key: str, cmd: str, args: dict[str, Any] | None, seconds: float,
                        first: bool, every: bool = False) -> list[dict[str, Any]]:
        if self._channel is None:
            raise RuntimeError("CommandClient is not attached to a channel")
        correlation_id = uuid.uuid4().hex
        queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._answers[correlation_id] = queue
        try:
            try:
                await confirmed(self._channel.basic_publish(
                    encode_command(cmd, args, every), exchange=self.exchange, routing_key=key,
                    mandatory=True,
                    properties=Properties(
                        reply_to=DIRECT_REPLY_TO, correlation_id=correlation_id,
                        content_type="application/json", message_id=correlation_id,
                        expiration=str(max(1, int(seconds * 1000))), user_id=self.user_id,
                        headers={"x-deadline": int((time.time() + seconds) * 1000)})))
            except PublishReturned:
                raise CommandFailed("NO_ROUTE", _no_route(key)) from None
            except NotFound:
                raise CommandFailed("NO_ROUTE", f"exchange {self.exchange!r} does not exist: "
                                                "no BEDS node has declared it yet") from None
            answers: list[dict[str, Any]] = []
            deadline = asyncio.get_running_loop().time() + seconds
            while (left := deadline - asyncio.get_running_loop().time()) > 0:
                try:
                    answers.append(await asyncio.wait_for(queue.get(), left))
                except TimeoutError:
                    break
                if first:
                    break
            return answers
        finally:
            self._answers.pop(correlation_id, None)


def _no_route(key: str) -> str:
    if key == ADMIN_KEY:
        return "no admin node is running (start one with `beds --role admin`)"
    if key.startswith("node."):
        return f"no node named {key[5:]!r} is running"
    return f"nothing is bound to {key!r}"


async def open_command_client(url: str | Sequence[str], exchange: str,
                              timeout: float) -> tuple[CommandClient, Connection]:
    """A client on a connection of its own (the CLI). The caller closes the connection."""
    urls = [url] if isinstance(url, str) else list(url)
    try:
        connection = await connect_first(urls)
    except ConnectionError as exc:   # refused, unreachable, bad vhost: every endpoint named
        raise Disconnected(str(exc)) from exc
    client = CommandClient(exchange, timeout, amqp_user(urls[0]))
    await client.attach(await connection.channel(publisher_confirms=True))
    return client, connection
