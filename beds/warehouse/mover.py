"""whBroker: the segundo role's mover of aged rows from the live (HOT) datasource to the warehouse
(COOL) datasource, per the `[warehouse]` policy of each template the node serves.

Layer: application (a built-in service, see beds.services). It reaches the databases only
through the node's dispatcher, i.e. through DBA-owned routines named by templates, like any
request; its ops name whBroker, which is bound to no queue, so no service can call them.

One run of a policy, every `every` seconds:

    extract(age_seconds, after_key, batch_size)  HOT   aged rows in key order
    load(rows)                                   COOL  idempotent upsert; returns the keys it holds
    purge(keys it holds, age_seconds)            HOT   delete exactly those, if still aged
    ... after the last key, until a batch comes back short

Load comes before purge and is idempotent, so a crash anywhere (node, network, database)
loses nothing and duplicates nothing: the next run finds the unpurged rows still aged in HOT,
loads them again (a no-op for rows already there) and purges them. No progress is stored; the
HOT table itself is the queue of work. Several movers at once (instances, or segundo nodes)
only repeat each other's idempotent loads and purge-by-key deletes, so no lock is taken. A
database error ends the run; the next tick starts it again.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Hashable
from typing import Any

from beds.brokers.link import sleep_unless
from beds.config import BrokerSettings
from beds.dispatch import Dispatcher
from beds.errors import BedsError, RequestError, TemplateError
from beds.log import get_logger
from beds.ops.context import NodeContext
from beds.protocol import Request
from beds.templates.model import Template, WarehousePolicy
from beds.templates.warehouse import check_load

log = get_logger("beds.warehouse")
IDLE_SECONDS = 5.0   # with no policy to run: how often to look again (templates may be reloaded)


class WarehouseMover:
    """A Worker (see brokers.pool): supervised and restarted like any broker instance."""

    def __init__(self, ctx: NodeContext, broker: BrokerSettings, instance: int) -> None:
        self.ctx = ctx
        self.broker = broker
        self.instance = instance
        self.name = f"{broker.name}#{instance}"
        self.consuming = asyncio.Event()
        self.inflight = 0
        self._due: dict[str, float] = {}   # template -> loop time of its next run

    async def run(self, stop: asyncio.Event) -> None:
        loop = asyncio.get_running_loop()
        self.consuming.set()
        try:
            while not stop.is_set():
                dispatcher = self.ctx.node.dispatcher   # replaced on reload: read per tick
                policies = warehouse_templates(dispatcher)
                for template, policy in policies:
                    if stop.is_set():
                        break
                    if self._due.get(template.name, 0.0) <= loop.time():
                        await self.run_policy(dispatcher, template, stop)
                        self._due[template.name] = loop.time() + policy.every
                due = [self._due.get(t.name, 0.0) for t, _policy in policies]
                wait = min(due) - loop.time() if due else IDLE_SECONDS
                await sleep_unless(stop, max(wait, 0.0))
        finally:
            self.consuming.clear()

    async def run_policy(self, dispatcher: Dispatcher, template: Template,
                         stop: asyncio.Event | None = None) -> int:
        """One run of `template`'s policy: batches until one is short. Returns the rows moved;
        logs one line, and emits `warehoused` when rows moved. Never raises a BedsError.

        `loaded`: rows the warehouse confirmed; `moved`: rows this run deleted from HOT (the
        purge op's single OUT value, else `loaded`). They differ only when another mover purged
        some of the same rows first."""
        policy = template.warehouse
        if policy is None:
            return 0
        started = time.monotonic()
        moved = loaded = batches = 0
        fields: dict[str, Any] = {"template": template.name,
                                  "cool": f"{policy.load_template}.{policy.load_op}"}
        try:
            check_policy(dispatcher, template, policy, self.broker.name)
            after: Hashable | None = None
            while stop is None or not stop.is_set():
                self.inflight = 1
                rows = await self._call(dispatcher, template.name, policy.extract, {
                    "age_seconds": policy.age_seconds, "batch_size": policy.batch,
                    **({} if after is None else {"after_key": after})})
                if not rows.rows:
                    break
                keys = batch_keys(rows.rows, policy, after)
                stored = await self._call(dispatcher, policy.load_template, policy.load_op,
                                          {"rows": rows.rows})
                held = _held(stored.rows, policy, template.name)
                confirmed = [key for key in keys if key in held]
                if len(confirmed) < len(keys):
                    log.warning("warehouse.unconfirmed", **fields, sent=len(keys),
                                held=len(confirmed), after_key=after)
                if confirmed:
                    done = await self._call(dispatcher, template.name, policy.purge,
                                            {"keys": confirmed, "age_seconds": policy.age_seconds})
                    moved += _count(done.out, len(confirmed))
                loaded += len(confirmed)
                batches += 1
                after = keys[-1]
                if len(rows.rows) < policy.batch:
                    break
        except BedsError as exc:
            retryable = isinstance(exc, RequestError) and exc.retryable
            (log.warning if retryable else log.error)(
                "warehouse.failed", **fields, moved=moved, loaded=loaded, batches=batches,
                retryable=retryable, error=f"{type(exc).__name__}: {exc}",
                elapsed_ms=round((time.monotonic() - started) * 1000, 1))
            self.ctx.events.emit("warehouse_failed", **fields, moved=moved, retryable=retryable,
                                 error=str(exc))
            return moved
        finally:
            self.inflight = 0
        elapsed_ms = round((time.monotonic() - started) * 1000, 1)
        log.info("warehouse.run", **fields, moved=moved, loaded=loaded, batches=batches,
                 elapsed_ms=elapsed_ms)
        if loaded:
            self.ctx.events.emit("warehoused", **fields, moved=moved, loaded=loaded,
                                 batches=batches, elapsed_ms=elapsed_ms)
        return moved

    async def _call(self, dispatcher: Dispatcher, template: str, op: str,
                    params: dict[str, Any]) -> Any:
        _route, result = await dispatcher.dispatch(Request(template, op, params),
                                                   broker=self.broker.name)
        return result


def check_policy(dispatcher: Dispatcher, template: Template, policy: WarehousePolicy,
                 broker: str) -> None:
    """Every op a policy names exists, the load op is on another datasource, and the mover's
    ops name its broker. Raises TemplateError (the node refuses to start; a reload is refused)."""
    load = dispatcher.routes.get((policy.load_template, policy.load_op))
    check_load(policy, template.name, template.datasource,
               None if load is None else load.template.datasource,
               None if load is None else load.op)
    for name, op in ((template.name, policy.extract), (template.name, policy.purge),
                     (policy.load_template, policy.load_op)):
        route = dispatcher.routes[(name, op)]
        if route.broker != broker:
            raise TemplateError(
                f"{route.template.path}: ops.{op}: the warehouse calls it, so it must name "
                f"broker = {broker!r} (bound to no queue: services cannot call it), "
                f"not {route.broker!r}")


def warehouse_templates(dispatcher: Dispatcher) -> list[tuple[Template, WarehousePolicy]]:
    """The templates served by `dispatcher` that have a `[warehouse]` policy, by name."""
    found = {r.template.name: (r.template, r.template.warehouse)
             for r in dispatcher.routes.values() if r.template.warehouse is not None}
    return [(template, policy) for template, policy in (found[n] for n in sorted(found))
            if policy is not None]


def batch_keys(rows: list[dict[str, Any]], policy: WarehousePolicy,
               after: Hashable | None) -> list[Hashable]:
    """The keys of an extracted batch, checked: each row has its key and age field, the keys
    rise and follow `after`, and there are no more rows than asked for. A routine that broke
    that contract could make the mover loop or skip rows, so the batch is refused instead."""
    if len(rows) > policy.batch:
        raise TemplateError(f"warehouse.extract: returned {len(rows)} rows for a batch of "
                            f"{policy.batch}")
    keys: list[Hashable] = []
    last: Any = after
    for row in rows:
        key = row.get(policy.key)
        if key is None or row.get(policy.age_field) is None:
            raise TemplateError(f"warehouse.extract: a row without {policy.key!r} or "
                                f"{policy.age_field!r}; got columns {sorted(row)}")
        if last is not None and not key > last:
            raise TemplateError(f"warehouse.extract: keys must rise in each batch and follow "
                                f"after_key; got {key!r} after {last!r}")
        keys.append(key)
        last = key
    return keys


def _held(rows: list[dict[str, Any]], policy: WarehousePolicy, template: str) -> set[Hashable]:
    if rows and policy.key not in rows[0]:
        raise TemplateError(f"template {template!r}: warehouse.load: "
                            f"{policy.load_template}.{policy.load_op} must return the "
                            f"{policy.key!r} of every row it holds; got columns {sorted(rows[0])}")
    return {row[policy.key] for row in rows}


def _count(out: dict[str, Any] | None, default: int) -> int:
    values = list((out or {}).values())
    return values[0] if len(values) == 1 and isinstance(values[0], int) else default
