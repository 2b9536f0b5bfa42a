"""adminBrokerIn: control commands for the cluster (`beds status|scale|drain|resume|reload|ping`).

Layer: operations (admin node). Commands arrive on the control exchange with routing key `admin`.
Cluster-wide ones (`ping`, `status`, `reload-templates` without a node) are asked of every node
(`node.all`) and the answers gathered for a short window; the others are forwarded to the one
node named in `args.node`, whose answer is relayed back. RabbitMQ's own consumer and message
counts are read with passive declares, so `status` shows what the broker sees, not only what
nodes say of themselves.
"""

from __future__ import annotations

import time
from typing import Any

from aiormq.abc import DeliveredMessage

from beds.admin.service import QueueService
from beds.brokers.link import AMQP_ERRORS
from beds.log import get_logger
from beds.ops.commands import (
    ADMIN_KEY,
    ALL_NODES_KEY,
    Command,
    CommandClient,
    CommandFailed,
    arg_text,
    authorize,
    decode_command,
    encode_answer,
    encode_refusal,
    node_key,
    operators_of,
)

log = get_logger("beds.admin.in")
GATHER_WINDOW = 1.0   # seconds to collect answers from every node


class AdminInbox(QueueService):
    # Acked once answered (never requeued: redelivering a command would repeat it); the
    # prefetch bounds how many commands run at once.
    prefetch = 8

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.exchange = self.ctx.settings.ops.control_exchange
        self.keys = (ADMIN_KEY,)
        self._client: CommandClient | None = None
        settings = self.ctx.settings
        self._operators = operators_of(settings.ops.operators, settings.amqp.url)

    def queue_arguments(self) -> dict[str, Any]:
        # A command nobody took within a minute is stale: the CLI gave up on it long ago.
        return {"x-queue-type": "classic", "x-message-ttl": 60_000}

    async def started(self) -> None:
        client = CommandClient(self.exchange, self.ctx.settings.ops.command_timeout,
                               self.ctx.link.user)
        await client.attach(await self.ctx.link.channel(publisher_confirms=True))
        self._client = client

    async def handle(self, message: DeliveredMessage) -> None:
        props = message.header.properties
        started = time.perf_counter()
        cmd = "?"
        try:
            command = decode_command(message.body)
            cmd = command.cmd
            authorize(command, props.user_id, self._operators, None)
            body = encode_answer(await self._run(command))
            outcome = "ok"
        except CommandFailed as exc:
            body, outcome = encode_refusal(exc), exc.code
        except AMQP_ERRORS as exc:
            body = encode_refusal(CommandFailed("UNAVAILABLE", f"RabbitMQ: {exc}"))
            outcome = "UNAVAILABLE"
        except Exception as exc:   # a bug: answer it, keep the inbox serving
            log.exception("admin.command_failed", cmd=cmd)
            body = encode_refusal(CommandFailed("FAILED", f"{type(exc).__name__}: {exc}"))
            outcome = "FAILED"
        log.info("admin.command", cmd=cmd, outcome=outcome, user=props.user_id,
                 elapsed_ms=round((time.perf_counter() - started) * 1000, 1))
        if props.reply_to:
            try:
                await self.ctx.publisher.publish(props.reply_to, body, props.correlation_id)
            except AMQP_ERRORS as exc:
                log.warning("admin.answer_lost", cmd=cmd, error=f"{type(exc).__name__}: {exc}")
        await self.settle(message)

    async def _run(self, command: Command) -> Any:
        client = self._client
        assert client is not None
        timeout = _timeout(command, self.ctx.settings.ops.command_timeout)
        match command.cmd:
            case "ping":
                answers = await client.gather(ALL_NODES_KEY, "ping", window=GATHER_WINDOW)
                return {"nodes": sorted((a["result"] for a in answers if a.get("ok")),
                                        key=lambda n: n["node"])}
            case "status":
                return await self._status(client)
            case "reload-templates" if not command.args.get("node"):
                if not command.all:
                    raise CommandFailed("NEEDS_ALL", 'reload-templates: no args.node and no '
                                        '"all": true; name a node, or say all (beds reload --all)')
                answers = await client.gather(ALL_NODES_KEY, "reload-templates",
                                              window=max(GATHER_WINDOW, timeout), every=True)
                return {"answers": answers}
            case "reload-templates" | "set-instances" | "drain" | "resume":
                node = arg_text(command, "node")
                args = {k: v for k, v in command.args.items() if k not in ("node", "timeout")}
                return await client.send(node_key(node), command.cmd, args, timeout=timeout)
        raise CommandFailed("UNKNOWN_COMMAND", f"cmd: unknown command {command.cmd!r}; expected "
                            "ping, status, reload-templates, set-instances, drain or resume")

    async def _status(self, client: CommandClient) -> dict[str, Any]:
        answers = await client.gather(ALL_NODES_KEY, "status", window=GATHER_WINDOW)
        nodes = sorted((a["result"] for a in answers if a.get("ok")), key=lambda n: n["node"])
        cluster = self.ctx.shared.get("cluster")
        summary = cluster.summary() if cluster is not None else {}
        seen = summary.get("nodes", {}) if isinstance(summary, dict) else {}
        for node in nodes:
            node["rates"] = _rates(seen.get(node["node"]))
        queues = sorted({b["queue"] for n in nodes for b in n["brokers"].values()
                         if b.get("queue") and b.get("service") == "requests"})
        queues.append(self.ctx.settings.amqp.dlq)
        found = await self.ctx.link.queue_counts(queues)
        counts = {q: _consumers_and_messages(found.get(q)) for q in queues}
        lost = [name for name, n in seen.items()
                if isinstance(n, dict) and n.get("state") == "lost"]
        return {"nodes": nodes, "queues": counts, "lost": lost,
                "dead_letters": counts.get(self.ctx.settings.amqp.dlq, {}).get("messages"),
                "events": list(self.ctx.shared.get("events", []))[-20:]}



def _consumers_and_messages(counts: tuple[int, int] | None) -> dict[str, int | None]:
    consumers, messages = counts if counts is not None else (None, None)
    return {"consumers": consumers, "messages": messages}


def _timeout(command: Command, default: float) -> float:
    value = command.args.get("timeout")
    if isinstance(value, int | float) and not isinstance(value, bool) and 0 < value <= 600:
        return float(value)
    return default


def _rates(seen: Any) -> dict[str, Any]:
    """The rates the dashboard's collector computed for a node, when an admin-graph runs
    (latencies in milliseconds)."""
    if not isinstance(seen, dict):
        return {}
    return {k: seen[k] for k in ("rps", "errors_per_s", "p50", "p95", "p99") if k in seen}
