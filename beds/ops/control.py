"""The node's own control queue: answers the commands addressed to it (or to every node).

Layer: operations. Each node process declares an exclusive, auto-delete queue bound to
`node.<name>` and `node.all` on the control exchange; it disappears with the process, so a
command to a node that is gone is unroutable and the sender hears so at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from typing import Any, Protocol

from beds.amqp import Delivery
from beds.brokers.consumer import ChannelLost
from beds.brokers.link import (
    AMQP_ERRORS,
    AmqpLink,
    ConsumerCancelled,
    ReplyPublisher,
    close_channel,
    serve_until,
)
from beds.config import BrokerSettings
from beds.log import get_logger
from beds.ops.commands import (
    ALL_NODES_KEY,
    Command,
    CommandClient,
    CommandFailed,
    arg_int,
    arg_text,
    authorize,
    decode_command,
    encode_answer,
    encode_refusal,
    node_key,
)

log = get_logger("beds.control")
MAX_INSTANCES = 256
NAME_PROBE_SECONDS = 0.3   # how long a starting node listens for another of its name
COMMAND_PREFETCH = 4


class Controllable(Protocol):
    """What a node lets the control plane do to it."""

    async def describe(self) -> dict[str, Any]: ...

    async def reload(self) -> bool: ...

    async def set_instances(self, broker: str, count: int) -> dict[str, Any]: ...

    async def drain(self) -> dict[str, Any]: ...

    async def resume(self) -> dict[str, Any]: ...


class ControlListener:
    """A Worker (see brokers.pool): supervised and restarted like any broker instance."""

    def __init__(self, broker: BrokerSettings, node_name: str, exchange: str, link: AmqpLink,
                 publisher: ReplyPublisher, target: Controllable,
                 operators: frozenset[str] = frozenset()) -> None:
        self.broker = broker
        self.instance = 0
        self.name = f"{broker.name}#0"
        self.consuming = asyncio.Event()
        self.inflight = 0
        self._node = node_name
        self._exchange = exchange
        self._link = link
        self._publisher = publisher
        self._target = target
        self._operators = operators

    async def run(self, stop: asyncio.Event) -> None:
        await self._warn_if_name_taken()
        channel = await self._link.channel()
        queue = f"beds.node.{self._node}.{uuid.uuid4().hex[:8]}"
        try:
            await channel.queue_declare(queue, exclusive=True, auto_delete=True)
            for key in (node_key(self._node), ALL_NODES_KEY):
                await channel.queue_bind(queue, self._exchange, routing_key=key)
            # Manual ack with a prefetch: a flood of commands waits in the queue, not in tasks.
            await channel.basic_qos(prefetch_count=COMMAND_PREFETCH)
            await channel.basic_consume(queue, self._on_message, no_ack=False)
        except AMQP_ERRORS as exc:
            raise ChannelLost(f"control: could not listen on {queue}: {exc}") from exc
        try:
            stopped = await serve_until(stop, channel, self.consuming)
        except ConsumerCancelled as exc:
            await close_channel(channel)
            raise ChannelLost(f"control: {exc}") from exc
        if not stopped:
            raise ChannelLost("control: channel closed")
        if not channel.is_closed:
            await channel.close()

    async def _warn_if_name_taken(self) -> None:
        """Commands address nodes by name: a second process with this name would take commands
        meant for the first (and the first answer wins). Say so once, at start."""
        channel = await self._link.channel(publisher_confirms=True)
        try:
            client = CommandClient(self._exchange, NAME_PROBE_SECONDS, self._link.user)
            await client.attach(channel)
            answers = await client.gather(node_key(self._node), "ping", window=NAME_PROBE_SECONDS)
        except CommandFailed:
            return   # NO_ROUTE: nobody else has this name
        except AMQP_ERRORS:
            return   # cannot tell now; the listener below reports a broken link its own way
        finally:
            if not channel.is_closed:
                await channel.close()
        others = [a["result"] for a in answers if a.get("ok")]
        if others:
            log.warning("node.name_taken", node=self._node,
                        others=[f"{o['host']} pid {o['pid']}" for o in others],
                        hint="give each node process its own [node] name (BEDS_NODE_NAME)")

    async def _on_message(self, message: Delivery) -> None:
        props = message.properties
        key = message.routing_key
        self.inflight += 1
        try:
            try:
                if message.oversized:   # over amqp.max_message_bytes: not even assembled
                    raise CommandFailed("BAD_COMMAND", f"command: {message.body_size} bytes, "
                                                       "more than amqp.max_message_bytes")
                command = decode_command(message.body)
                authorize(command, props.user_id, self._operators, key)
                body = encode_answer(await self._run(command))
                log.info("command", cmd=command.cmd, args=command.args, outcome="ok",
                         user=props.user_id)
            except CommandFailed as exc:
                body = encode_refusal(exc)
                log.warning("command.refused", code=exc.code, error=str(exc), user=props.user_id,
                            routing_key=key)
            except Exception as exc:   # a bug or a lost link: answer, keep listening
                log.exception("command.failed", user=props.user_id, routing_key=key)
                body = encode_refusal(CommandFailed("FAILED", f"{type(exc).__name__}: {exc}"))
            if props.reply_to:
                try:
                    await self._publisher.publish(props.reply_to, body, props.correlation_id)
                except AMQP_ERRORS as exc:
                    log.warning("command.answer_lost", error=f"{type(exc).__name__}: {exc}")
        finally:
            self.inflight -= 1
            with contextlib.suppress(*AMQP_ERRORS):   # answered or refused: never redelivered
                message.channel.basic_ack(message.delivery_tag)

    async def _run(self, command: Command) -> Any:
        target = self._target
        match command.cmd:
            case "ping":
                info = await target.describe()
                return {k: info[k] for k in ("node", "role", "pid", "host", "state", "uptime")}
            case "status":
                return await target.describe()
            case "reload-templates":
                ok = await target.reload()
                if not ok:
                    raise CommandFailed("RELOAD_REJECTED", "the new templates were rejected "
                                        "(see the node's templates.reload_rejected log line); "
                                        "the old set keeps serving")
                return await target.describe()
            case "set-instances":
                return await target.set_instances(arg_text(command, "broker"),
                                                  arg_int(command, "instances", 0, MAX_INSTANCES))
            case "drain":
                return await target.drain()
            case "resume":
                return await target.resume()
        raise CommandFailed("UNKNOWN_COMMAND", f"cmd: unknown command {command.cmd!r}; expected "
                            "ping, status, reload-templates, set-instances, drain or resume")
