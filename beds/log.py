"""structlog set-up: JSON lines when stdout is not a TTY, readable console output when it is.

Layer: foundation. One "canonical" line per request is written by the consumer; everything else
is lifecycle events (started, reconnecting, crashed, stopped). The request line goes through
`log_line`, which writes the bytes structlog's JSON chain would write, for a third of its CPU.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import datetime
import logging
import sys
import time
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
    wrapper = structlog.make_filtering_bound_logger(_LEVELS[level])
    structlog.configure(
        processors=processors,
        wrapper_class=wrapper,
        logger_factory=factory,
        cache_logger_on_first_use=True,
    )
    global _json_chain
    _json_chain = _JsonChain(processors, wrapper, _LEVELS[level]) if as_json else None
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
        # test runner's capture) must not turn a log line into a crash of the node. try/except,
        # not contextlib.suppress: once per request, and suppress() costs 0.4 us more a line.
        try:  # noqa: SIM105
            sys.stdout.buffer.write(message + b"\n")
        except (ValueError, OSError):
            pass

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


# -- the request line's fast path ---------------------------------------------------------------
# One line per request: structlog's way (bound-logger proxy, kwargs, six processor calls, a
# datetime per line) was about 10 % of a node's CPU. `log_line` builds the same event dict in the
# same key order and renders it with the same serializer, byte for byte, but only while the
# logger would run exactly the JSON chain setup_logging configured; otherwise (console output,
# capture_logs in a test, structlog configured again) it hands the line to structlog.

_DIGITS3 = tuple(f"{i:03d}" for i in range(1000))


class _IsoClock:
    """TimeStamper(fmt="iso", utc=True)'s text, `datetime.now(utc).isoformat()` with "Z" for
    "+00:00", from time.time_ns(): the same clock, floored to microseconds as datetime.now does,
    and like isoformat() without a fraction when the microsecond is 0. The date and time of day
    are formatted once per second; the microseconds come from a table of 3-digit strings."""

    def __init__(self) -> None:
        self._start = self._end = 0          # the second [start, end) that `_prefix` shows
        self._prefix = ""                    # "2026-12-07T12:13:31."

    def __call__(self, ns: int | None = None) -> str:
        if ns is None:
            ns = time.time_ns()
        if not self._start <= ns < self._end:
            self._start = ns - ns % 1_000_000_000
            self._end = self._start + 1_000_000_000
            moment = datetime.datetime.fromtimestamp(self._start // 1_000_000_000,
                                                     tz=datetime.UTC)
            self._prefix = moment.replace(tzinfo=None).isoformat() + "."
        micro = (ns - self._start) // 1000
        if micro:
            return self._prefix + _DIGITS3[micro // 1000] + _DIGITS3[micro % 1000] + "Z"
        return self._prefix[:-1] + "Z"


_PREFIX = structlog.contextvars.STRUCTLOG_KEY_PREFIX
_context_keys: dict[contextvars.ContextVar[Any], str | None] = {}


def _merge_contextvars(line: dict[str, Any]) -> None:
    """structlog.contextvars.merge_contextvars: the same loop over the same context, in its
    order, with setdefault; each variable's key (None: not structlog's) is looked up instead of
    tested and sliced from its name on every line."""
    keys = _context_keys
    for var, value in contextvars.copy_context().items():
        try:
            key = keys[var]
        except KeyError:
            if len(keys) > 4096:   # variables made per task would otherwise pile up here
                keys.clear()
            name = var.name
            key = keys[var] = name[len(_PREFIX):] if name.startswith(_PREFIX) else None
        if key is not None and value is not Ellipsis:
            line.setdefault(key, value)


class _JsonChain:
    """What setup_logging configured for JSON lines, to recognise it in a bound logger."""

    def __init__(self, processors: list[Any], wrapper: Any, min_level: int) -> None:
        self.processors = list(processors)   # a copy: the live list may be changed in place
        self.wrapper: Any = wrapper
        self.min_level = min_level
        self.stamp = _IsoClock()
        self.enabled = True


_json_chain: _JsonChain | None = None


def use_fast_lines(enabled: bool) -> None:
    """Switch log_line's fast path off (or back on): bench.logline_micro compares the two."""
    if _json_chain is not None:
        _json_chain.enabled = enabled


def log_line(logger: Any, method: str, event: str, fields: dict[str, Any]) -> None:
    """`getattr(logger, method)(event, **fields)`, the same line for less CPU. `fields` is
    the caller's own new dict: the line's event dict is built in it."""
    chain = _json_chain
    if chain is not None and chain.enabled:
        # The logger structlog would use (cached after its first use, so this is cheap).
        bound: Any = logger.bind()
        if (type(bound) is chain.wrapper and bound._processors == chain.processors
                and type(bound._logger) is LineLogger):
            if _LEVELS[method] < chain.min_level:
                return                            # the filtering logger's no-op method
            # The event dict as BoundLoggerBase._process_event and the chain build it: context,
            # then the call's keywords, "event", merge_contextvars (setdefault: a key already
            # there keeps its place), level, timestamp; ship_tap sees it before rendering.
            context = bound._context
            line: Any = {**context, **fields} if context else fields
            line["event"] = event
            target = bound._logger
            _merge_contextvars(line)
            line["level"] = method
            line["timestamp"] = chain.stamp()
            if "exc_info" in line:
                line = structlog.processors.format_exc_info(target, method, line)
            ship_tap(target, method, line)
            getattr(target, method)(_dumps(line))
            return
    getattr(logger, method)(event, **fields)


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
