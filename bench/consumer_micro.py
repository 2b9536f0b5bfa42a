"""The consumer's own per-message CPU, without RabbitMQ or a database: A/B of source trees.

    python -m bench.consumer_micro --tree main=/tmp/beds-main --tree new=. [--rounds 8]
    python -m bench.consumer_micro --tree off=. --tree on=.,traced --traceparent

Each round runs, per tree and in rotated order, a fresh process that imports BEDS from that tree
and pushes `--messages` requests through `Consumer._handle` with an in-memory channel, publisher
and dispatcher (the database and AMQP work are what bench.ab measures; this isolates the Python
that a hot-path change touches: decode, metrics, the request log line, settle). A tree on
beds.amqp gets its own tests/support/amqp_memory.py channel; an older one, on aiormq, a no-op
channel and pamqp messages. The request log
line is on (as shipped) and rendered as JSON to /dev/null; each request carries `x-deadline`,
and with --traceparent a W3C `traceparent` header as a traced caller's would. Prints
microseconds of CPU per message per round and the ratio of each tree to the first. A tree marked
`,traced` runs beds.brokers.traced.TracedConsumer with an SDK TracerProvider whose batch
processor hands the spans to an exporter that drops them (the export's own network cost is not
counted; its thread's CPU is).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

CHILD = r"""
import asyncio, json, os, sys, time
from types import SimpleNamespace
from beds.log import setup_logging
setup_logging("info", json=True)
from beds.brokers.consumer import Consumer, Shared
from beds.config import BrokerSettings, OpKind, QueueType
from beds.ops.metrics import NodeMetrics
from beds.protocol import Result, encode_request

class Dispatcher:
    routes = {("film", "fetch"): SimpleNamespace(
        adapter=None, template=SimpleNamespace(name="film", datasource="main"),
        op=SimpleNamespace(name="fetch", object_name="film_fetch", target="procedure"))}
    async def dispatch(self, request, broker, deadline, user_id, message_id, *read_after):
        return None, Result(rows=[{"film_id": 1, "title": "ACADEMY DINOSAUR", "rate": "0.99"}])

class Publisher:
    async def publish(self, reply_to, body, correlation_id):
        return None

class Channel:
    async def basic_ack(self, tag):
        return None

async def main(n, traceparent, traced):
    broker = BrokerSettings(name="rBroker", queue="q", kinds=(OpKind.READ,), templates=("*",),
                            instances=1, prefetch=16, queue_type=QueueType.QUORUM, retries=3)
    metrics = NodeMetrics("bench")
    shared = Shared(node="bench", dispatcher=Dispatcher(), link=None, publisher=Publisher(),
                    max_message_bytes=1 << 20, max_reply_bytes=1 << 24, log_requests=True,
                    grace_seconds=1, metrics=metrics)
    consumer = Consumer(broker, 1, shared)
    if traced:
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult
        from beds.brokers.traced import TracedConsumer
        class Drop(SpanExporter):
            def export(self, spans):
                return SpanExportResult.SUCCESS
        provider = TracerProvider()
        provider.add_span_processor(BatchSpanProcessor(Drop()))
        consumer = TracedConsumer(broker, 1, shared, provider.get_tracer("bench"),
                                  {"main": "mariadb"})
    body = encode_request("film", "fetch", {"film_id": 1})
    headers = {"x-deadline": int((time.time() + 60) * 1000)}
    if traceparent:
        headers["traceparent"] = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    try:
        from tests.support.amqp_memory import MemoryChannel, delivery
    except ImportError:   # a tree before beds.amqp: aiormq's message shape
        from pamqp.commands import Basic
        channel = Channel()
        def message(i):
            props = Basic.Properties(correlation_id=f"c{i}", message_id=f"c{i}",
                                     reply_to="amq.rabbitmq.reply-to.x", headers=headers)
            return SimpleNamespace(header=SimpleNamespace(properties=props), channel=channel,
                                   delivery=Basic.Deliver(delivery_tag=i + 1,
                                                          routing_key="film.fetch",
                                                          exchange="beds"), body=body)
    else:
        channel = MemoryChannel()
        def message(i):
            return delivery(channel, body, i + 1, headers=headers, routing_key="film.fetch",
                            correlation_id=f"c{i}", message_id=f"c{i}",
                            reply_to="amq.rabbitmq.reply-to.x")
    messages = [message(i) for i in range(n)]
    for m in messages[:2000]:          # warm-up
        await consumer._handle(m)
    start = time.process_time()
    for m in messages:
        await consumer._handle(m)
    return (time.process_time() - start) / n * 1e6

sys.stdout = open(os.devnull, "w")     # the request lines
us = asyncio.run(main(int(sys.argv[1]), sys.argv[2] == "1", sys.argv[3] == "1"))
sys.stdout = sys.__stdout__
print(json.dumps({"us_per_message": us}))
"""


def run_one(tree: Path, messages: int, traceparent: bool, traced: bool) -> float:
    argv = [sys.executable, "-c", CHILD, str(messages), str(int(traceparent)), str(int(traced))]
    out = subprocess.run(argv, cwd=tree,  # noqa: S603 - our own interpreter and script
                         env={**os.environ, "PYTHONPATH": str(tree)}, capture_output=True,
                         text=True, check=True)
    return float(json.loads(out.stdout.strip().splitlines()[-1])["us_per_message"])


def main() -> int:
    parser = argparse.ArgumentParser(prog="bench.consumer_micro", description=__doc__.split("\n")[0])
    parser.add_argument("--tree", action="append", required=True,
                        help="NAME=SOURCE_TREE[,traced]; first = base")
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--messages", type=int, default=30_000)
    parser.add_argument("--traceparent", action="store_true",
                        help="every request carries a W3C traceparent header")
    args = parser.parse_args()
    specs = [(name, *spec.split(",")) for name, _, spec in (t.partition("=") for t in args.tree)]
    trees = [(name, Path(path).resolve()) for name, path, *_ in specs]
    traced = {name for name, _path, *options in specs if "traced" in options}
    results: dict[str, list[float]] = {name: [] for name, _ in trees}
    for rnd in range(args.rounds):
        order = trees[rnd % len(trees):] + trees[:rnd % len(trees)]
        for name, tree in order:
            results[name].append(run_one(tree, args.messages, args.traceparent,
                                         name in traced))
        print(f"  r{rnd + 1} " + "  ".join(f"{n} {results[n][-1]:.2f} us" for n, _ in trees),
              file=sys.stderr)
    base = trees[0][0]
    header = "with" if args.traceparent else "without"
    print(f"\nconsumer._handle, {args.messages} messages x {args.rounds} rounds, {header} "
          f"traceparent, CPU us/message; ratios against {base}")
    print("| tree | median us/msg | min | max | ratio to base per round (median) |")
    print("|---|---:|---:|---:|---|")
    for name, _ in trees:
        ratios = [round(a / b, 3) for a, b in zip(results[name], results[base], strict=True)]
        print(f"| {name} | {statistics.median(results[name]):.2f} | {min(results[name]):.2f} | "
              f"{max(results[name]):.2f} | {statistics.median(ratios):.3f} {ratios} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
