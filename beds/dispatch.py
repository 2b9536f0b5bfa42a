"""Template op -> broker and adapter; dispatch of one request.

Layer: application. Built once at start-up (routes, statements, validators); per message it only
looks things up, validates params and awaits the adapter.

Which broker serves an op (each op is served by exactly one broker, so a routing key is bound to
exactly one queue and a request is never answered twice):
  1. the op's `broker`, else its template's `broker`;
  2. else the broker whose `templates` names this template and whose `kinds` include the op kind;
  3. else the broker with `templates = ["*"]` whose `kinds` include the op kind.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from beds.adapters import create_adapter
from beds.adapters.base import Adapter, Call
from beds.adapters.batch import run_bulk
from beds.config import BrokerSettings, OpKind, Settings
from beds.errors import (
    DeadlineExceeded,
    Forbidden,
    OpNotFound,
    TemplateError,
    TemplateNotFound,
    ValidationFailed,
    WrongBroker,
)
from beds.idempotency import scoped_key
from beds.protocol import Request, Result
from beds.templates.model import FieldType, Op, OpTarget, Template
from beds.templates.params import OpBinder, bulk_rows
from beds.templates.registry import TemplateRegistry


@dataclass(frozen=True, slots=True)
class Route:
    template: Template
    op: Op
    broker: str
    routing_key: str
    adapter: Adapter
    prepared: Any
    binder: OpBinder
    protected: frozenset[str]
    bools: frozenset[str]           # columns declared bool: MariaDB sends them as 0/1
    allow: frozenset[str] | None    # AMQP users that may call this op; None = anyone
    timeout: float | None
    key_index: int | None = None    # where the idempotency key sits in the bound args


def assign_broker(template: Template, op: Op, brokers: Mapping[str, BrokerSettings]) -> str:
    where = f"{template.path}: ops.{op.name}"
    explicit = op.broker or template.broker
    if explicit is not None:
        if explicit not in brokers:
            raise TemplateError(f"{where}: broker {explicit!r} is not declared in the config")
        return explicit
    for claim in (template.name, "*"):
        found = [b.name for b in brokers.values() if claim in b.templates and op.kind in b.kinds]
        if len(found) > 1:
            raise TemplateError(f"{where}: brokers {', '.join(found)} all claim "
                                f"{op.kind.value} ops of {template.name!r}; make one explicit")
        if found:
            return found[0]
    raise TemplateError(f"{where}: no broker serves {op.kind.value} ops of {template.name!r}; "
                        f"add it to a broker's kinds/templates or name one with broker = ...")


def adapters_for(settings: Settings, registry: TemplateRegistry,
                 existing: Mapping[str, Adapter] | None = None) -> dict[str, Adapter]:
    """One adapter per datasource the templates use: those in `existing` are kept, the others
    created (not opened). A template naming an unknown datasource is a TemplateError."""
    adapters = dict(existing or {})
    for template in registry:
        name = template.datasource
        if name not in settings.datasources:
            known = ", ".join(sorted(settings.datasources)) or "(none)"
            raise TemplateError(f"{template.path}: datasource: {name!r} is not a "
                                f"[datasources.*] entry of the config; known: {known}")
        if name not in adapters:
            adapters[name] = create_adapter(settings.datasources[name])
    return adapters


class Dispatcher:
    """Routes built from templates + config; `dispatch` runs one request."""

    @classmethod
    def build(cls, settings: Settings, registry: TemplateRegistry,
              adapters: Mapping[str, Adapter]) -> Dispatcher:
        routes: dict[tuple[str, str], Route] = {}
        for template in registry:
            adapter = adapters[template.datasource]   # adapters_for checked the names
            timeout = settings.datasources[template.datasource].statement_timeout or None
            for op in template.ops.values():
                names = op.filters if op.target is OpTarget.VIEW else op.params
                routes[(template.name, op.name)] = Route(
                    template=template, op=op,
                    broker=assign_broker(template, op, settings.brokers),
                    routing_key=f"{template.name}.{op.name}",
                    adapter=adapter,
                    prepared=adapter.prepare(template, op),
                    binder=OpBinder(template.fields, names, op.optional,
                                    all_optional=op.target is OpTarget.VIEW),
                    protected=template.protected_names(),
                    bools=frozenset(f.name for f in template.fields.values()
                                    if f.type is FieldType.BOOL),
                    allow=_allow(op.allow if op.allow is not None else template.allow),
                    timeout=timeout,
                    key_index=(op.params.index(op.idempotency_key)
                               if op.idempotency_key is not None else None),
                )
        return cls(routes, {t.name for t in registry}, settings.security.require_user_id)

    def __init__(self, routes: dict[tuple[str, str], Route], templates: set[str],
                 require_user_id: bool = False) -> None:
        self.routes = routes
        self.templates = templates
        self.require_user_id = require_user_id

    def keys_for(self, broker: str) -> list[str]:
        return sorted(r.routing_key for r in self.routes.values() if r.broker == broker)

    def route(self, request: Request, broker: str | None, user_id: str | None = None) -> Route:
        """The route of a request, checked in an order that tells a caller nothing it may not
        know: an anonymous caller where one is required hears only FORBIDDEN; OP_NOT_FOUND lists
        only the ops this caller may call; WRONG_BROKER comes after the caller's authorisation."""
        if user_id is None and self.require_user_id:
            raise Forbidden("user_id: this node requires an authenticated caller; set the AMQP "
                            "user_id property to your RabbitMQ user name")
        route = self.routes.get((request.template, request.op))
        if route is None:
            if request.template not in self.templates:
                raise TemplateNotFound(f"template: no template named {request.template!r}")
            ops = sorted(o for (t, o), r in self.routes.items()
                         if t == request.template and _allowed(r, user_id))
            raise OpNotFound(f"op: template {request.template!r} has no op {request.op!r}"
                             + (f"; its ops are: {', '.join(ops)}" if ops else ""))
        self.authorize(route, user_id)
        if broker is not None and route.broker != broker:
            raise WrongBroker(f"op: {route.routing_key} ({route.op.kind.value}) is served by "
                              f"{route.broker}, not by {broker}; publish it to the exchange with "
                              f"routing key {route.routing_key!r}")
        return route

    @staticmethod
    def bind(route: Route, request: Request, remaining: float | None = None,
             message_id: str | None = None, deadline: float | None = None,
             caller: str | None = None) -> Call:
        """Validated values for the adapter. `remaining`: seconds left before the caller's
        deadline; the statement limit is the shorter of it and the datasource's. `caller`: the
        AMQP user_id, which scopes the idempotency key (beds/idempotency.py)."""
        op = route.op
        timeout = route.timeout
        if remaining is not None:
            timeout = remaining if timeout is None else min(timeout, remaining)
        if op.target is not OpTarget.VIEW:
            _refuse_paging(route, request)
            params = request.params
            key = op.idempotency_key
            if key is not None and params.get(key) is None and message_id:
                # The message id is the idempotency key unless the caller chose one: a retry of
                # the same message, or its redelivery, then runs at most once.
                params = {**params, key: message_id}
            args = route.binder.bind(params)
            return Call(args=_scope_key(route, args, caller), timeout=timeout, deadline=deadline)
        limit = op.limit if request.limit is None else request.limit
        if limit > op.limit:
            raise ValidationFailed(f"limit: expected int between 1 and {op.limit}, got {limit}")
        if request.cursor is not None and request.offset:
            raise ValidationFailed("cursor: a page starts at a cursor or at an offset, not both")
        return Call(filters=route.binder.filters(request.params), limit=limit,
                    offset=request.offset or 0, timeout=timeout, cursor=request.cursor,
                    deadline=deadline)

    @staticmethod
    def bind_bulk(route: Route, request: Request, remaining: float | None = None,
                  message_id: str | None = None, deadline: float | None = None,
                  caller: str | None = None) -> list[Call]:
        """One validated call per row of a bulk request, every row checked before any runs."""
        _refuse_paging(route, request)
        timeout = route.timeout
        if remaining is not None:
            timeout = remaining if timeout is None else min(timeout, remaining)
        key = route.op.idempotency_key
        calls = []
        for index, row in enumerate(bulk_rows(request.params, route.op.max_rows)):
            if key is not None and row.get(key) is None and message_id:
                # One key per row, derived from the message id: a redelivered import runs each
                # row at most once, and no two rows share a key.
                row = {**row, key: f"{message_id}.{index}"}
            args = route.binder.bind_row(row, index)
            calls.append(Call(args=_scope_key(route, args, caller), timeout=timeout,
                              deadline=deadline))
        return calls

    def authorize(self, route: Route, user_id: str | None) -> None:
        """`user_id` is the AMQP property, which RabbitMQ checks against the connection's user
        whenever it is set: a caller cannot claim another's name."""
        if user_id is None:
            if self.require_user_id or route.allow is not None:
                raise Forbidden(f"user_id: {route.routing_key} requires an authenticated caller; "
                                "set the AMQP user_id property to your RabbitMQ user name")
            return
        if route.allow is not None and user_id not in route.allow:
            raise Forbidden(f"user_id: {user_id!r} may not call {route.routing_key}")

    async def dispatch(self, request: Request, broker: str | None = None,
                       deadline: float | None = None, user_id: str | None = None,
                       message_id: str | None = None, read_after: str | None = None,
                       max_result_bytes: int | None = None) -> tuple[Route, Result]:
        """Run one request. `deadline`: the caller's absolute deadline, epoch seconds;
        `user_id`: the caller's AMQP user, as RabbitMQ validated it; `message_id`: the AMQP
        message id, the default idempotency key of write ops that declare one; `read_after`:
        the x-read-after header, a write's position a read must not be older than;
        `max_result_bytes`: the reply's size limit, for adapters that stop reading rows past
        it."""
        route = self.route(request, broker, user_id)
        remaining = None
        if deadline is not None:
            remaining = deadline - time.time()
            if remaining <= 0:
                raise DeadlineExceeded(
                    f"x-deadline: the request expired {-remaining * 1000:.0f} ms before it was "
                    "taken; nothing was run", ran=False)
        if route.op.kind is OpKind.BULK:
            calls = self.bind_bulk(route, request, remaining, message_id, deadline, user_id)
            result = await run_bulk(route.adapter, route.prepared, calls)
        else:
            call = self.bind(route, request, remaining, message_id, deadline, user_id)
            call.read_after = read_after
            call.max_result_bytes = max_result_bytes
            result = await route.adapter.run(route.prepared, call)
        if route.protected or route.bools:
            _shape(result, route.protected, route.bools)
        return route, result


