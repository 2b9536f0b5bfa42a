"""A template's warehouse policy (`[warehouse]`): which rows leave the live (HOT) datasource for
the warehouse (COOL) one, how many at a time, how often, and through which DBA-owned ops.

Layer: domain, beside templates/model.py (which holds the `WarehousePolicy` it builds). Pure: the
template loader calls `parse_policy`; the mover (beds.warehouse.mover) calls `check_load` once
the COOL template is known.

    [warehouse]
    key = "payment_id"                  # rows move in key order; a batch resumes after its last key
    age_field = "payment_date"          # the column whose age decides (a date/datetime field)
    older_than = "30d"                  # seconds, or a number with s / m / h / d
    batch = 500                         # rows per extract -> load -> purge round
    every = "60s"                       # how often the mover runs the policy
    extract = "wh_extract"              # read op of this template  (age_seconds, after_key, batch_size)
    purge = "wh_purge"                  # write op of this template (keys, age_seconds)
    load = "payment_archive.wh_load"    # write op of the COOL template (rows); returns the keys it holds

The op signatures are fixed so the mover can call any template's ops without per-template code;
the names are checked here, the routines themselves by `beds templates check`.
"""

from __future__ import annotations

import re

from beds.config import OpKind
from beds.errors import TemplateError
from beds.table import IDENT_RE, Table, describe
from beds.templates.model import Field, Op, WarehousePolicy

EXTRACT_PARAMS = ("age_seconds", "after_key", "batch_size")
PURGE_PARAMS = ("keys", "age_seconds")
LOAD_PARAMS = ("rows",)
MAX_BATCH = 10_000
KEYS = ("key", "age_field", "older_than", "batch", "every", "extract", "purge", "load")
_DURATION_RE = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*")
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}
_LOAD_RE = re.compile(rf"({IDENT_RE.pattern})\.({IDENT_RE.pattern})")


def parse_duration(value: object) -> float | None:
    """30 -> 30.0, "90s" -> 90.0, "15m" -> 900.0, "30d" -> 2592000.0; None when not a duration."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str) and (match := _DURATION_RE.fullmatch(value)):
        return float(match.group(1)) * _UNITS[match.group(2)]
    return None


def _duration(t: Table, key: str, minimum: float, default: float | None = None) -> float:
    raw = t.raw(key) if default is None else t.raw(key, default)
    seconds = parse_duration(raw)
    if seconds is None or seconds < minimum:
        raise t.fail(key, f"expected seconds >= {minimum:g} (a number, or a number with s, m, "
                          f"h or d such as \"30d\"), got {describe(raw)}")
    return seconds


def _own_op(t: Table, key: str, ops: dict[str, Op], kind: OpKind,
            params: tuple[str, ...]) -> str:
    name: str = t.text(key, pattern=IDENT_RE)
    op = ops.get(name)
    if op is None:
        raise t.fail(key, f"{name!r} is not an op of this template; expected one of: "
                          f"{', '.join(ops) or '(none)'}")
    if op.kind is not kind or op.target != "procedure":
        raise t.fail(key, f"{name!r} must be a {kind.value} procedure op, "
                          f"not a {op.kind.value} {op.target.value} op")
    if op.params != params:
        raise t.fail(key, f"{name!r} must take params = {list(params)}, got {list(op.params)}")
    return name


def parse_policy(t: Table, fields: dict[str, Field], ops: dict[str, Op]) -> WarehousePolicy:
    """`[warehouse]` of a template whose fields and ops are already read."""
    t.reject_unknown(KEYS)
    key = t.text("key", pattern=IDENT_RE)
    if key not in fields:
        raise t.fail("key", f"{key!r} is not declared in [fields]")
    age_field = t.text("age_field", pattern=IDENT_RE)
    if age_field not in fields or fields[age_field].type not in ("date", "datetime"):
        raise t.fail("age_field", f"expected a date or datetime field declared in [fields], "
                                  f"got {age_field!r}")
    batch = t.integer("batch", 500, minimum=1)
    if batch > MAX_BATCH:
        raise t.fail("batch", f"expected int between 1 and {MAX_BATCH}, got {batch}")
    extract = _own_op(t, "extract", ops, OpKind.READ, EXTRACT_PARAMS)
    if "after_key" not in ops[extract].optional:
        raise t.fail("extract", f"{extract!r} must list after_key in optional: the first batch "
                                "starts from the lowest key")
    load = t.text("load")
    match = _LOAD_RE.fullmatch(load)
    if match is None:
        raise t.fail("load", f"expected \"<template>.<op>\" (the COOL template's load op), "
                             f"got {describe(load)}")
    return WarehousePolicy(
        key=key,
        age_field=age_field,
        older_than=_duration(t, "older_than", 1.0),
        batch=batch,
        every=_duration(t, "every", 0.1, 60.0),
        extract=extract,
        purge=_own_op(t, "purge", ops, OpKind.WRITE, PURGE_PARAMS),
        load_template=match.group(1),
        load_op=match.group(2),
    )


def check_load(policy: WarehousePolicy, hot_name: str, hot_datasource: str,
               cool_datasource: str | None, load: Op | None) -> None:
    """The COOL side of a policy, once every template is known. Raises TemplateError."""
    where = f"template {hot_name!r}: warehouse.load"
    target = f"{policy.load_template}.{policy.load_op}"
    if load is None:
        raise TemplateError(f"{where}: {target!r} is not an op of the templates this node serves")
    if cool_datasource == hot_datasource:
        raise TemplateError(f"{where}: {target!r} uses datasource {hot_datasource!r}, the HOT "
                            "one; the warehouse must be another datasource")
    if load.kind is not OpKind.WRITE or load.target != "procedure":
        raise TemplateError(f"{where}: {target!r} must be a write procedure op")
    if load.params != LOAD_PARAMS:
        raise TemplateError(f"{where}: {target!r} must take params = {list(LOAD_PARAMS)}, "
                            f"got {list(load.params)}")
