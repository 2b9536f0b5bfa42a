"""FakeBeds: BEDS for a service's unit tests, without RabbitMQ. Answers each (template, op) from
a canned reply or a Python callable, in the shapes the real client returns.

Layer: tooling (test kit). Replies go through the node's own encoder and the client's own decoder, so a
fake reply is a `beds.Reply` and a fake failure is the same exception class, code, message and
details a real node would produce. Given the templates, FakeBeds also routes, authorizes and
validates each request with the node's own code (unknown op, wrong param type, ...).

    fake = FakeBeds(templates="templates")
    fake.on("film", "fetch", data=[{"FID": 1, "title": "Academy Dinosaur"}])
    fake.on("customer", "create", error=Conflict("duplicate key"))
    fake.on("film", "list", handler=lambda call: [{"FID": 1}] if call.params else [])
    service = FilmService(fake)        # where the service takes a beds.Client
    service = FilmService(fake.sync)   # where it takes a beds.SyncClient
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from beds.client import Reply, reply_from_body
from beds.config import OpKind
from beds.errors import BedsError, RequestError
from beds.protocol import (
    Request,
    Result,
    decode_reply,
    decode_request,
    encode_error,
    encode_ok,
    encode_request,
)

if TYPE_CHECKING:
    from beds.dispatch import Dispatcher

Rows = list[dict[str, Any]]


@dataclass(frozen=True)
class FakeCall:
    """One call a service made, as FakeBeds received it."""

    template: str
    op: str
    params: dict[str, Any]
    limit: int | None = None
    offset: int | None = None
    cursor: str | None = None
    timeout: float | None = None
    message_id: str | None = None


Handler = Callable[[FakeCall], Rows | Reply]
"""Answers one call: returns its rows or a whole Reply, or raises a RequestError
(ValidationFailed, Conflict, ...) to answer with that error."""


@dataclass(frozen=True)
class _Answer:
    result: Result = field(default_factory=lambda: Result(rows=[]))
    error: BedsError | None = None
    handler: Handler | None = None


class FakeBeds:
    """A stand-in for `beds.Client` (and, through `.sync`, for `beds.SyncClient`) that answers
    from what the test told it with `on(...)`, and records every call in `calls`.

    `templates`: a folder of template files; when given, requests are routed, authorized
    (`user_id`, as the client would send it) and validated as a node would, before an answer is
    looked up. A call nobody told FakeBeds how to answer fails with AssertionError.
    """

    def __init__(self, templates: str | Path | None = None, *, user_id: str | None = None,
                 node: str = "fake") -> None:
        self.calls: list[FakeCall] = []
        self.user_id = user_id
        self.node = node
        self._answers: dict[tuple[str, str], _Answer] = {}
        self._dispatcher = None if templates is None else _dispatcher_for(Path(templates))

    @property
    def sync(self) -> FakeSyncBeds:
        """The same fake with SyncClient's blocking methods."""
        return FakeSyncBeds(self)

    def on(self, template: str, op: str, *, data: Rows | None = None,
           out: dict[str, Any] | None = None, sets: list[Rows] | None = None,
           next_cursor: str | None = None, error: BedsError | None = None,
           handler: Handler | None = None) -> FakeBeds:
        """How to answer `template.op` from now on: rows (`data`, `out`, `sets`,
        `next_cursor`), an `error` to raise (a RequestError comes back as a node would send it;
        CallTimeout, NoRoute or Disconnected are raised as the client would), or a `handler`
        called with each FakeCall. Returns the fake, for chaining."""
        if (error is not None) + (handler is not None) + (
                data is not None or out is not None or sets is not None) > 1:
            raise ValueError("FakeBeds.on: give rows (data/out/sets), error or handler, not two")
        self._answers[(template, op)] = _Answer(
            Result(rows=list(data or []), out=out, sets=sets, next_cursor=next_cursor),
            error, handler)
        return self

    def calls_to(self, template: str, op: str) -> list[FakeCall]:
        """The recorded calls of one op, in order."""
        return [c for c in self.calls if (c.template, c.op) == (template, op)]

    # -- Client's surface ---------------------------------------------------------------------

    async def __aenter__(self) -> FakeBeds:
        return self

    async def __aexit__(self, *exc: object) -> None:
        return None

    async def connect(self) -> None:
        """Nothing to connect: here so code that calls `connect()` runs unchanged."""

    async def close(self) -> None:
        """Nothing to close: here so code that calls `close()` runs unchanged."""

    async def call(self, template: str, op: str, params: dict[str, Any] | None = None, *,
                   limit: int | None = None, offset: int | None = None,
                   cursor: str | None = None, timeout: float | None = None,
                   message_id: str | None = None, deadline: float | None = None,
                   read_after: str | None = None) -> Reply:
        """One request; returns its Reply or raises the reply's typed error. `deadline` and
        `read_after` are accepted and have no effect: the fake answers at once, and has no
        replicas (every read sees every write)."""
        return reply_from_body(self.answer(FakeCall(template, op, _given(params), limit,
                                                    offset, cursor, timeout, message_id)))

    async def call_raw(self, template: str, op: str, params: dict[str, Any] | None = None, *,
                       limit: int | None = None, offset: int | None = None,
                       cursor: str | None = None, timeout: float | None = None,
                       message_id: str | None = None, deadline: float | None = None,
                       read_after: str | None = None) -> dict[str, Any]:
        """One request; returns the reply body as a dict, whether ok or not."""
        return self.answer(FakeCall(template, op, _given(params), limit, offset, cursor,
                                    timeout, message_id))

    # -- answering ----------------------------------------------------------------------------

    def answer(self, call: FakeCall) -> dict[str, Any]:
        """The reply body a node would send for `call` (recorded in `calls`)."""
        self.calls.append(call)
        body = encode_request(call.template, call.op, call.params, call.limit, call.offset,
                              call.cursor)
        meta: dict[str, Any] = {"template": call.template, "op": call.op, "node": self.node,
                                "broker": "fake"}
        try:
            request = decode_request(body, max_bytes=len(body))
            if self._dispatcher is not None:
                meta["broker"] = self._check(request, call.message_id)
            result = self._result(call)
        except RequestError as error:
            return decode_reply(encode_error(error, meta))
        meta["rows"] = len(result.rows)
        meta["elapsed_ms"] = 0.0
        return decode_reply(encode_ok(result, meta))

    def _check(self, request: Request, message_id: str | None) -> str:
        """Route, authorize and validate as the node does; the broker that would serve it."""
        from beds.dispatch import Dispatcher

        assert self._dispatcher is not None
        # The node's own order: authorisation comes with routing (nothing leaks before it).
        route = self._dispatcher.route(request, None, self.user_id)
        if route.op.kind is OpKind.BULK:
            Dispatcher.bind_bulk(route, request, message_id=message_id)
        else:
            Dispatcher.bind(route, request, message_id=message_id)
        return route.broker

    def _result(self, call: FakeCall) -> Result:
        answer = self._answers.get((call.template, call.op))
        if answer is None:
            told = ", ".join(f"{t}.{o}" for t, o in sorted(self._answers)) or "nothing yet"
            raise AssertionError(
                f"FakeBeds has no answer for {call.template}.{call.op} (it was told: {told}); "
                f"add fake.on({call.template!r}, {call.op!r}, data=[...]) or error=/handler=")
        if answer.error is not None:
            raise answer.error
        if answer.handler is None:
            return answer.result
        given = answer.handler(call)
        if isinstance(given, Reply):
            return Result(rows=given.data, out=given.out, sets=given.sets,
                          next_cursor=given.next_cursor)
        return Result(rows=list(given))