def _refuse_paging(route: Route, request: Request) -> None:
    if request.limit is not None or request.offset is not None or request.cursor:
        page = ("limit" if request.limit is not None else
                "offset" if request.offset is not None else "cursor")
        what = "bulk" if route.op.kind is OpKind.BULK else route.op.target.value
        raise ValidationFailed(f"{page}: only view ops take limit/offset/cursor; "
                               f"{route.routing_key} is a {what} op")


def _scope_key(route: Route, args: list[Any], caller: str | None) -> list[Any]:
    """The bound args with the idempotency key replaced by its stored, scoped form."""
    index = route.key_index
    if index is None:
        return args
    if args[index] is not None:
        args[index] = scoped_key(route.template.name, route.op.name, caller, str(args[index]))
    return args


def _allowed(route: Route, user_id: str | None) -> bool:
    return route.allow is None or user_id in route.allow


def _allow(names: tuple[str, ...] | None) -> frozenset[str] | None:
    return None if names is None else frozenset(names)


def _shape(result: Result, protected: frozenset[str], bools: frozenset[str]) -> None:
    """Protected fields never leave the node, whatever a procedure returns; columns named like a
    bool field are sent as true/false whatever integer type the engine used."""
    for values in [*(result.sets or [result.rows]), [result.out or {}]]:
        for row in values:
            for name in protected.intersection(row):
                del row[name]
            for name in bools.intersection(row):
                if row[name] is not None:
                    row[name] = _as_bool(row[name])


def _as_bool(value: Any) -> bool:
    """MariaDB sends a BIT(1) as bytes and some columns as text: b"\\x00" and "0" are false,
    though Python's bool() says True of both."""
    if isinstance(value, bytes | bytearray):
        return any(value)
    if isinstance(value, str):
        return value.strip().lower() not in ("", "0", "false", "f")
    return bool(value)
