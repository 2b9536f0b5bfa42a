"""The chaos workload: callers that publish with confirms and retry with the same message id,
steady load, and the heal side of every scenario (retry, quiesce, read the DLQ, count effects).

Each pay carries a unique request id (the AMQP message_id, the op's idempotency key) and a unique
`paid_at`, so that `COUNT(*) FROM payment WHERE payment_date = paid_at` is that request's number of
effects; each count_pay (non-idempotent, never resent by its caller) a unique tag, so that
`COUNT(*) FROM chaos_exec WHERE tag = ...` is how many times it ran; reads check the row they get.
tests/chaos/checker.py classifies the outcome.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import secrets
import time
import uuid
from collections.abc import Iterable
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

import aiormq
from aiormq.abc import AbstractChannel, AbstractConnection, DeliveredMessage
from pamqp.commands import Basic

from beds.brokers.link import AMQP_ERRORS, connect_first
from beds.config import Settings
from tests.chaos.broker import RabbitCtl
from tests.chaos.checker import COLUMNS, RESULTS, Request, Row, tally
from tests.chaos.mariadb import RootDb
from tests.support.waiting import Predicate, wait_for

DIRECT_REPLY_TO = "amq.rabbitmq.reply-to"
AT_LEAST_ONCE = ("at-least-once delivery: a write committed but not acked when the node's link "
                 "broke is redelivered and, without a key, runs again")
"""Why a scenario that cuts a node off mid-request may re-execute count_pay: at-least-once
delivery, the case idempotency keys exist for (README, Guarantees)."""
CALLER_RETRIES = frozenset({"DB_UNAVAILABLE", "DEADLINE_EXCEEDED"})
"""Replies after which a careful caller sends the same request again (safe: idempotent)."""

# Every pay of the session gets its own second, far from any date the example schema or other
# tests use, so a payment row names the request that made it.
_BASE = datetime(2400, 1, 1) + timedelta(days=secrets.randbelow(150_000))
_SECONDS = itertools.count()


def next_paid_at() -> str:
    return (_BASE + timedelta(seconds=next(_SECONDS))).isoformat()


class Caller:
    """A caller on its own connection: publisher confirms, direct reply-to, and a fresh
    connection when the broker dropped the last one. `url` may be a cluster's endpoints: a new
    connection then goes to the next one that answers (the lost one's node may be gone)."""

    def __init__(self, url: str | list[str], exchange: str, user_id: str | None = None) -> None:
        self.urls = [url] if isinstance(url, str) else list(url)
        self.url = self.urls[0]
        self.exchange = exchange
        self.user_id = user_id
        self._conn: AbstractConnection | None = None
        self._channel: AbstractChannel | None = None
        self._lock = asyncio.Lock()
        self._owner: dict[str, Request] = {}
        self._waiting: dict[str, asyncio.Future[None]] = {}
        self.connects = 0

    async def close(self) -> None:
        if self._conn is not None and not self._conn.is_closed:
            with contextlib.suppress(*AMQP_ERRORS):   # a broker that is gone closed it already
                await asyncio.wait_for(self._conn.close(), 10)

    async def channel(self) -> AbstractChannel:
        async with self._lock:
            if self._channel is not None and not self._channel.is_closed:
                return self._channel
            if self._conn is None or self._conn.is_closed:
                if self._conn is not None:   # lost: try the next endpoint first
                    self.urls.append(self.urls.pop(0))
                self._conn = await connect_first(self.urls)
                self.connects += 1
            self._channel = await self._conn.channel(publisher_confirms=True)
            await self._channel.basic_consume(DIRECT_REPLY_TO, self._on_reply, no_ack=True)
            return self._channel

    async def _on_reply(self, message: DeliveredMessage) -> None:
        cid = message.header.properties.correlation_id or ""
        request = self._owner.get(cid)
        if request is None:
            return
        try:
            reply = json.loads(message.body)
            if not isinstance(reply, dict):
                raise ValueError("not an object")
        except ValueError:
            reply = {"ok": False, "error": {"code": "UNDECODABLE_REPLY"}}
        request.replies.append((cid, reply))
        request.reply_times.append(time.time())
        waiter = self._waiting.get(cid)
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def attempt(self, request: Request, timeout: float) -> None:
        """Publish one copy of `request` and wait up to `timeout` for its reply."""
        cid = uuid.uuid4().hex
        self._owner[cid] = request
        request.attempts += 1
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiting[cid] = waiter
        try:
            try:
                channel = await asyncio.wait_for(self.channel(), timeout)
                budget = timeout if request.budget is None else request.budget
                deadline = request.deadline_ms
                request.published[cid] = time.time()
                if deadline is None:
                    deadline = int((request.published[cid] + budget) * 1000)
                props = Basic.Properties(
                    reply_to=request.reply_to or DIRECT_REPLY_TO, correlation_id=cid, message_id=request.rid,
                    content_type="application/json", delivery_mode=2,
                    headers={"x-deadline": deadline, **(request.headers or {})},
                    # Like beds.Client: a request nobody took in time is dropped (dead-lettered
                    # as `expired`), never run after its caller gave up. A fixed deadline in
                    # the past must reach the node, so it goes without an expiration.
                    expiration=None if request.deadline_ms is not None
                    else str(max(1, int(budget * 1000))),
                    user_id=self.user_id)
                exchange = self.exchange if request.exchange is None else request.exchange
                confirm = await asyncio.wait_for(channel.basic_publish(
                    request.body, exchange=exchange, routing_key=request.routing_key,
                    properties=props), timeout)
            except (*AMQP_ERRORS, TimeoutError) as exc:
                request.refused.append(type(exc).__name__)
                return
            if not isinstance(confirm, Basic.Ack):
                request.refused.append(type(confirm).__name__)
                return
            request.confirmed = True
            request.sent_cids.append(cid)
            # A reply to a dead channel can never come (direct reply-to): stop waiting then.
            await asyncio.wait({waiter, channel.closing}, timeout=timeout,
                               return_when=asyncio.FIRST_COMPLETED)
            if not waiter.done() and channel.closing.done():
                request.closed_cids.append(cid)
        finally:
            self._waiting.pop(cid, None)


async def wait_until(predicate: Predicate, timeout: float, what: str, interval: float = 0.1
                     ) -> None:
    """tests/support/waiting.py's wait_for, with the chaos scenarios' poll interval."""
    await wait_for(predicate, timeout, interval, what)


class Workload:
    """Requests of one scenario against one stack, and their bookkeeping."""

    def __init__(self, scenario: str, caller: Caller, settings: Settings, amqp_url: str,
                 ctl: RabbitCtl, root: RootDb, *, min_sent: int,
                 retry_codes: frozenset[str] = CALLER_RETRIES,
                 allow: dict[str, str] | None = None) -> None:
        """`min_sent`: the scenario tests nothing below this many confirmed requests. `allow`:
        the columns among re-executed, dropped and indeterminate that may be non-zero here, each
        with the reason (it goes into the results table)."""
        unknown = set(allow or ()) - {"re-executed", "dropped", "indeterminate"}
        assert not unknown and set(allow or ()) <= set(COLUMNS), f"allow: {unknown}"
        self.scenario = scenario
        self.min_sent = min_sent
        self.allow = dict(allow or {})
        self.notes: list[str] = []     # measured facts a scenario adds to its row
        self.caller = caller
        self.settings = settings
        self.amqp_url = amqp_url
        self.ctl = ctl
        self.root = root
        self.retry_codes = retry_codes
        self.requests: list[Request] = []
        self.foreign_dead = 0
        self.dead_messages: list[DeliveredMessage] = []   # what collect_dead() took off the DLQ
        self.problems: list[str] = []
        self.started = time.monotonic()
        self._tag = secrets.token_hex(3)
        self._ids = itertools.count()

    # -- building requests ----------------------------------------------------------------
    def new_id(self) -> str:
        return f"chaos-{self._tag}-{next(self._ids)}"

    def add(self, request: Request) -> Request:
        self.requests.append(request)
        return request

    def pay(self, customer_id: int = 1, amount: str = "1.00", op: str = "customer.pay",
            **extra: Any) -> Request:
        """An idempotent payment (`op` calls payment_record) whose effect can be counted."""
        paid_at = next_paid_at()
        template, name = op.split(".")
        body = {"template": template, "op": name,
                "params": {"customer_id": customer_id, "amount": amount, "paid_at": paid_at}}
        return self.add(Request(self.new_id(), op, json.dumps(body).encode(),
                                paid_at=paid_at, **extra))

    def count_pay(self, customer_id: int = 1, amount: str = "1.00", **extra: Any) -> Request:
        """A NON-idempotent payment (chaos.count_pay): every run that commits is counted. Its
        caller never sends it twice, so any second run is BEDS's."""
        rid = self.new_id()
        body = {"template": "chaos", "op": "count_pay",
                "params": {"tag": rid, "customer_id": customer_id, "amount": amount,
                           "paid_at": next_paid_at()}}
        return self.add(Request(rid, "chaos.count_pay", json.dumps(body).encode(), counted=True,
                                **{"retry": False, **extra}))

    def read(self, film_id: int, **extra: Any) -> Request:
        body = {"template": "film", "op": "fetch", "params": {"film_id": film_id}}
        return self.add(Request(self.new_id(), "film.fetch", json.dumps(body).encode(),
                                expect={"FID": film_id}, **extra))

    def mix(self, n: int, reads_every: int = 5, counted: bool = True) -> list[Request]:
        """n requests: mostly pays, one read in `reads_every`, and (`counted`) one
        non-idempotent count_pay in every `reads_every` too when the mix has room for it."""
        return [self.next_of_mix(i, reads_every, counted) for i in range(n)]

    def next_of_mix(self, i: int, reads_every: int = 5, counted: bool = True) -> Request:
        if i % reads_every == reads_every - 1:
            return self.read(1 + i % 30)
        if counted and reads_every > 2 and i % reads_every == reads_every - 2:
            return self.count_pay(customer_id=1 + i % 5)
        return self.pay(customer_id=1 + i % 5)

    def raw(self, body: bytes, routing_key: str, **extra: Any) -> Request:
        return self.add(Request(self.new_id(), routing_key, body, **extra))

    # -- running ----------------------------------------------------------------------------
    def load(self, workers: int = 8, timeout: float = 8.0, reads_every: int = 5,
             budget: float | None = None) -> Load:
        """Steady load until stopped: `workers` callers in a loop, mostly pays, some count_pays
        and reads. `budget`: the deadline each request carries (default: the caller's wait)."""
        return Load(self, workers, timeout, reads_every, budget)

    async def run(self, requests: Iterable[Request] | None = None, concurrency: int = 16,
                  timeout: float = 8.0, caller: Caller | None = None) -> None:
        """One attempt of each request, at most `concurrency` in flight."""
        who = caller or self.caller
        gate = asyncio.Semaphore(concurrency)

        async def one(request: Request) -> None:
            async with gate:
                await who.attempt(request, timeout)

        await asyncio.gather(*(one(r) for r in (self.requests if requests is None
                                                 else list(requests))))

    def answered(self) -> int:
        return sum(1 for r in self.requests if r.replies)

    def needs_retry(self, request: Request) -> bool:
        if not request.retry:
            return False
        codes = request.codes()
        if "ok" in codes:
            return False
        return not codes or all(c in self.retry_codes for c in codes)

    async def settle(self, timeout: float = 8.0, within: float = 60.0) -> None:
        """The caller's retry path: the same message_id again until answered, or `within`."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within
        while True:
            pending = [r for r in self.requests if self.needs_retry(r)]
            if not pending or loop.time() > deadline:
                return
            await self.run(pending, timeout=timeout)
            if all(self.needs_retry(r) for r in pending):
                await asyncio.sleep(0.5)   # nothing moved (broker away?): do not spin

    async def quiesce(self, within: float = 60.0) -> None:
        """Until every request queue of the stack is empty (ready + unacked), the node's
        database sessions are idle and the dead-letter queue stopped growing, twice in a row:
        only then are the effect counts and dead-letters final."""
        dlq = self.settings.amqp.dlq
        names = {b.queue for b in self.settings.brokers.values()}
        names |= {f"{self.settings.amqp.exchange}.unrouted", dlq}
        last: dict[str, Any] = {"streak": 0, "dead": -1}

        async def quiet() -> bool:
            depths = await self.ctl.queue_messages(names)
            busy = await self.root.sessions()
            dead = depths.pop(dlq, 0)
            settled = not any(depths.values()) and not busy and dead == last["dead"]
            last.update(queues={k: v for k, v in depths.items() if v}, sessions=busy, dead=dead,
                        streak=last["streak"] + 1 if settled else 0)
            return bool(last["streak"] >= 2)

        try:
            await wait_until(quiet, within, "queues empty and database idle", interval=0.3)
        except AssertionError:
            raise AssertionError(f"{self.scenario}: did not quiesce within {within}s: "
                                 f"{last}") from None

    async def collect_dead(self) -> None:
        """Drain `<exchange>.dead`; attribute each message to its request by message_id."""
        by_id = {r.rid: r for r in self.requests}
        conn = await aiormq.connect(self.amqp_url)
        try:
            channel = await conn.channel()
            while True:
                got = await channel.basic_get(self.settings.amqp.dlq, no_ack=True)
                if isinstance(got.delivery, Basic.GetEmpty):
                    break
                props = got.header.properties
                self.dead_messages.append(got)
                deaths = (props.headers or {}).get("x-death")
                reasons = [str(d.get("reason", "?")) for d in
                           (deaths if isinstance(deaths, list) else []) if isinstance(d, dict)]
                request = by_id.get(props.message_id or "")
                if request is None:
                    self.foreign_dead += 1
                else:
                    request.dead.extend(reasons or ["?"])
                    if props.correlation_id:
                        request.dead_cids.append(props.correlation_id)
        finally:
            await conn.close()

    async def count_effects(self) -> None:
        pays = {r.paid_at: r for r in self.requests if r.paid_at}
        if pays:
            holders = ", ".join(["%s"] * len(pays))
            rows = await self.root.rows(
                "SELECT payment_date, COUNT(*), MIN(payment_id) FROM payment "
                f"WHERE payment_date IN ({holders}) GROUP BY payment_date", list(pays))
            for paid_at, count, first_id in rows:
                request = pays[paid_at.isoformat()]
                request.effects, request.row_id = int(count), int(first_id)
        counted = {r.rid: r for r in self.requests if r.counted}
        if counted:
            holders = ", ".join(["%s"] * len(counted))
            rows = await self.root.rows(f"SELECT tag, COUNT(*) FROM chaos_exec WHERE tag IN "
                                        f"({holders}) GROUP BY tag", list(counted))
            for tag, runs in rows:
                counted[tag].effects = int(runs)

    async def finish(self, *, settle: bool = True, timeout: float = 8.0,
                     within: float = 60.0) -> Row:
        """Heal-side of every scenario: retry, wait for quiet, read the DLQ, count, tally."""
        if settle:
            await self.settle(timeout=timeout, within=within)
        await self.quiesce()
        await self.collect_dead()
        await self.count_effects()
        row = self.tally()
        RESULTS.append(row)
        return row

    def tally(self) -> Row:
        row, self.problems = tally(self.scenario, self.requests,
                                   time.monotonic() - self.started, self.foreign_dead)
        if self.notes:
            row = replace(row, notes="; ".join([*self.notes, row.notes] if row.notes
                                               else self.notes))
        if self.allow:
            reasons: dict[str, list[str]] = {}
            for column, reason in self.allow.items():
                reasons.setdefault(reason, []).append(column)
            why = "; ".join(f"{' and '.join(columns)} expected: {reason}"
                            for reason, columns in reasons.items())
            row = replace(row, notes=f"{row.notes}; {why}" if row.notes else why)
        return row

    def assert_clean(self, row: Row) -> None:
        """lost, duplicated, mismatched, phantom: 0; re-executed, dropped, indeterminate: 0
        unless declared; at least `min_sent` requests confirmed."""
        problems = "\n".join(self.problems[:20])
        assert row.sent >= self.min_sent, (
            f"{self.scenario}: only {row.sent} requests confirmed, the scenario needs "
            f"{self.min_sent} to test anything\n{row}")
        assert (row.lost, row.duplicated, row.mismatched, row.phantom) == (0, 0, 0, 0), (
            f"{row}\n{problems}")
        for column, value in (("re-executed", row.reexecuted), ("dropped", row.dropped),
                              ("indeterminate", row.indeterminate)):
            assert value == 0 or column in self.allow, (
                f"{self.scenario}: {column} {value}, and the scenario does not expect any\n"
                f"{row}\n{problems}")


class Load:
    """Requests keep coming until `stop()`: each worker sends one, waits for its answer (or its
    timeout), and sends the next."""

    def __init__(self, wl: Workload, workers: int, timeout: float, reads_every: int,
                 budget: float | None = None) -> None:
        self.wl = wl
        self._timeout = timeout
        self._budget = budget
        self._reads_every = reads_every
        self._count = itertools.count()
        self._stop = asyncio.Event()
        self._tasks = [asyncio.create_task(self._work()) for _ in range(workers)]

    async def _work(self) -> None:
        while not self._stop.is_set():
            request = self.wl.next_of_mix(next(self._count), self._reads_every)
            request.budget = self._budget
            await self.wl.caller.attempt(request, self._timeout)
            if not request.confirmed:
                await asyncio.sleep(0.25)   # the broker is away: a caller would back off too

    async def progress(self, answered: int, within: float = 30.0) -> None:
        """Until `answered` more requests have a reply."""
        target = self.wl.answered() + answered
        await wait_until(lambda: self.wl.answered() >= target, within,
                         f"{answered} more replies under load")

    async def stop(self) -> None:
        self._stop.set()
        await asyncio.gather(*self._tasks)
