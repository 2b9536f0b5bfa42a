"""Replay dead-lettered BEDS requests: from the dead-letter queue back to where they were sent.

BEDS has no replay command; this operator script is the documented way (docs/howto/
replay-dead-letters.md) and is tested against a real RabbitMQ (tests/integration/
test_replay_dead_letters.py). It needs only aiormq, which BEDS itself depends on.

    python replay_dead_letters.py [--url URL] [--dlq beds.dead] [--only TEMPLATE.OP ...]
                                  [--reply-to QUEUE] [--keep-user-id] [--dry-run]

For each message in the queue when it starts (no more, so a request dead-lettered again during
the run is not picked up twice) it prints what it is, then either republishes it to the exchange
and routing key of its first death (`x-death`) and acks it once RabbitMQ confirmed the publish,
or leaves it in the queue (`--dry-run`, or not matched by `--only`).

Replay only requests that may run twice: reads, and writes with an `idempotency_key` (the
message id is kept, so such a write returns its stored outcome). Dropped on the way: `x-death`,
the `x-deadline` header and `expiration` (long past), `reply_to` (the caller that waited is gone;
`--reply-to` names a queue of yours for the replies) and `user_id` (RabbitMQ refuses a `user_id`
that is not the connection's user: for ops with an `allow` list connect as that user and pass
`--keep-user-id`).
"""

from __future__ import annotations

import argparse
import asyncio
import fnmatch
import json
import logging
import sys
from typing import Any

import aiormq
from pamqp.commands import Basic

_DROPPED_HEADERS = ("x-death", "x-deadline", "x-first-death-exchange", "x-first-death-queue",
                    "x-first-death-reason", "x-last-death-exchange", "x-last-death-queue",
                    "x-last-death-reason", "x-delivery-count")


def describe(body: bytes) -> str:
    """`template.op` of a request body, or why there is none."""
    try:
        request = json.loads(body)
    except ValueError:
        return "(not JSON)"
    if not isinstance(request, dict):
        return "(not a JSON object)"
    return f"{request.get('template')}.{request.get('op')}"


def first_death(headers: dict[str, Any]) -> dict[str, Any]:
    deaths = headers.get("x-death") or [{}]
    return dict(deaths[-1])   # RabbitMQ puts the most recent death first; the original is last


def replay_properties(props: Any, reply_to: str | None, keep_user_id: bool) -> Basic.Properties:
    headers = {k: v for k, v in (props.headers or {}).items() if k not in _DROPPED_HEADERS}
    return Basic.Properties(
        content_type=props.content_type or "application/json",
        delivery_mode=2,
        message_id=props.message_id,
        correlation_id=props.correlation_id,
        reply_to=reply_to,
        user_id=props.user_id if keep_user_id else None,
        headers=headers or None,
    )


async def replay(url: str, dlq: str, only: list[str], reply_to: str | None,
                 keep_user_id: bool, dry_run: bool) -> tuple[int, int]:
    """Returns (replayed, kept)."""
    connection = await aiormq.connect(url)
    try:
        channel = await connection.channel(publisher_confirms=True)
        present = (await channel.queue_declare(dlq, passive=True)).message_count or 0
        replayed, kept = 0, []
        for _ in range(present):
            message = await channel.basic_get(dlq, no_ack=False)
            if not isinstance(message.delivery, Basic.GetOk):
                break   # someone else emptied the queue meanwhile
            tag = message.delivery.delivery_tag
            assert tag is not None   # a GetOk always carries one
            props = message.header.properties
            death = first_death(props.headers or {})
            what = describe(message.body)
            exchange = str(death.get("exchange", ""))
            key = str(next(iter(death.get("routing-keys") or [""])))
            line = (f"{what} message_id={props.message_id} reason={death.get('reason')} "
                    f"queue={death.get('queue')} at={death.get('time')}")
            wanted = not only or any(fnmatch.fnmatchcase(what, pattern) for pattern in only)
            if dry_run or not wanted:
                kept.append(tag)
                print(f"kept      {line}")
                continue
            confirm = await channel.basic_publish(
                message.body, exchange=exchange, routing_key=key,
                properties=replay_properties(props, reply_to, keep_user_id))
            if not isinstance(confirm, Basic.Ack):
                kept.append(tag)
                print(f"NOT CONFIRMED, kept {line}", file=sys.stderr)
                continue
            await channel.basic_ack(tag)
            replayed += 1
            print(f"replayed  {line} -> exchange {exchange!r} key {key!r}")
        for tag in kept:   # back to the queue for a human (or a later run)
            await channel.basic_reject(tag, requeue=True)
        return replayed, len(kept)
    finally:
        await connection.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", default="amqp://guest:guest@127.0.0.1:5672/",
                        help="RabbitMQ URL (default: the local guest account)")
    parser.add_argument("--dlq", default="beds.dead", help="the dead-letter queue ([amqp] dlq)")
    parser.add_argument("--only", action="append", default=[], metavar="TEMPLATE.OP",
                        help="replay only these (glob, e.g. 'customer.*'); repeatable")
    parser.add_argument("--reply-to", help="a queue of yours that receives the replies")
    parser.add_argument("--keep-user-id", action="store_true",
                        help="keep the AMQP user_id (connect as that user)")
    parser.add_argument("--dry-run", action="store_true", help="list, change nothing")
    args = parser.parse_args(argv)
    logging.getLogger("aiormq").setLevel(logging.CRITICAL)   # our one line says it all
    try:
        replayed, kept = asyncio.run(replay(args.url, args.dlq, args.only, args.reply_to,
                                            args.keep_user_id, args.dry_run))
    except (OSError, aiormq.exceptions.AMQPError) as exc:
        print(f"replay: {exc!r}", file=sys.stderr)
        return 1
    print(f"{replayed} replayed, {kept} left in {args.dlq}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
