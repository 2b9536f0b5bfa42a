"""`connect()` and `Connection`, the asyncio.Protocol: handshake, COM_QUERY, and the results of
every statement of a multi-statement query, read in one pass.

Layer: infrastructure. Received bytes are cut into packets where they arrive (`data_received`),
straight from the chunk when nothing is left over from the previous one, and each packet goes to
the handler of the state the exchange is in: no task, stream reader or await per packet, which
is what a general-purpose driver spends most of a one-row call on. A query is one write and one
awaited future; it resolves to the outcome of each statement in order (a `Rows` per result set,
a `Done` per OK), or raises the server's error carrying the outcomes that came before it.

One query at a time per connection. A query whose caller stops waiting (cancelled, timed out)
leaves the connection in an unknown place of the exchange: it is closed, never reused.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, cast

from beds.mysql import handshake
from beds.mysql import packets as p
from beds.mysql.errors import (
    CR_AUTH_PLUGIN_CANNOT_LOAD,
    CR_CONN_HOST_ERROR,
    CR_MALFORMED_PACKET,
    CR_SERVER_GONE_ERROR,
    CR_SERVER_LOST,
    InterfaceError,
    MysqlError,
    OperationalError,
    ResultTooLarge,
)
from beds.mysql.values import bind

_COM_QUIT = p.frame(b"\x01")
_STATUS_AUTOCOMMIT = 0x0002


@dataclass(slots=True)
class Rows:
    """A result set: its column names, and its rows as tuples in that order."""
    names: list[str]
    rows: list[tuple[Any, ...]]

    def dicts(self) -> list[dict[str, Any]]:
        names = self.names
        return [dict(zip(names, row, strict=True)) for row in self.rows]


Outcome = Rows | p.Done


@dataclass(frozen=True)
class Login:
    user: str = "root"
    password: str = ""
    database: str | None = None
    multi_statements: bool = False
    over_unix_socket: bool = False   # where a password may go in the clear (caching_sha2)


class Connection(asyncio.Protocol):
    def __init__(self, login: Login | None = None) -> None:
        self.server_version = ""
        self.thread_id = 0
        self.status = 0                 # the server status flags of the last OK / EOF
        self._login = login or Login()
        self._transport: asyncio.Transport | None = None
        self._closed = False
        self._left = bytearray()        # a partial packet carried to the next chunks
        self._need = 0                  # how many bytes it must reach before it is parsed
        self._large: bytearray | None = None   # a payload split over 16 MiB packets
        self._seq = 0
        self._capabilities = 0
        self._on_packet: Callable[[bytes], None] = self._unexpected
        self._waiter: asyncio.Future[Any] | None = None
        self._outcomes: list[Outcome] = []
        self._names: list[str] = []
        self._readers: list[Callable[[bytes], Any]] = []
        self._rows: list[tuple[Any, ...]] = []
        self._columns_left = 0
        self._row_budget: int | None = None   # bytes of rows a query may keep
        self._row_bytes = 0
        self._lost: MysqlError | None = None

    # -- state --------------------------------------------------------------------------------
    @property
    def connected(self) -> bool:
        return not self._closed and self._transport is not None \
            and not self._transport.is_closing()

    @property
    def in_transaction(self) -> bool:
        return bool(self.status & p.STATUS_IN_TRANS)

    def close(self) -> None:
        """Say goodbye (COM_QUIT) if the connection is idle, and close it; no I/O is awaited."""
        if self._closed:
            return
        self._closed = True
        transport = self._transport
        if transport is not None and not transport.is_closing():
            if self._waiter is None:
                with contextlib.suppress(Exception):
                    transport.write(_COM_QUIT)
            transport.close()

    # -- queries ------------------------------------------------------------------------------
    async def query(self, sql: str, args: Sequence[Any] | None = None,
                    max_row_bytes: int | None = None) -> list[Outcome]:
        """Run `sql` (its %s bound to `args`' literals, as PyMySQL does); the outcome of each
        statement, in order. Raises ServerError (with the outcomes before the failed statement),
        OperationalError (connection lost) or InterfaceError (closed, busy, unreadable).

        `max_row_bytes` bounds what a query can make this process hold: past that many bytes of
        rows (as the server sent them) the rows are dropped, the answer is read to its end, and
        ResultTooLarge is raised; the connection serves on."""
        if self._waiter is not None:
            raise InterfaceError(0, "another query is running on this connection")
        if not self.connected:
            why = f": {self._lost.message}" if self._lost else ""
            raise InterfaceError(CR_SERVER_GONE_ERROR, f"the connection is closed{why}")
        text = bind(sql, args, not self.status & p.STATUS_NO_BACKSLASH_ESCAPES)
        self._outcomes = []
        self._row_budget, self._row_bytes = max_row_bytes, 0
        self._on_packet = self._result_head
        waiter = self._expect()
        assert self._transport is not None
        self._transport.write(p.frame(b"\x03" + text.encode("utf-8")))
        outcomes: list[Outcome] = await self._wait(waiter)
        return outcomes

    async def rollback(self) -> None:
        await self.query("ROLLBACK")

    def _expect(self) -> asyncio.Future[Any]:
        self._waiter = asyncio.get_running_loop().create_future()
        return self._waiter

    async def _wait(self, waiter: asyncio.Future[Any]) -> Any:
        try:
            return await waiter
        except asyncio.CancelledError:
            # The server goes on sending this query's results: nobody would read them right.
            self._fail(OperationalError(CR_SERVER_LOST, "the query was abandoned by its caller"))
            raise
        finally:
            if self._waiter is waiter:
                self._waiter = None

    def _settle(self, result: Any = None, error: MysqlError | None = None) -> None:
        """The exchange is over: its waiter gets `result`, or `error`; the next packet, if
        any, arrives unexpected."""
        waiter, self._waiter = self._waiter, None
        self._on_packet = self._unexpected
        if waiter is None or waiter.done():
            return
        if error is None and self._row_budget is not None and self._row_bytes > self._row_budget:
            error = ResultTooLarge(self._row_budget)
        if error is None:
            waiter.set_result(result)
        else:
            waiter.set_exception(error)

    def _fail(self, error: MysqlError) -> None:
        """The connection cannot go on: fail the waiter with `error` and close."""
        self._lost = self._lost or error
        self._settle(error=error)
        self._closed = True
        if self._transport is not None:
            self._transport.close()

    # -- asyncio.Protocol ---------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)   # uvloop's is no subclass
        self._on_packet = self._read_greeting

    def connection_lost(self, exc: Exception | None) -> None:
        reason = f" ({exc})" if exc else ""
        self._fail(self._lost or OperationalError(
            CR_SERVER_LOST, f"Lost connection to MySQL server during query{reason}"))

    def data_received(self, data: bytes) -> None:
        if self._left:
            # A packet cut across chunks: gather (amortised, no copy of what came before)
            # until it is whole, then parse from one bytes object.
            self._left += data
            if len(self._left) < self._need:
                return
            data = bytes(self._left)
            self._left = bytearray()
        pos, size = 0, len(data)
        try:
            while size - pos >= 4:
                head = p.header(data, pos)[0]
                end = pos + 4 + (head & 0xFFFFFF)
                if end > size:
                    break
                payload = data[pos + 4:end]
                pos = end
                self._seq = (head >> 24) + 1
                if self._large is not None or len(payload) == p.MAX_PAYLOAD:
                    payload = self._join(payload)
                    if not payload:
                        continue
                self._on_packet(payload)
                if self._closed:
                    return
        except MysqlError as exc:
            self._fail(exc)
            return
        except Exception as exc:   # bytes no server sends: cut lengths, bad text or numbers
            self._fail(InterfaceError(CR_MALFORMED_PACKET,
                                      f"malformed packet: {type(exc).__name__}: {exc}"))
            return
        if pos < size:
            self._left = bytearray(data[pos:])
            self._need = 4 + (p.header(data, pos)[0] & 0xFFFFFF) if size - pos >= 4 else 4

    def _join(self, payload: bytes) -> bytes:
        """Pieces of a payload of 16 MiB or more; b"" until its last piece."""
        if self._large is None:
            self._large = bytearray()
        self._large += payload
        if len(payload) == p.MAX_PAYLOAD:
            return b""
        whole, self._large = bytes(self._large), None
        return whole

    # -- packet handlers: one per state of the exchange -----------------------------------------
    def _unexpected(self, payload: bytes) -> None:
        if payload[:1] == b"\xff":   # the server closes us: killed, idle timeout, shutdown
            raise _refusal(payload)
        raise InterfaceError(CR_MALFORMED_PACKET, "a packet arrived while no query was running")

    def _result_head(self, payload: bytes) -> None:
        first = payload[0]
        if first == p.OK:
            done = p.parse_ok(payload)
            self.status = done.status
            self._outcomes.append(done)
            if not done.status & p.STATUS_MORE_RESULTS:
                self._settle(self._outcomes)
        elif first == p.ERR:
            self._settle(error=p.parse_err(payload, self._outcomes))
        elif first == p.LOCAL_INFILE:
            raise InterfaceError(CR_MALFORMED_PACKET, "LOAD DATA LOCAL is not supported")
        else:
            self._columns_left = p.lenenc_int(payload, 0)[0]
            self._names, self._readers, self._rows = [], [], []
            self._on_packet = self._column

    def _column(self, payload: bytes) -> None:
        name, read = p.parse_column(payload)
        self._names.append(name)
        self._readers.append(read)
        self._columns_left -= 1
        if not self._columns_left:
            self._on_packet = self._row if self._capabilities & p.DEPRECATE_EOF \
                else self._columns_end

    def _columns_end(self, payload: bytes) -> None:
        if payload[0] != p.EOF:
            raise InterfaceError(CR_MALFORMED_PACKET, "expected EOF after column definitions")
        self._on_packet = self._row

    def _row(self, payload: bytes) -> None:
        first = payload[0]
        if first == p.EOF and len(payload) < p.MAX_PAYLOAD:
            # The end of the rows: an EOF packet, or an OK under DEPRECATE_EOF.
            self.status = p.parse_ok(payload).status if self._capabilities & p.DEPRECATE_EOF \
                else p.parse_eof_status(payload)
            self._outcomes.append(Rows(self._names, self._rows))
            if self.status & p.STATUS_MORE_RESULTS:
                self._on_packet = self._result_head
            else:
                self._settle(self._outcomes)
        elif first == p.ERR:   # e.g. the statement was killed while sending rows
            self._settle(error=p.parse_err(payload, self._outcomes))
        elif self._row_budget is None:
            self._rows.append(p.parse_row(payload, self._readers))
        else:
            self._bounded_row(payload, self._row_budget)

    def _bounded_row(self, payload: bytes, budget: int) -> None:
        self._row_bytes += len(payload)
        if self._row_bytes <= budget:
            self._rows.append(p.parse_row(payload, self._readers))
            return
        # Over the budget: let go of every row of this answer, and keep none of the rest.
        self._rows.clear()
        for outcome in self._outcomes:
            if isinstance(outcome, Rows):
                outcome.rows.clear()

    # -- the connection phase -------------------------------------------------------------------
    def _read_greeting(self, payload: bytes) -> None:
        if payload[0] == p.ERR:   # too many connections, host blocked, ...
            raise _refusal(payload)
        greeting = handshake.read_greeting(payload)
        self.server_version, self.thread_id = greeting.server_version, greeting.thread_id
        login = self._login
        body, self._capabilities = handshake.answer(greeting, login.user, login.password,
                                                    login.database, login.multi_statements)
        self._send(body)
        self._on_packet = self._auth_reply

    def _auth_reply(self, payload: bytes) -> None:
        first = payload[0]
        if first == p.OK:
            self.status = p.parse_ok(payload).status
            self._settle()
        elif first == p.ERR:
            raise _refusal(payload)
        elif first == p.EOF:   # AuthSwitchRequest: answer the plugin the server asks for
            plugin, salt = handshake.switch_request(payload)
            self._send(handshake.scramble(plugin, self._login.password, salt))
        elif first == 0x01 and payload[1:2] == b"\x04":   # caching_sha2: full authentication
            if not self._login.over_unix_socket:
                raise InterfaceError(CR_AUTH_PLUGIN_CANNOT_LOAD, (
                    "caching_sha2_password asks for full authentication, which needs TLS or "
                    "RSA key exchange (not done by BEDS's MySQL client): create the account "
                    f"IDENTIFIED WITH {handshake.NATIVE}, or connect over unix_socket"))
            self._send(self._login.password.encode("utf-8") + b"\0")
        # 0x01 0x03: caching_sha2's fast path succeeded; the OK follows.

    def _send(self, payload: bytes) -> None:
        assert self._transport is not None
        self._transport.write(p.frame(payload, self._seq))

    async def open(self, host: str, port: int, unix_socket: str | None,
                   autocommit: bool) -> None:
        """Connect, log in, and set autocommit if the server's default differs."""
        loop = asyncio.get_running_loop()
        waiter = self._expect()
        try:
            if unix_socket is not None:
                await loop.create_unix_connection(lambda: self, unix_socket)
            else:
                await loop.create_connection(lambda: self, host, port)
        except OSError as exc:
            self._waiter = None
            where = unix_socket or f"{host}:{port}"
            raise OperationalError(CR_CONN_HOST_ERROR,
                                   f"Can't connect to MySQL server on {where} ({exc})") from exc
        try:
            await self._wait(waiter)
            self._keepalive()
            if autocommit != bool(self.status & _STATUS_AUTOCOMMIT):
                await self.query(f"SET autocommit={int(autocommit)}")
        except BaseException:
            self.close()
            raise

    def _keepalive(self) -> None:
        """TCP keep-alive on a pooled connection: a server that vanished without a FIN is
        noticed by the kernel, not only by the next query's time limit."""
        transport = self._transport
        sock = transport.get_extra_info("socket") if transport is not None else None
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)


async def connect(host: str = "127.0.0.1", port: int = 3306, user: str = "root",
                  password: str = "", database: str | None = None,
                  unix_socket: str | None = None, autocommit: bool = True,
                  multi_statements: bool = False) -> Connection:
    """A logged-in connection (the caller bounds the wait). Character set utf8mb4; autocommit
    on unless asked otherwise; `multi_statements` lets one query carry several statements."""
    conn = Connection(Login(user, password, database, multi_statements, unix_socket is not None))
    await conn.open(host, port, unix_socket, autocommit)
    return conn


def _refusal(payload: bytes) -> OperationalError:
    """An ERR the server sends outside a query (at login, or as it closes an idle connection):
    the connection is over, whatever its number."""
    error = p.parse_err(payload)
    return OperationalError(error.errno, error.message)
