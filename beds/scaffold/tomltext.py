"""TOML values written by hand, in the style of the shipped files (inline field tables, literal
strings for patterns), for the template and spec writers.

Layer: tooling. Pure. Whatever is written here is read back by tomllib before it is used.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

_BARE_KEY_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-")


def value(item: Any) -> str:
    if isinstance(item, bool):
        return "true" if item else "false"
    if isinstance(item, int):
        return str(item)
    if isinstance(item, float):
        return str(int(item)) if item.is_integer() else repr(item)
    if isinstance(item, str):
        return string(item)
    if isinstance(item, list | tuple):
        return "[" + ", ".join(value(v) for v in item) + "]"
    if isinstance(item, dict):
        return inline(item.items())
    raise TypeError(f"no TOML form for {type(item).__name__}")


def string(text: str) -> str:
    """A literal string when it needs no escapes (patterns read as written), else a basic one."""
    if "'" not in text and "\n" not in text and text.isprintable() and "\\" in text:
        return f"'{text}'"
    # JSON escapes (\", \\, \n, \uXXXX) are TOML basic-string escapes too; TOML also refuses a
    # raw DEL, which JSON leaves as it is.
    return json.dumps(text, ensure_ascii=False).replace("\x7f", "\\u007f")


def key(name: str) -> str:
    return name if name and set(name) <= _BARE_KEY_CHARS else string(name)


def inline(pairs: Iterable[tuple[str, Any]]) -> str:
    body = ", ".join(f"{key(k)} = {value(v)}" for k, v in pairs if v is not None)
    return "{ " + body + " }" if body else "{}"


def aligned(rows: list[tuple[str, str]]) -> list[str]:
    """`key = value` lines with the `=` aligned, as in the shipped templates."""
    width = max((len(key(k)) for k, _ in rows), default=0)
    return [f"{key(k).ljust(width)} = {v}" for k, v in rows]
