"""structlog set-up: JSON lines when stdout is not a TTY, readable console output when it is.

Layer: foundation. One "canonical" line per request is written by the consumer; everything else
is lifecycle events (started, reconnecting, crashed, stopped).
"""

from __future__ import annotations

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
        factory: Any = structlog.BytesLoggerFactory()
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


def _dumps(event: dict[str, Any], **_ignored: Any) -> bytes:
    # Anything msgspec does not know (an exception, a Path) is logged as its text.
    return msgspec.json.encode(event, enc_hook=str)


def get_logger(name: str) -> Any:
    return structlog.get_logger(name)
