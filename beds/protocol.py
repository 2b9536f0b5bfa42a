"""Wire protocol v1: the request/reply envelope. Decode, validate, encode.

Layer: foundation. Pure: no I/O. The README's "Protocol" section is the contract; this module is its
implementation.

Request body:  {"template": "film", "op": "list", "params": {...}, "limit": 50, "offset": 0}
Reply, ok:     {"ok": true, "data": [...], "out": {...}, "sets": [[...], ...], "meta": {...}}
Reply, error:  {"ok": false, "error": {"code": ..., "message": ..., "retryable": ...}, "meta": {...}}
"""

from __future__ import annotations

import base64
import math
from dataclasses import dataclass
from typing import Any, NoReturn, TypeGuard

import msgspec

from beds.errors import BadRequest, RequestError, TooLarge
from beds.table import IDENT_RE, describe

_REQUEST_KEYS = frozenset({"template", "op", "params", "limit", "offset", "cursor"})
_EXPECTED_KEYS = "template, op, params, limit, offset, cursor"
MAX_CURSOR = 4096
MAX_NAME = 64   # template and op names: IDENT_RE, as templates declare them
MAX_DEPTH = 32
"""Deeper JSON is refused: nothing a template declares needs it, and it costs recursion."""
MAX_OFFSET = 100_000
"""A deeper page makes the database read and drop every row before it: page with filters (or a
cursor, where the engine has one) instead. Duplicate JSON keys are not refused: msgspec has no
option for it, and the last one wins, as in most JSON parsers."""


@dataclass(slots=True)
class Request:
    template: str
    op: str
    params: dict[str, Any]
    limit: int | None = None
    offset: int | None = None
    cursor: str | None = None       # an engine's continuation token (DynamoDB), opaque


@dataclass(slots=True)
class Result:
    """What an adapter returns for one op."""

    rows: list[dict[str, Any]]
    out: dict[str, Any] | None = None
    sets: list[list[dict[str, Any]]] | None = None
    next_cursor: str | None = None  # engines that page by cursor: where the next page starts
    position: str | None = None     # a write on a datasource with replicas: its GTID / LSN
    served_by: str | None = None    # a read on a datasource with replicas: "primary"/"replica N"
    lag_seconds: float | None = None   # ... and, from a replica, how far behind it was


_decoder = msgspec.json.Decoder()


def _enc_hook(value: Any) -> Any:
    # Types msgspec does not know natively (driver-specific) fall back to their text.
    if isinstance(value, bytes | bytearray | memoryview):
        return base64.b64encode(bytes(value)).decode()
    return str(value)


# Decimal -> exact string; datetime/date/time -> ISO 8601; bytes -> base64; None -> null.
_encoder = msgspec.json.Encoder(enc_hook=_enc_hook, decimal_format="string")
encode = _encoder.encode


def decode_request(body: bytes, max_bytes: int) -> Request:
    """Parse and check the envelope. Raises BadRequest / TooLarge with the field at fault."""
    if len(body) > max_bytes:
        raise TooLarge(f"body: {len(body)} bytes exceeds the limit of {max_bytes} bytes",
                       limit=max_bytes)
    try:
        data = _decoder.decode(body)
    except (msgspec.DecodeError, UnicodeDecodeError) as exc:
        # msgspec's wording of bad UTF-8 changes between releases (and so does the exception it
        # raises); our message must not, so the error path checks the encoding itself.
        raise BadRequest(_undecodable(body, exc)) from None
    except RecursionError:   # msgspec's own limit (~1,000 levels) comes before ours
        raise BadRequest(f"body: nested deeper than {MAX_DEPTH} levels") from None
    if not isinstance(data, dict):
        raise BadRequest(f"body: expected a JSON object, got {type(data).__name__}")
    if not _REQUEST_KEYS.issuperset(data):
        unknown = next(k for k in data if k not in _REQUEST_KEYS)
        raise BadRequest(f"{unknown}: unknown key; expected only: {_EXPECTED_KEYS}")
    template, op = data.get("template"), data.get("op")
    if not _plain_name(template):
        _refuse_name(data, "template")
    if not _plain_name(op):
        _refuse_name(data, "op")
    params = data.get("params", {})
    if params is None:
        params = {}
    if not isinstance(params, dict):
        raise BadRequest(f"params: expected a JSON object, got {describe(params)}")
    _check_depth(params, "params", 1)
    cursor = data.get("cursor")
    if cursor is not None and (not isinstance(cursor, str) or not 0 < len(cursor) <= MAX_CURSOR):
        raise BadRequest(f"cursor: expected the next_cursor of a previous reply, got "
                         f"{describe(cursor)}")
    return Request(template, op, params, _page(data, "limit", 1),
                   _page(data, "offset", 0, MAX_OFFSET), cursor)


def _undecodable(body: bytes, exc: Exception) -> str:
    try:
        body.decode("utf-8")
    except UnicodeDecodeError as bad:
        return f"body: not valid UTF-8 at byte {bad.start}"
    return f"body: not valid JSON ({exc})"


def _plain_name(value: Any) -> TypeGuard[str]:
    """IDENT_RE without a regex per message: for ASCII text, isidentifier() is the same pattern."""
    return (isinstance(value, str) and value.isascii() and value.isidentifier()
            and len(value) <= MAX_NAME)


