"""structlog set-up: JSON lines when stdout is not a TTY, readable console output when it is.

Layer: foundation. One "canonical" line per request is written by the consumer; everything else
is lifecycle events (started, reconnecting, crashed, stopped).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
from collections.abc import Callable
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
    processors.insert(len(processors) - 1, ship_tap)   # sees the finished line, before rendering
    structlog.configure(
        processors=processors,
        wrapper_class=structlog.make_filtering_bound_logger(_LEVELS[level]),
        logger_factory=factory,
        cache_logger_on_first_use=True,
    )
    structlog.contextvars.clear_contextvars()
    structlog.contextvars.bind_contextvars(**context)
    # Drivers (asyncpg, motor, aioboto3) use stdlib logging; keep their warnings, drop their chatter.
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)


class LineLogger:
    """JSON lines to stdout, one instance per logger name (the log tap reads `name`).

    Debug/info lines (one per request) are not flushed one by one: a flush per line is a system
    call per request, a measurable share of a request's CPU. The node flushes them a few times a
    second (`flush_every`) and at exit; warnings and errors are flushed at once, so what matters
    is never held back."""

    def __init__(self, name: str = "") -> None:
        self.name = name

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
        self._loggers: dict[str, LineLogger] = {}

    def __call__(self, *args: Any) -> LineLogger:
        name = args[0] if args and isinstance(args[0], str) else ""
        logger = self._loggers.get(name)
        if logger is None:
            logger = self._loggers[name] = LineLogger(name)
        return logger


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


# -- the log tap: warning-and-above lines for the operations plane (beds.ops.logship) -----------

TapSink = Callable[[Any, dict[str, Any]], None]
_tap_levels: frozenset[str] = frozenset()
_tap_sink: TapSink | None = None


def ship_tap(logger: Any, _method: str, event_dict: dict[str, Any]) -> dict[str, Any]:
    """Processor: hands lines at a tapped level to the sink, then passes them on unchanged.

    On the request hot path (info lines) this is one dict lookup and one set test. The sink must
    copy what it keeps and return at once; whatever it raises is swallowed, so shipping can never
    make a log call fail."""
    if event_dict.get("level") in _tap_levels:
        sink = _tap_sink
        if sink is not None:
            with contextlib.suppress(Exception):
                sink(logger, event_dict)
    return event_dict


def set_tap(levels: frozenset[str], sink: TapSink | None) -> None:
    """Tap lines of `levels` into `sink` (None: tap nothing). Puts `ship_tap` into the current
    processor chain (before its renderer) when it is not there: a process that never called
    `setup_logging` (a test running nodes in-process) still ships."""
    global _tap_levels, _tap_sink
    _tap_sink = sink
    _tap_levels = levels if sink is not None else frozenset()
    if sink is None:
        return
    # get_config() hands out the live list, which cached loggers share: insert in place.
    processors = structlog.get_config()["processors"]
    if ship_tap not in processors:
        processors.insert(max(len(processors) - 1, 0), ship_tap)
