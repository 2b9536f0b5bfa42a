"""Peer (d): what people write by hand. aio-pika consumer + aiomysql pool, stdlib json.

One channel with prefetch, a callback per message, `message.process()` (ack after the block),
the row fetched with CALL film_fetch(%s), the reply published to reply_to on the default exchange
(publisher confirms on, aio-pika's default), then acked. No per-request logging.

`--queue-type classic --no-confirms` is the lighter set-up many users run (`make bench` runs it as
`aiopika-classic`): a classic queue and replies published without waiting for a confirm. The code
is otherwise the same, so the two rows price the queue semantics, not the code.
"""

from __future__ import annotations

import asyncio
import json
import signal

import aio_pika
import aiomysql
from aio_pika.abc import AbstractIncomingMessage

from bench.peers.common import parse_args, pool_kwargs, run


async def main() -> None:
    args = parse_args("bench.peers.aiopika_server")
    pool = await aiomysql.create_pool(**pool_kwargs(args))
    connection = await aio_pika.connect_robust(args.url)
    channel = await connection.channel(publisher_confirms=not args.no_confirms)
    await channel.set_qos(prefetch_count=args.prefetch)
    exchange = await channel.declare_exchange(args.exchange, aio_pika.ExchangeType.TOPIC,
                                              durable=True)
    queue = await channel.declare_queue(args.queue, durable=True,
                                        arguments={"x-queue-type": args.queue_type})
    await queue.bind(exchange, routing_key="film.fetch")

    async def on_message(message: AbstractIncomingMessage) -> None:
        async with message.process(requeue=False):
            try:
                request = json.loads(message.body)
                film_id = int(request["params"]["film_id"])
                async with pool.acquire() as conn, conn.cursor(aiomysql.DictCursor) as cur:
                    await cur.execute("CALL film_fetch(%s)", (film_id,))
                    rows = await cur.fetchall()
                reply = {"ok": True, "data": rows}
            except (ValueError, KeyError, TypeError) as exc:
                reply = {"ok": False, "error": {"code": "BAD_REQUEST", "message": str(exc)}}
            if message.reply_to:
                await channel.default_exchange.publish(
                    aio_pika.Message(json.dumps(reply, default=str).encode(),
                                     correlation_id=message.correlation_id,
                                     content_type="application/json"),
                    routing_key=message.reply_to)

    await queue.consume(on_message)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    print("aiopika_server.ready", flush=True)
    await stop.wait()
    await connection.close()
    pool.close()
    await pool.wait_closed()


if __name__ == "__main__":
    run(main())