def _refuse_name(data: dict[str, Any], key: str) -> NoReturn:
    """A template or op name that no template could declare. Names become log fields, a reply's
    meta and (when served) metric labels: only short, plain ones get that far."""
    value = data.get(key)
    if not isinstance(value, str) or not value:
        raise BadRequest(f"{key}: expected a non-empty string, got {_got(data, key)}")
    raise BadRequest(f"{key}: expected a name matching {IDENT_RE.pattern} (letters, digits, "
                     f"underscore; at most {MAX_NAME}), got {describe(value)} ({len(value)} chars)")


def _got(data: dict[str, Any], key: str) -> str:
    return "nothing (key missing)" if key not in data else describe(data[key])


def _page(data: dict[str, Any], key: str, minimum: int, maximum: int | None = None) -> int | None:
    value = data.get(key)
    if value is None:
        return None
    if type(value) is not int or value < minimum or (maximum is not None and value > maximum):
        expected = f"between {minimum} and {maximum}" if maximum is not None else f">= {minimum}"
        raise BadRequest(f"{key}: expected int {expected}, got {describe(value)}")
    return value


def _check_depth(value: Any, path: str, depth: int) -> None:
    if depth > MAX_DEPTH:
        raise BadRequest(f"{path}: nested deeper than {MAX_DEPTH} levels")
    if isinstance(value, dict):
        for key, sub in value.items():
            if isinstance(sub, dict | list):
                _check_depth(sub, f"{path}.{key}", depth + 1)
    elif isinstance(value, list):
        for index, sub in enumerate(value):
            if isinstance(sub, dict | list):
                _check_depth(sub, f"{path}[{index}]", depth + 1)


def deadline_of(headers: dict[str, Any] | None) -> float | None:
    """The caller's absolute deadline from the `x-deadline` header (epoch milliseconds)."""
    if not headers or "x-deadline" not in headers:
        return None
    value = headers["x-deadline"]
    if isinstance(value, bytes):
        value = value.decode(errors="replace")
    try:
        deadline = float(value) / 1000.0
    except (TypeError, ValueError, OverflowError):
        deadline = math.nan
    if not math.isfinite(deadline):   # NaN would disable every deadline check downstream
        raise BadRequest(f"x-deadline: expected epoch milliseconds, got {describe(value)}")
    return deadline


def read_after_of(headers: dict[str, Any] | None) -> str | None:
    """The `x-read-after` header: a write's `meta.position` (a MariaDB GTID list such as
    "0-1-42", or a PostgreSQL LSN such as "0/3000148"); checked by the datasource's engine."""
    if not headers or "x-read-after" not in headers:
        return None
    value = headers["x-read-after"]
    if isinstance(value, bytes):
        value = value.decode(errors="replace")
    if not isinstance(value, str) or not value or len(value) > 200:
        raise BadRequest("x-read-after: expected the meta.position of a write reply "
                         f"(a GTID such as '0-1-42' or an LSN such as '0/3000148'), "
                         f"got {describe(value)}")
    return value


def newer_position(old: str | None, new: str) -> str:
    """The newer of two write positions of one datasource: MariaDB GTID lists compare domain
    by domain (merged), PostgreSQL LSNs as numbers; anything else: the one that came last."""
    if old is None or old == new:
        return new
    if "/" in old and "/" in new:
        try:
            return max(old, new, key=lambda p: tuple(int(x, 16) for x in p.split("/")))
        except ValueError:
            return new
    try:
        merged: dict[str, tuple[int, str]] = {}
        for part in f"{old},{new}".split(","):
            domain, _server, seq = part.split("-")
            if domain not in merged or int(seq) > merged[domain][0]:
                merged[domain] = (int(seq), part)
        return ",".join(part for _seq, part in merged.values())
    except ValueError:
        return new


def encode_ok(result: Result, meta: dict[str, Any]) -> bytes:
    if result.position is not None:
        meta["position"] = result.position
    if result.served_by is not None:
        meta["served_by"] = result.served_by
        if result.lag_seconds is not None:
            meta["replica_lag_s"] = round(result.lag_seconds, 3)
    reply: dict[str, Any] = {"ok": True, "data": result.rows}
    if result.out is not None:
        reply["out"] = result.out
    if result.sets is not None:
        reply["sets"] = result.sets
    if result.next_cursor is not None:
        reply["next_cursor"] = result.next_cursor
    reply["meta"] = meta
    return encode(reply)


def encode_error(error: RequestError, meta: dict[str, Any]) -> bytes:
    return encode({"ok": False, "error": error.to_wire(), "meta": meta})


def encode_request(template: str, op: str, params: dict[str, Any] | None = None,
                   limit: int | None = None, offset: int | None = None,
                   cursor: str | None = None) -> bytes:
    """Client side: the request body."""
    body: dict[str, Any] = {"template": template, "op": op, "params": params or {}}
    if limit is not None:
        body["limit"] = limit
    if offset is not None:
        body["offset"] = offset
    if cursor is not None:
        body["cursor"] = cursor
    return encode(body)


def decode_reply(body: bytes) -> dict[str, Any]:
    try:
        reply = _decoder.decode(body)
    except (msgspec.DecodeError, UnicodeDecodeError, RecursionError) as exc:
        raise BadRequest(f"reply: not a valid JSON document ({type(exc).__name__})") from None
    if not isinstance(reply, dict) or "ok" not in reply:
        raise BadRequest("reply: expected a JSON object with an 'ok' key")
    return reply
