"""structlog set-up: JSON lines when stdout is not a TTY, readable console output when it is.

Layer: foundation. One "canonical" line per request is written by the consumer; everything else
is lifecycle events (started, reconnecting, crashed, stopped).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
from typing import Any

import msgspec
import structlog

_LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING,
           "error": logging.ERROR}


def setup_logging(level: str = "info", json: bool | None = None, **context: Any) -> None:
    """Configure structlog once per process; `context` is bound to every line (node, role)."""
    as_json = (not sys.stdout.isatty()) if json is None else json
    processors: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    if as_json:
        processors += [
            structlog.processors.format_exc_info,
            structlog.processors.JSONRenderer(serializer=_dumps),
        ]
        factory: Any = _LineLoggerFactory()
    else:
        processors.append(structlog.dev.ConsoleRenderer())
        factory = structlog.PrintLoggerFactory()
    structlog.configure(
        processors=processors,
        wrapper_class=structlog.make_filtering_bound_logger(_LEVELS[level]),
        logger_factory=factory,
        cache_logger_on_first_use=True,
    )
    structlog.contextvars.clear_contextvars()
    structlog.contextvars.bind_contextvars(**context)
    # aiormq/aiomysql use stdlib logging; keep their warnings, drop their chatter.
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    # aiormq logs every failed connect as an error with a traceback; the link reports those once
    # as `amqp.connect_failed`, so its own lines would only repeat them.
    logging.getLogger("aiormq.connection").setLevel(logging.CRITICAL)


class LineLogger:
    """JSON lines to stdout. Debug/info lines (one per request) are not flushed one by one: a
    flush per line is a system call per request, a measurable share of a request's CPU. The node
    flushes them a few times a second (`flush_every`) and at exit; warnings and errors are
    flushed at once, so what matters is never held back."""

    def info(self, message: bytes) -> None:
        # sys.stdout is looked up per line: whoever replaced or closed it since start-up (a
        # test runner's capture) must not turn a log line into a crash of the node.
        with contextlib.suppress(ValueError, OSError):
            sys.stdout.buffer.write(message + b"\n")

    debug = msg = info

    def warning(self, message: bytes) -> None:
        with contextlib.suppress(ValueError, OSError):
            sys.stdout.buffer.write(message + b"\n")
            sys.stdout.buffer.flush()

    warn = error = err = critical = exception = fatal = failure = warning


class _LineLoggerFactory:
    def __init__(self) -> None:
        self._logger = LineLogger()

    def __call__(self, *_args: Any) -> LineLogger:
        return self._logger


def flush_logs() -> None:
    with contextlib.suppress(OSError, ValueError):   # stdout closed: nothing left to say to it
        sys.stdout.flush()


async def flush_every(seconds: float) -> None:
    """Run for the life of a node: buffered request lines reach stdout within `seconds`."""
    try:
        while True:
            await asyncio.sleep(seconds)
            flush_logs()
    finally:
        flush_logs()


def _dumps(event: dict[str, Any], **_ignored: Any) -> bytes:
    # Anything msgspec does not know (an exception, a Path) is logged as its text.
    return msgspec.json.encode(event, enc_hook=str)


def get_logger(name: str) -> Any:
    return structlog.get_logger(name)
