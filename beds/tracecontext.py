"""W3C Trace Context in AMQP headers, without OpenTelemetry: read a caller's `traceparent` for
the request log line, and (when OpenTelemetry is installed) write the current one on a request.

Layer: foundation. Pure except `inject_context`, which asks OpenTelemetry's global propagator (the
`otel` extra) for the caller's current context and is a no-op without it. The node's spans are
beds.brokers.traced's business; this module only knows the header format
(https://www.w3.org/TR/trace-context/#traceparent-header).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

# version "-" trace-id "-" parent-id "-" trace-flags, lower-case hex; a later version may append
# fields after another "-", version 00 may not.
TRACEPARENT_PATTERN = r"^[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}(-.*)?$"
"""The header's shape, for schemas (AsyncAPI); parse_traceparent also refuses zero ids."""
_TRACEPARENT = re.compile(r"([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?",
                          re.DOTALL)
_VERSION_00 = re.compile(r"00-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}")
_ZERO_TRACE = "0" * 32
_ZERO_SPAN = "0" * 16
MAX_TRACEPARENT = 512
"""A longer header is not looked at (a future version's extra fields have no use here)."""
NO_TRACE: Mapping[str, str] = {}


@dataclass(frozen=True, slots=True)
class TraceParent:
    trace_id: str     # 32 lower-case hex digits, not all zero
    parent_id: str    # 16 lower-case hex digits: the caller's span
    flags: int

    @property
    def sampled(self) -> bool:
        return bool(self.flags & 0x01)


def parse_traceparent(value: Any) -> TraceParent | None:
    """The header's fields, or None when it is absent or malformed (a malformed traceparent is
    ignored, as the W3C recommendation says: the request is handled as if it had none)."""
    ids = _ids(value)
    return None if ids is None else TraceParent(*ids)


def trace_fields(headers: Mapping[str, Any] | None) -> Mapping[str, str]:
    """`trace_id` and `span_id` (the caller's span) for a log line; empty without a valid
    traceparent header. On the request path: no object is built but the returned dict."""
    if not headers:
        return NO_TRACE
    raw = headers.get("traceparent")
    if raw is None:
        return NO_TRACE
    ids = _ids(raw)
    if ids is None:
        return NO_TRACE
    return {"trace_id": ids[0], "span_id": ids[1]}


def _ids(value: Any) -> tuple[str, str, int] | None:
    if isinstance(value, bytes | bytearray):
        if len(value) > MAX_TRACEPARENT:
            return None
        try:
            value = value.decode("ascii")
        except UnicodeDecodeError:
            return None
    if not isinstance(value, str):
        return None
    if len(value) == 55 and _VERSION_00.fullmatch(value):   # what every caller sends today
        trace_id, parent_id, flags = value[3:35], value[36:52], value[53:55]
    else:
        if len(value) > MAX_TRACEPARENT:
            return None
        match = _TRACEPARENT.fullmatch(value)
        if match is None:
            return None
        version, trace_id, parent_id, flags, rest = match.groups()
        if version == "ff" or (version == "00" and rest is not None):
            return None
    if trace_id == _ZERO_TRACE or parent_id == _ZERO_SPAN:
        return None
    return trace_id, parent_id, int(flags, 16)


_UNSET: Any = object()
_inject: Any = _UNSET


def inject_context(headers: dict[str, Any]) -> None:
    """Write the current OpenTelemetry context (`traceparent`, `tracestate`, and whatever else
    OTEL_PROPAGATORS names) into AMQP `headers`. Nothing without the `otel` extra, and nothing
    outside a span."""
    global _inject
    if _inject is _UNSET:
        _inject = _load_inject()
    if _inject is not None:
        _inject(headers)


def _load_inject() -> Callable[[dict[str, Any]], None] | None:
    try:
        from opentelemetry import propagate
    except ImportError:
        return None
    return propagate.inject