class FakeSyncBeds:
    """FakeBeds with SyncClient's blocking methods (`fake.sync`); shares its answers and calls."""

    def __init__(self, fake: FakeBeds) -> None:
        self.fake = fake

    def __enter__(self) -> FakeSyncBeds:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def connect(self) -> None:
        """Nothing to connect: here so code that calls `connect()` runs unchanged."""

    def close(self) -> None:
        """Nothing to close: here so code that calls `close()` runs unchanged."""

    def call(self, template: str, op: str, params: dict[str, Any] | None = None, *,
             limit: int | None = None, offset: int | None = None, cursor: str | None = None,
             timeout: float | None = None, message_id: str | None = None,
             deadline: float | None = None, read_after: str | None = None) -> Reply:
        """One request; returns its Reply or raises the reply's typed error."""
        return reply_from_body(self.call_raw(template, op, params, limit=limit, offset=offset,
                                             cursor=cursor, timeout=timeout,
                                             message_id=message_id))

    def call_raw(self, template: str, op: str, params: dict[str, Any] | None = None, *,
                 limit: int | None = None, offset: int | None = None, cursor: str | None = None,
                 timeout: float | None = None, message_id: str | None = None,
                 deadline: float | None = None, read_after: str | None = None) -> dict[str, Any]:
        """One request; returns the reply body as a dict, whether ok or not."""
        return self.fake.answer(FakeCall(template, op, _given(params), limit, offset, cursor,
                                         timeout, message_id))


def _given(params: dict[str, Any] | None) -> dict[str, Any]:
    """A copy of what the service sent (anything that is not an object is kept as is, for the
    envelope check to refuse as a node would)."""
    return {} if params is None else dict(params) if isinstance(params, dict) else params


def _dispatcher_for(templates: Path) -> Dispatcher:
    """The node's Dispatcher over `templates`, with stub adapters that are never run."""
    from beds.adapters.stub import StubAdapter
    from beds.dispatch import Dispatcher
    from beds.templates import TemplateRegistry, load_templates
    from beds.testing.node import load_config, node_config

    registry = TemplateRegistry(load_templates(templates))
    registry.freeze()
    sources = {t.datasource: {"engine": "mysql", "dsn": "mysql://fake@127.0.0.1/fake"}
               for t in registry}
    with tempfile.TemporaryDirectory(prefix="beds-fake-") as folder:
        settings = load_config(node_config(templates, sources, "amqp://127.0.0.1/", "fake"),
                               Path(folder))
    adapters = {name: StubAdapter(ds) for name, ds in settings.datasources.items()}
    return Dispatcher.build(settings, registry, adapters)
