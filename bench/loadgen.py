"""The load generator: one process, one AMQP connection, N requests in flight, direct reply-to.

    python -m bench.loadgen --exchange X --key film.fetch --body fetch --concurrency 16 \
        --warmup 1.5 --duration 8 --max-requests 200000

Each of N workers publishes a request, waits for its reply (matched by correlation_id), repeats.
After `warmup` seconds it prints {"event": "window_start"}, after `duration` more seconds (or
`max-requests` replies) {"event": "window_end"}; then it stops issuing, waits for what is in flight
and prints one result line {"event": "result", ...}: replies in the window, errors, latency
quantiles, its own CPU time. The caller samples the server's CPU at the two window events.
Bodies are identical for every server: the BEDS envelope {"template", "op", "params"}.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import secrets
import sys
import time
from typing import Any

import aiormq
import msgspec
from aiormq.abc import DeliveredMessage
from pamqp.commands import Basic

DIRECT_REPLY_TO = "amq.rabbitmq.reply-to"
_encode = msgspec.json.encode
_decode = msgspec.json.decode


def make_body(kind: str, run: str) -> Any:
    """A function n -> request body bytes for the op under test."""
    if kind == "fetch":
        fetch = [_encode({"template": "film", "op": "fetch", "params": {"film_id": 1 + i}})
                 for i in range(30)]
        return lambda n: fetch[n % 30]
    if kind == "list":
        body = _encode({"template": "film", "op": "list", "params": {}})
        return lambda n: body
    if kind == "create":
        return lambda n: _encode({"template": "customer", "op": "create", "params": {
            "store_id": 1, "first_name": "Bench", "last_name": f"Load{n}",
            "email": f"{run}-{n}@bench.invalid"}})
    raise SystemExit(f"loadgen: unknown --body {kind!r}")


def quantile(sorted_values: list[float], q: float) -> float | None:
    if not sorted_values:
        return None
    index = min(len(sorted_values) - 1, max(0, round(q * (len(sorted_values) - 1))))
    return sorted_values[index]


def emit(record: dict[str, Any]) -> None:
    sys.stdout.write(_encode(record).decode() + "\n")
    sys.stdout.flush()


class LoadGen:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.body = make_body(args.body, f"{args.tag}-{secrets.token_hex(3)}")
        self.pending: dict[str, asyncio.Future[bytes]] = {}
        self.counter = itertools.count()
        self.measuring = False
        self.issuing = True
        self.latencies: list[float] = []
        self.errors = 0
        self.error_samples: list[str] = []
        self.sample: Any = None
        self.window_done = asyncio.Event()
        self.lost: str | None = None
        self.reconnects = 0
        self.conn: aiormq.abc.AbstractConnection | None = None
        self.channel: aiormq.abc.AbstractChannel | None = None
        self.connecting = asyncio.Lock()

    async def on_reply(self, message: DeliveredMessage) -> None:
        future = self.pending.pop(message.header.properties.correlation_id or "", None)
        if future is not None and not future.done():
            future.set_result(message.body)

    async def connect(self) -> None:
        """(Re)open the connection and the reply consumer; workers pick up the new channel."""
        async with self.connecting:
            if self.channel is not None and not self.channel.is_closed:
                return
            sep = "&" if "?" in self.args.url else "?"
            self.conn = await aiormq.connect(
                f"{self.args.url}{sep}name=bench-loadgen-{self.args.tag}")
            channel = await self.conn.channel()
            await channel.basic_consume(DIRECT_REPLY_TO, self.on_reply, no_ack=True)
            self.channel = channel

    async def reconnect(self) -> None:
        while self.issuing and self.channel is None:
            try:
                await self.connect()
            except (aiormq.AMQPError, ConnectionError, OSError):
                await asyncio.sleep(0.5)

    async def worker(self, index: int) -> None:
        loop = asyncio.get_running_loop()
        timeout = self.args.timeout
        exchange, key = self.args.exchange, self.args.key
        while self.issuing:
            n = next(self.counter)
            cid = f"{index}.{n}"
            future: asyncio.Future[bytes] = loop.create_future()
            self.pending[cid] = future
            props = Basic.Properties(reply_to=DIRECT_REPLY_TO, correlation_id=cid, message_id=cid,
                                     content_type="application/json", delivery_mode=1)
            started = time.perf_counter()
            channel = self.channel
            if channel is None:   # another worker is reconnecting
                await self.reconnect()
                continue
            try:
                await channel.basic_publish(self.body(n), exchange=exchange, routing_key=key,
                                            properties=props)
                body = await asyncio.wait_for(future, timeout)
            except TimeoutError:
                self.pending.pop(cid, None)
                self._error("timeout")
                continue
            except (aiormq.AMQPError, ConnectionError, RuntimeError) as exc:
                # Our connection was closed (e.g. `rabbitmqctl close_all_connections` by another
                # job). A cell is void (the caller measures it again); a soak reconnects.
                self.pending.pop(cid, None)
                if not self.args.reconnect:
                    self.lost = f"{type(exc).__name__}: {exc}"
                    self.window_done.set()
                    self.issuing = False
                    return
                if self.channel is channel:
                    self.reconnects += 1
                    self.channel = None
                await self.reconnect()
                continue
            elapsed = time.perf_counter() - started
            if not self.measuring:   # a reply counts when it arrives inside the window
                continue
            if body.startswith(b'{"ok":true') or body.startswith(b'{"ok": true'):
                self.latencies.append(elapsed)
                if self.sample is None:
                    self.sample = _decode(body)
                if len(self.latencies) >= self.args.max_requests:
                    self.window_done.set()
            else:
                self._error(body[:300].decode(errors="replace"))

    async def progress(self) -> None:
        while True:
            await asyncio.sleep(self.args.progress)
            emit({"event": "progress", "replies": len(self.latencies), "errors": self.errors,
                  "reconnects": self.reconnects})

    def _error(self, what: str) -> None:
        if self.measuring:
            self.errors += 1
            if len(self.error_samples) < 5:
                self.error_samples.append(what)

    async def run(self) -> dict[str, Any]:
        await self.connect()
        workers = [asyncio.create_task(self.worker(i))
                   for i in range(self.args.concurrency)]
        await asyncio.sleep(self.args.warmup)
        cpu0 = time.process_time()
        emit({"event": "window_start"})
        self.measuring = True
        started = time.perf_counter()
        progress = asyncio.create_task(self.progress()) if self.args.progress else None
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.window_done.wait(), self.args.duration)
        self.measuring = False
        if progress is not None:
            progress.cancel()
        window = time.perf_counter() - started
        cpu = time.process_time() - cpu0
        emit({"event": "window_end"})
        self.issuing = False
        await asyncio.wait(workers, timeout=self.args.timeout + 1)
        for task in workers:
            task.cancel()
        if self.conn is not None and not self.conn.is_closed:
            await self.conn.close()
        self.latencies.sort()
        count = len(self.latencies)
        return {
            "event": "result", "replies": count, "errors": self.errors,
            "error_samples": self.error_samples, "window_s": round(window, 4),
            "req_per_s": round(count / window, 1) if window else 0.0,
            "p50_ms": _ms(quantile(self.latencies, 0.50)),
            "p90_ms": _ms(quantile(self.latencies, 0.90)),
            "p99_ms": _ms(quantile(self.latencies, 0.99)),
            "max_ms": _ms(self.latencies[-1] if count else None),
            "loadgen_cpu_s": round(cpu, 3), "sample": self.sample, "connection_lost": self.lost,
            "reconnects": self.reconnects,
        }


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 3)


def main() -> None:
    parser = argparse.ArgumentParser(prog="bench.loadgen")
    parser.add_argument("--url", default="amqp://guest:guest@127.0.0.1:5672/")
    parser.add_argument("--exchange", required=True)
    parser.add_argument("--key", required=True, help="routing key, e.g. film.fetch")
    parser.add_argument("--body", required=True, choices=["fetch", "list", "create"])
    parser.add_argument("--tag", default="bench", help="prefix of unique values (emails)")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--warmup", type=float, default=1.5)
    parser.add_argument("--duration", type=float, default=8.0)
    parser.add_argument("--max-requests", type=int, default=200_000)
    parser.add_argument("--timeout", type=float, default=5.0, help="per request, seconds")
    parser.add_argument("--reconnect", action="store_true",
                        help="reconnect and go on when the connection is closed (soak)")
    parser.add_argument("--progress", type=float, default=0.0,
                        help="print a progress line every N seconds of the window (soak)")
    args = parser.parse_args()
    try:
        import uvloop
        result = uvloop.run(LoadGen(args).run())
    except ImportError:
        result = asyncio.run(LoadGen(args).run())
    emit(result)


if __name__ == "__main__":
    main()
