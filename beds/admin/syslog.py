"""adminSyslogBroker: every node's shipped log lines and audit events -> syslog, RFC 5424.

Layer: operations (admin node). Consumes its own queue, bound `#` on the logs exchange, formats each
line as an RFC 5424 message and sends it as one datagram to `[admin] syslog`: `udp://host:port`
(RFC 5426) or `unix:///path` (a datagram socket such as /dev/log). With `syslog = ""` it says
once that it is off and idles without a queue.

Written here rather than taken from a library: the standard library's SysLogHandler is a
blocking logging.Handler that sends `<PRI>` + the message, with no RFC 5424 header
(VERSION, TIMESTAMP, HOSTNAME, APP-NAME, PROCID, MSGID) and no structured data; the small
asyncio syslog clients on PyPI are young, one-person projects. The format is a page of the RFC.

Syslog is a copy for operators, not the record (that is the log store): the queue is classic,
bounded, drops its oldest lines when full and forgets lines older than a day, so a syslog
server that is away never pushes back on the nodes. UDP is fire-and-forget by design.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from datetime import UTC, datetime
from typing import Any

import msgspec
from aiormq.abc import DeliveredMessage

from beds.admin.service import QueueService
from beds.brokers.link import AMQP_ERRORS, sleep_unless
from beds.config.ops import SYSLOG_FACILITIES
from beds.log import get_logger

log = get_logger("beds.admin.syslog")
SEVERITY = {"emergency": 0, "alert": 1, "critical": 2, "error": 3, "warning": 4, "audit": 5,
            "notice": 5, "info": 6, "debug": 7}
# An SD-ID of our own must be name@<private enterprise number>; 32473 is the number RFC 5612
# sets aside for documentation and examples. A site with its own number may change it here.
SD_ID = "beds@32473"
SD_PARAMS = ("node", "role", "level", "template", "op", "correlation_id", "user")
BOM = "\ufeff".encode()    # RFC 5424 6.4: a UTF-8 MSG starts with the byte order mark
MAX_DATAGRAM = 65_000      # under the UDP limit; a longer message is cut (rare: lines are <= 32 KiB)


def facility_code(name: str) -> int:
    index = SYSLOG_FACILITIES.index(name)
    return index if index < 12 else index + 4   # local0..local7 are 16..23


def _header_field(value: Any, limit: int) -> str:
    """PRINTUSASCII (33-126), at most `limit` characters; "-" (NILVALUE) when empty."""
    text = "" if value is None else str(value)
    cleaned = "".join(c if 33 <= ord(c) <= 126 else "_" for c in text[:limit])
    return cleaned or "-"


def _sd_value(value: Any) -> str:
    """PARAM-VALUE: UTF-8, with '"', '\\' and ']' escaped by a backslash (RFC 5424 6.3.3)."""
    text = str(value)
    return text.replace("\\", "\\\\").replace('"', '\\"').replace("]", "\\]")


def _timestamp(at: Any) -> str:
    try:
        moment = datetime.fromisoformat(str(at).replace("Z", "+00:00"))
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
    except ValueError:
        moment = datetime.now(UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def format_rfc5424(line: dict[str, Any], app_name: str, facility: int = 16) -> bytes:
    """`<PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID MSGID [SD] MSG` for one shipped line.

    Severity from the level (audit events are notices); HOSTNAME the node's host (else the node
    name); PROCID the node's pid; MSGID the event; structured data carries node, role, level,
    template, op, correlation_id and user when the line has them; MSG is the whole line as JSON.
    """
    severity = SEVERITY.get(str(line.get("level", "")), 5)
    params = " ".join(f'{name}="{_sd_value(line[name])}"' for name in SD_PARAMS
                      if line.get(name) is not None)
    structured = f"[{SD_ID} {params}]" if params else "-"
    header = " ".join((
        f"<{facility * 8 + severity}>1",
        _timestamp(line.get("at")),
        _header_field(line.get("host") or line.get("node"), 255),
        _header_field(app_name, 48),
        _header_field(line.get("pid"), 128),
        _header_field(line.get("event"), 32),
        structured,
    ))
    message = header.encode() + b" " + BOM + msgspec.json.encode(line, enc_hook=str)
    return message[:MAX_DATAGRAM]


class _Datagrams(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.error: Exception | None = None

    def error_received(self, exc: Exception) -> None:
        self.error = exc   # e.g. ICMP port unreachable: nobody listens (yet)


class SyslogForwarder(QueueService):
    """The admin-syslog service: a Worker (see brokers.pool)."""

    prefetch = 64

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        admin = self.ctx.settings.admin
        self.exchange = self.ctx.settings.ops.logs_exchange
        self.keys = ("#",)
        self.target = admin.syslog
        self.app_name = admin.syslog_app_name
        self.facility = facility_code(admin.syslog_facility)
        self.sent = 0
        self._transport: asyncio.DatagramTransport | None = None
        self._protocol: _Datagrams | None = None
        self._opening = asyncio.Lock()
        self._stop = asyncio.Event()
        self._failing = False

    def queue_arguments(self) -> dict[str, Any]:
        return {"x-queue-type": "classic", "x-max-length": 10_000, "x-overflow": "drop-head",
                "x-message-ttl": 24 * 3600 * 1000}

    async def run(self, stop: asyncio.Event) -> None:
        self._stop = stop
        if not self.target:
            log.info("syslog.off", reason="[admin] syslog is empty; set udp://host:port or "
                     "unix:///dev/log to forward the logs exchange to syslog")
            self.consuming.set()   # a valid, idle worker: the node is ready without it
            try:
                await stop.wait()
            finally:
                self.consuming.clear()
            return
        await super().run(stop)

    async def stopped(self) -> None:
        self._close()

    async def handle(self, message: DeliveredMessage) -> None:
        channel = message.channel
        tag = self.tag(message)
        try:
            line = msgspec.json.decode(message.body)
            if not isinstance(line, dict):
                raise ValueError("not a JSON object")
        except (msgspec.DecodeError, UnicodeDecodeError, ValueError) as exc:
            # The log store dead-letters the same message and says so at warning: once is enough.
            log.info("syslog.malformed", error=str(exc), action="dropped")
            with contextlib.suppress(*AMQP_ERRORS):
                await channel.basic_reject(tag, requeue=False)
            return
        datagram = format_rfc5424(line, self.app_name, self.facility)
        try:
            await self._send(datagram)
        except OSError as exc:
            if not self._failing:
                self._failing = True
                log.warning("syslog.unreachable", target=self.target,
                            error=f"{type(exc).__name__}: {exc}", action="retrying")
            self._close()
            await sleep_unless(self._stop, 1.0)
            with contextlib.suppress(*AMQP_ERRORS):
                await channel.basic_nack(tag, requeue=True)
            return
        if self._failing:
            self._failing = False
            log.info("syslog.reachable", target=self.target)
        self.sent += 1
        with contextlib.suppress(*AMQP_ERRORS):   # a lost ack: sent again, syslog has it twice
            await channel.basic_ack(tag)

    async def _send(self, datagram: bytes) -> None:
        async with self._opening:
            if self._transport is None or self._transport.is_closing():
                self._transport, self._protocol = await self._open()
        assert self._protocol is not None
        if self._protocol.error is not None:
            error, self._protocol.error = self._protocol.error, None
            raise OSError(f"the last datagram was refused: {error}")
        self._transport.sendto(datagram)

    async def _open(self) -> tuple[asyncio.DatagramTransport, _Datagrams]:
        loop = asyncio.get_running_loop()
        if self.target.startswith("unix://"):
            transport, protocol = await loop.create_datagram_endpoint(
                _Datagrams, remote_addr=self.target.removeprefix("unix://"),
                family=socket.AF_UNIX)
        else:
            host, _, port = self.target.removeprefix("udp://").rpartition(":")
            transport, protocol = await loop.create_datagram_endpoint(
                _Datagrams, remote_addr=(host, int(port)))
        return transport, protocol

    def _close(self) -> None:
        if self._transport is not None:
            self._transport.close()
        self._transport = self._protocol = None
