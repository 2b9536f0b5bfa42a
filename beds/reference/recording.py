"""A `Table` that records every key the loaders read: its type, default and constraints.

Layer: tooling. The config and template loaders read TOML only through `beds.table.Table`;
running them over a `RecordingTable` yields the list of keys they accept with the defaults the
code really applies, instead of a copy in the docs that drifts.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from beds.errors import BedsError, ConfigError
from beds.table import _MISSING, Table

REQUIRED: Any = _MISSING
"""The default of a key the loader demands (the sentinel `Table` itself uses)."""


@dataclass
class KeyDoc:
    """One key as the loader reads it."""

    table: str                 # "brokers.NAME": a sub-table per name shows as NAME
    key: str
    kind: str                  # string, integer, number, boolean, list of strings, table, any
    default: Any = REQUIRED
    constraint: str = ""
    defaults_seen: list[Any] = field(default_factory=list)
    # The same constraints as data, for the editor schemas (beds.jsonschemas).
    choices: tuple[Any, ...] | None = None
    pattern: str | None = None
    minimum: float | None = None

    @property
    def path(self) -> str:
        return f"{self.table}.{self.key}" if self.table else self.key

    @property
    def required(self) -> bool:
        return self.default is REQUIRED


@dataclass
class Recorder:
    """What one or more loader runs read, in first-read order."""

    keys: dict[str, KeyDoc] = field(default_factory=dict)
    allowed: dict[str, set[str]] = field(default_factory=dict)   # table -> reject_unknown keys
    reads: dict[str, int] = field(default_factory=dict)          # table -> tables of it read
    demanded: dict[str, set[int]] = field(default_factory=dict)  # key -> reads that required it

    def read_table(self, table: str) -> int:
        """A table of this name is being read; its number, for `demanded`."""
        self.reads[table] = self.reads.get(table, 0) + 1
        return sum(self.reads.values())

    def note(self, table: str, key: str, kind: str, default: Any, constraint: str = "", *,
             read: int = 0, choices: tuple[Any, ...] | None = None, pattern: str | None = None,
             minimum: float | None = None) -> None:
        path = f"{table}.{key}" if table else key
        doc = self.keys.get(path)
        if doc is None:
            doc = self.keys[path] = KeyDoc(table, key, kind, default, constraint)
        if doc.kind == "any" and kind != "any":   # read raw first (to tell bulk ops apart)
            doc.kind = kind
        if default is REQUIRED:
            self.demanded.setdefault(path, set()).add(read)
        elif default not in doc.defaults_seen:
            doc.defaults_seen.append(default)
        if constraint and not doc.constraint:
            doc.constraint = constraint
        doc.choices = doc.choices if choices is None else choices
        doc.pattern = doc.pattern or pattern
        doc.minimum = doc.minimum if minimum is None else minimum

    def required_everywhere(self, doc: KeyDoc) -> bool:
        """Every table of its kind that was read demanded it (`procedure` only some ops do)."""
        return len(self.demanded.get(doc.path, ())) == self.reads.get(doc.table, 0)

    def tables(self) -> list[str]:
        """Every table that has keys, in first-read order."""
        return list(dict.fromkeys(doc.table for doc in self.keys.values()))

    def in_table(self, table: str) -> list[KeyDoc]:
        return [doc for doc in self.keys.values() if doc.table == table]


def _choices(choices: Iterable[Any] | None) -> str:
    return "one of " + ", ".join(f"`{c}`" for c in choices) if choices is not None else ""


def _pattern(pattern: re.Pattern[str] | None) -> str:
    return f"matches `{pattern.pattern}`" if pattern is not None else ""


def _minimum(minimum: float | None) -> str:
    return f">= {minimum}" if minimum is not None else ""


class RecordingTable(Table):
    """Reads like `Table` (same values, same errors) and notes each read in a `Recorder`.

    `pattern` is the table's path with every `[parent.NAME]` name replaced by `NAME`, so the
    keys of all brokers (or all ops) land in one entry.
    """

    def __init__(self, data: dict[str, Any], recorder: Recorder, pattern: str = "",
                 path: str = "", error: type[BedsError] = ConfigError,
                 source: str = "reference") -> None:
        super().__init__(data, lambda _path: source, path, error)   # errors name the file
        self.source = source
        self.recorder = recorder
        self.pattern = pattern
        self.read = recorder.read_table(pattern)

    def _note(self, key: str, kind: str, default: Any, *constraints: str,
              choices: tuple[Any, ...] | None = None, pattern: re.Pattern[str] | None = None,
              minimum: float | None = None) -> None:
        constraint = "; ".join(c for c in constraints if c)
        self.recorder.note(self.pattern, key, kind, default, constraint, read=self.read,
                           choices=choices, pattern=pattern.pattern if pattern else None,
                           minimum=minimum)

    # -- scalars: note, then read exactly as Table does ------------------------------------
    def raw(self, key: str, default: Any = REQUIRED) -> Any:
        self._note(key, "any", default)
        return super().raw(key, default)

    def text(self, key: str, default: Any = REQUIRED, choices: Iterable[str] | None = None,
             pattern: re.Pattern[str] | None = None) -> Any:
        choices = tuple(choices) if choices is not None else None
        self._note(key, "string", default, _choices(choices), _pattern(pattern),
                   choices=choices, pattern=pattern)
        return super().text(key, default, choices=choices, pattern=pattern)

    def integer(self, key: str, default: Any = REQUIRED, minimum: int | None = None) -> Any:
        self._note(key, "integer", default, _minimum(minimum), minimum=minimum)
        return super().integer(key, default, minimum=minimum)

    def number(self, key: str, default: Any = REQUIRED, minimum: float | None = None) -> Any:
        self._note(key, "number", default, _minimum(minimum), minimum=minimum)
        return super().number(key, default, minimum=minimum)

    def flag(self, key: str, default: Any = REQUIRED) -> Any:
        self._note(key, "boolean", default)
        return super().flag(key, default)

    def names(self, key: str, default: Any = REQUIRED, pattern: re.Pattern[str] | None = None,
              choices: Iterable[str] | None = None) -> Any:
        choices = tuple(choices) if choices is not None else None
        self._note(key, "list of strings", default, _choices(choices),
                   _pattern(pattern).replace("matches", "each matches"), choices=choices,
                   pattern=pattern)
        return super().names(key, default, pattern=pattern, choices=choices)

    # -- nesting ----------------------------------------------------------------------------
    def table(self, key: str, required: bool = False) -> Table:
        inner = super().table(key, required)
        return self._child(inner, f"{self.pattern}.{key}" if self.pattern else key)

    def tables(self, key: str) -> dict[str, Table]:
        parent = self.table(key)
        assert isinstance(parent, RecordingTable)
        return {name: parent._child(Table.table(parent, name, required=True),
                                    f"{parent.pattern}.NAME")
                for name in parent.data}

    def _child(self, inner: Table, pattern: str) -> RecordingTable:
        return RecordingTable(inner.data, self.recorder, pattern, inner.path, inner.error,
                              self.source)

    def reject_unknown(self, allowed: Iterable[str]) -> None:
        allowed = tuple(allowed)
        self.recorder.allowed.setdefault(self.pattern, set()).update(allowed)
        super().reject_unknown(allowed)
