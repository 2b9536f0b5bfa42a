"""The exceptions of beds.amqp, one tree under AMQPError.

Layer: infrastructure.

    AMQPError
      ConnectionClosed (also ConnectionError)   the server closed the connection: reply_code/text
        AuthenticationError                     refused credentials
      ConnectionLost (also ConnectionError)     the socket died, heartbeats missed
        FrameError                              the server sent a frame this client cannot accept
      ChannelClosed                             the server closed the channel: reply_code/text,
        AccessRefused 403, NotFound 404,        class_id/method_id of the refused method
        ResourceLocked 405, PreconditionFailed 406
      PublishNacked                             a confirmed publish was nacked
      PublishReturned                           a mandatory publish was returned unroutable
"""

from __future__ import annotations

import asyncio


class AMQPError(Exception):
    """Anything beds.amqp raises about the broker or the protocol."""


class ConnectionClosed(AMQPError, ConnectionError):
    """The server closed the connection (connection.close) with reply_code/reply_text."""

    def __init__(self, reply_code: int, reply_text: str) -> None:
        # One argument only: OSError given two would read them as (errno, strerror).
        super().__init__(f"{reply_text} ({reply_code})")
        self.reply_code = reply_code
        self.reply_text = reply_text


class AuthenticationError(ConnectionClosed):
    """The server refused the user or password."""


class ConnectionLost(AMQPError, ConnectionError):
    """The connection died without the server closing it: socket error, missed heartbeats."""


class FrameError(ConnectionLost):
    """The server sent a malformed or unexpected frame; the connection was closed."""


class ChannelClosed(AMQPError):
    """The channel is closed; when the server closed it, its reason. str() is the server's text,
    e.g. "NOT_FOUND - no queue 'x' in vhost '/'"."""

    def __init__(self, reply_code: int, reply_text: str, class_id: int = 0,
                 method_id: int = 0) -> None:
        super().__init__(reply_text)
        self.reply_code = reply_code
        self.reply_text = reply_text
        self.class_id = class_id
        self.method_id = method_id


class AccessRefused(ChannelClosed):
    """403 ACCESS_REFUSED."""


class NotFound(ChannelClosed):
    """404 NOT_FOUND: a queue or exchange that does not exist."""


class ResourceLocked(ChannelClosed):
    """405 RESOURCE_LOCKED: an exclusive queue of another connection."""


class PreconditionFailed(ChannelClosed):
    """406 PRECONDITION_FAILED: e.g. a queue redeclared with other arguments."""


_BY_CODE: dict[int, type[ChannelClosed]] = {403: AccessRefused, 404: NotFound,
                                            405: ResourceLocked, 406: PreconditionFailed}


def channel_error(reply_code: int, reply_text: str, class_id: int = 0,
                  method_id: int = 0) -> ChannelClosed:
    """The ChannelClosed subclass for a server's channel.close."""
    return _BY_CODE.get(reply_code, ChannelClosed)(reply_code, reply_text, class_id, method_id)


class PublishNacked(AMQPError):
    """The broker nacked a confirmed publish (it could not take responsibility for it)."""


class PublishReturned(AMQPError):
    """A mandatory publish could not be routed; RabbitMQ returned it."""

    def __init__(self, reply_code: int, reply_text: str, exchange: str,
                 routing_key: str) -> None:
        super().__init__(f"{reply_text} ({reply_code}): exchange {exchange!r}, "
                         f"routing key {routing_key!r}")
        self.reply_code = reply_code
        self.reply_text = reply_text
        self.exchange = exchange
        self.routing_key = routing_key


def finish(future: asyncio.Future[None], exc: BaseException | None) -> None:
    """Complete `future` (closing, opened) once: with `exc`, marked retrieved so that a future
    nobody awaits never logs "exception was never retrieved", or with None for a close we asked
    for."""
    if future.done():
        return
    if exc is None:
        future.set_result(None)
    else:
        future.set_exception(exc)
        future.exception()
