"""Typed reads of parsed TOML tables, with errors that name the file and the key.

Layer: foundation (config and template loading share it). Pure: no I/O, no sockets.

    t = Table(data, origin=lambda path: "config/env.toml")
    t.integer("prefetch", default=32, minimum=1)
    -> ConfigError("config/env.toml: brokers.rBroker.prefetch: expected int >= 1, got 'ten'")
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from beds.errors import BedsError, ConfigError

IDENT_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")
"""Names that may reach SQL as identifiers (procedures, views, columns)."""

_MISSING: Any = object()
E = TypeVar("E", bound=BedsError)


def describe(value: Any) -> str:
    """A short, safe rendering of a bad value for an error message."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


class Table:
    """A TOML table plus where it came from, for precise error messages."""

    def __init__(
        self,
        data: dict[str, Any],
        origin: Callable[[str], str],
        path: str = "",
        error: type[BedsError] = ConfigError,
    ) -> None:
        self.data = data
        self.origin = origin
        self.path = path
        self.error = error

    # -- errors ---------------------------------------------------------------------------
    def key_path(self, key: str) -> str:
        """`key` under this table; "" means the table itself."""
        if not key:
            return self.path
        return f"{self.path}.{key}" if self.path else key

    def fail(self, key: str, message: str) -> BedsError:
        path = self.key_path(key)
        return self.error(f"{self.origin(path)}: {path}: {message}")

    # -- scalars --------------------------------------------------------------------------
    def has(self, key: str) -> bool:
        return key in self.data

    def raw(self, key: str, default: Any = _MISSING) -> Any:
        if key in self.data:
            return self.data[key]
        if default is _MISSING:
            raise self.fail(key, "required key is missing")
        return default

    def text(
        self, key: str, default: Any = _MISSING, choices: Iterable[str] | None = None,
        pattern: re.Pattern[str] | None = None,
    ) -> Any:
        value = self.raw(key, default)
        if value is default and key not in self.data:
            return value
        if not isinstance(value, str):
            raise self.fail(key, f"expected string, got {describe(value)}")
        if choices is not None and value not in choices:
            allowed = ", ".join(repr(c) for c in choices)
            raise self.fail(key, f"expected one of {allowed}, got {describe(value)}")
        if pattern is not None and not pattern.fullmatch(value):
            raise self.fail(key, f"expected a name matching {pattern.pattern}, got {describe(value)}")
        return value

    def integer(self, key: str, default: Any = _MISSING, minimum: int | None = None) -> Any:
        value = self.raw(key, default)
        if value is default and key not in self.data:
            return value
        bound = f" >= {minimum}" if minimum is not None else ""
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.fail(key, f"expected int{bound}, got {describe(value)}")
        if minimum is not None and value < minimum:
            raise self.fail(key, f"expected int{bound}, got {describe(value)}")
        return value

    def number(self, key: str, default: Any = _MISSING, minimum: float | None = None) -> Any:
        value = self.raw(key, default)
        if value is default and key not in self.data:
            return value
        bound = f" >= {minimum}" if minimum is not None else ""
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.fail(key, f"expected number{bound}, got {describe(value)}")
        if minimum is not None and value < minimum:
            raise self.fail(key, f"expected number{bound}, got {describe(value)}")
        return float(value)

    def flag(self, key: str, default: Any = _MISSING) -> Any:
        value = self.raw(key, default)
        if value is default and key not in self.data:
            return value
        if not isinstance(value, bool):
            raise self.fail(key, f"expected true or false, got {describe(value)}")
        return value

    def names(
        self, key: str, default: Any = _MISSING, pattern: re.Pattern[str] | None = None,
        choices: Iterable[str] | None = None,
    ) -> Any:
        value = self.raw(key, default)
        if value is default and key not in self.data:
            return value
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise self.fail(key, f"expected a list of strings, got {describe(value)}")
        allowed = tuple(choices) if choices is not None else None
        for item in value:
            if pattern is not None and not pattern.fullmatch(item):
                raise self.fail(
                    key, f"expected names matching {pattern.pattern}, got {describe(item)}"
                )
            if allowed is not None and item not in allowed:
                names = ", ".join(repr(c) for c in allowed)
                raise self.fail(key, f"expected items from {names}, got {describe(item)}")
        if len(set(value)) != len(value):
            raise self.fail(key, f"duplicate entries in {describe(value)}")
        return tuple(value)

    # -- nesting --------------------------------------------------------------------------
    def table(self, key: str, required: bool = False) -> Table:
        value = self.data.get(key, _MISSING)
        if value is _MISSING:
            if required:
                raise self.fail(key, "required table is missing")
            value = {}
        if not isinstance(value, dict):
            raise self.fail(key, f"expected a table, got {describe(value)}")
        return Table(value, self.origin, self.key_path(key), self.error)

    def tables(self, key: str) -> dict[str, Table]:
        """`[key.NAME]` sub-tables by NAME."""
        parent = self.table(key)
        return {name: parent.table(name, required=True) for name in parent.data}

    def reject_unknown(self, allowed: Iterable[str]) -> None:
        known = set(allowed)
        for key in self.data:
            if key not in known:
                names = ", ".join(sorted(known))
                raise self.fail(key, f"unknown key; expected one of: {names}")
