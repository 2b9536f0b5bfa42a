"""Peer (e): a FastStream RabbitMQ subscriber + aiomysql pool, the framework's idiomatic shape.

A pydantic model for the request, the handler returns the reply and FastStream publishes it to
reply_to (its RPC support) and acks. FastStream's default logging (a line per message) is kept,
as BEDS keeps its canonical line per request.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import aiomysql
from faststream import FastStream
from faststream.rabbit import (
    Channel,
    ExchangeType,
    QueueType,
    RabbitBroker,
    RabbitExchange,
    RabbitQueue,
)
from pydantic import BaseModel, Field

from bench.peers.common import parse_args, pool_kwargs, run


class FetchParams(BaseModel):
    film_id: int = Field(ge=1)


class FetchRequest(BaseModel):
    template: str
    op: str
    params: FetchParams


def _jsonable(row: dict[str, Any]) -> dict[str, Any]:
    return {k: str(v) if isinstance(v, Decimal) else v for k, v in row.items()}


def build() -> FastStream:
    args = parse_args("bench.peers.faststream_server")
    broker = RabbitBroker(args.url)
    app = FastStream(broker)
    state: dict[str, Any] = {}
    queue_type = QueueType.QUORUM if args.queue_type == "quorum" else QueueType.CLASSIC
    queue = RabbitQueue(args.queue, queue_type=queue_type, durable=True,  # type: ignore[call-overload]
                        routing_key="film.fetch")
    exchange = RabbitExchange(args.exchange, type=ExchangeType.TOPIC, durable=True)

    @app.on_startup
    async def open_pool() -> None:
        state["pool"] = await aiomysql.create_pool(**pool_kwargs(args))

    @app.after_startup
    async def ready() -> None:
        print("faststream_server.ready", flush=True)

    @app.after_shutdown
    async def close_pool() -> None:
        state["pool"].close()
        await state["pool"].wait_closed()

    @broker.subscriber(queue, exchange, channel=Channel(prefetch_count=args.prefetch))
    async def film_fetch(request: FetchRequest) -> dict[str, Any]:
        async with state["pool"].acquire() as conn, conn.cursor(aiomysql.DictCursor) as cur:
            await cur.execute("CALL film_fetch(%s)", (request.params.film_id,))
            rows = await cur.fetchall()
        return {"ok": True, "data": [_jsonable(r) for r in rows]}

    return app


if __name__ == "__main__":
    run(build().run())
