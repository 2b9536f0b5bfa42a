"""Brokers: supervised asyncio consumers on RabbitMQ queues.

link (one AMQP connection, re-opened on demand), topology (exchanges, queues, bindings, DLX),
consumer (one message: decode -> dispatch -> reply -> ack), pool (supervision and restarts).

Layer: infrastructure (link, topology, limits) and application (consumer, pool, retry).
"""
