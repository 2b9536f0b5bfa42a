"""DBA tooling for PostgreSQL: `beds templates check` and `beds schema apply`.

Layer: infrastructure (DBA tooling). Runs from the CLI and at a template reload, never on the
request path. The calling
convention it checks (IN params, then INOUT/OUT for `out`, then INOUT refcursor per result set)
is described in `beds.adapters.postgres.adapter`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import asyncpg

from beds.adapters.base import parse_dsn
from beds.adapters.postgres.adapter import PostgresAdapter
from beds.adapters.postgres.statements import ROUTINES_SQL, quote
from beds.adapters.schema import Problem, SchemaApplied, account_outcome
from beds.errors import ConfigError, DbError, DbUnavailable
from beds.templates.model import Op, OpTarget, Template

_RELATION_SQL = """
SELECT c.relkind::text AS relkind, has_table_privilege(c.oid, 'SELECT') AS readable,
       ARRAY(SELECT a.attname::text FROM pg_catalog.pg_attribute AS a
              WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped) AS columns
  FROM pg_catalog.pg_class AS c
  JOIN pg_catalog.pg_namespace AS n ON n.oid = c.relnamespace
 WHERE c.relname = $1
   AND n.nspname = ANY (pg_catalog.current_schemas(false))
 ORDER BY array_position(pg_catalog.current_schemas(false), n.nspname)
 LIMIT 1
"""
_RELKINDS = {"r": "table", "p": "partitioned table", "f": "foreign table", "S": "sequence",
             "i": "index", "c": "composite type", "t": "TOAST table"}
_PROKINDS = {"f": "function", "p": "procedure", "a": "aggregate", "w": "window function"}
_INPUT_MODES = ("i", "b", "v")     # IN, INOUT, VARIADIC: what a caller passes
_MODE_NAMES = {"i": "IN", "o": "OUT", "b": "INOUT", "v": "VARIADIC", "t": "TABLE"}


async def check_templates(adapter: PostgresAdapter, templates: list[Template]) -> list[Problem]:
    """Connects as the application role, so "cannot execute / cannot read" is checked too."""
    problems: list[Problem] = []
    conn = await _connect(adapter, adapter.settings.dsn)
    try:
        for template in templates:
            for op in template.ops.values():
                where = f"{template.path}: ops.{op.name}"
                for message, warning in await _check_op(conn, op):
                    problems.append(Problem(where, message, warning))
    finally:
        await conn.close()
    return problems


async def _check_op(conn: Any, op: Op) -> list[tuple[str, bool]]:
    if op.target is OpTarget.VIEW:
        return [(m, False) for m in await _check_view(conn, op)]
    kind = "procedure" if op.target is OpTarget.PROCEDURE else "function"
    rows = await conn.fetch(ROUTINES_SQL, op.object_name)
    mine = [r for r in rows if r["prokind"] == kind[0]]
    if not mine:
        if rows:
            other = _PROKINDS.get(rows[0]["prokind"], "routine")
            return [(f"{op.object_name!r} is a {other}, not a {kind}", False)]
        return [(f"{kind} {op.object_name!r} does not exist in the search path "
                 f"{await _search_path(conn)}", False)]
    # Overloads: the first one that fits is the one PostgreSQL will call.
    findings = [_check_signature(op, kind, row) for row in mine]
    best = next((i for i, found in enumerate(findings) if not found), 0)
    found, routine = findings[best], mine[best]
    if found and len(mine) > 1:
        found.append((f"{kind} {op.object_name!r} has {len(mine)} overloads; none fits",
                      False))
    if not routine["executable"]:
        found.append((f"the configured user may not execute {kind} {op.object_name!r} "
                      f"(GRANT EXECUTE ON {kind.upper()} ... TO it)", False))
    if routine["prosecdef"] and not any(
            s.startswith("search_path=") for s in routine["proconfig"] or ()):
        found.append((f"{kind} {op.object_name!r} is SECURITY DEFINER without "
                      "SET search_path = pg_catalog, pg_temp", True))
    return found


def _check_signature(op: Op, kind: str, row: Any) -> list[tuple[str, bool]]:
    modes: list[str] = list(row["modes"])
    types: list[str] = list(row["types"])
    spelled = ", ".join(f"{_MODE_NAMES.get(m, m)} {t}" for m, t in zip(modes, types, strict=True))
    name = op.object_name
    if kind == "function":
        inputs = sum(1 for m in modes if m in _INPUT_MODES)
        least = inputs - int(row["pronargdefaults"] or 0)
        if least <= len(op.params) <= inputs:
            return []
        takes = f"{inputs} arguments" if least == inputs else f"{least} to {inputs} arguments"
        return [(f"function {name!r} takes {takes} ({spelled}); the template declares "
                 f"{len(op.params)} params", False)]
    n_in, n_out = len(op.params), len(op.out)
    expected = f"{n_in} params and {n_out} out"
    ins = [m for m in modes if m in _INPUT_MODES and m != "b"]
    outputs = [(m, t) for m, t in zip(modes, types, strict=True) if m in ("o", "b")]
    cursors = 0
    while cursors < len(outputs) and outputs[len(outputs) - 1 - cursors][1] == "refcursor":
        cursors += 1
    values = len(outputs) - cursors
    in_first = all(m not in ("o", "b") for m in modes[:len(ins)])
    if len(ins) != n_in or values != n_out:
        return [(f"procedure {name!r} takes {len(ins)} IN, {values} INOUT/OUT and {cursors} "
                 f"refcursor parameters ({spelled}); the template declares {expected}", False)]
    if not in_first:
        return [(f"procedure {name!r} takes its parameters in the order {spelled}; BEDS passes "
                 "every IN parameter first, then one INOUT per out, then one INOUT refcursor "
                 "per result set", False)]
    return []


async def _check_view(conn: Any, op: Op) -> list[str]:
    name = op.object_name
    row = await conn.fetchrow(_RELATION_SQL, name)
    if row is None:
        return [f"view {name!r} does not exist in the search path {await _search_path(conn)}"]
    found: list[str] = []
    if row["relkind"] not in ("v", "m"):
        found.append(f"{name!r} is a {_RELKINDS.get(row['relkind'], 'relation')}, not a view")
    if not row["readable"]:
        found.append(f"the configured user may not read view {name!r} (GRANT SELECT ON ... TO it)")
    columns = set(row["columns"])
    wanted = [("filter", c) for c in op.filters] + [("order_by", o.column) for o in op.order_by]
    found += [f"{kind} column {col!r} is not a column of view {name!r}"
              for kind, col in wanted if col not in columns]
    return found


async def _search_path(conn: Any) -> str:
    schemas = await conn.fetchval("SELECT pg_catalog.current_schemas(false)::text")
    return str(schemas)


# -- schema apply -----------------------------------------------------------------------------

async def apply_schema(adapter: PostgresAdapter, files: list[Path],
                       reset_password: bool = False) -> SchemaApplied:
    """Create the application role (an existing one keeps its password unless
    `reset_password`) and the database, then run each file in order, each as one script (one
    implicit transaction: a file applies completely or not at all)."""
    settings = adapter.settings
    if not settings.admin_dsn:
        raise ConfigError(f"datasources.{settings.name}.admin_dsn: required for schema apply "
                          "(a role that may create databases, roles and routines)")
    admin = parse_dsn(settings, settings.admin_dsn)
    app = parse_dsn(settings)
    if not app.database:
        raise ConfigError(f"datasources.{settings.name}.dsn: names no database")
    conn = await _connect(adapter, settings.admin_dsn)
    try:
        grantee = "CURRENT_USER"
        outcome = f"no application account: the dsn's user is the admin user {admin.user}"
        if app.user and app.user != (admin.user or "postgres"):
            grantee = quote(app.user)
            outcome = await _ensure_role(conn, app.user, app.password, reset_password)
        if not await conn.fetchval("SELECT 1 FROM pg_catalog.pg_database WHERE datname = $1",
                                   app.database):
            await _run(conn, f"CREATE DATABASE {quote(app.database)} "
                             "ENCODING 'UTF8' TEMPLATE template0", "CREATE DATABASE")
    finally:
        await conn.close()
    conn = await _connect(adapter, settings.admin_dsn, database=app.database)
    done: list[str] = []
    try:
        for path in files:
            text = path.read_text(encoding="utf-8").replace("${app_user}", grantee)
            await _run(conn, text, str(path))
            done.append(str(path))
    finally:
        await conn.close()
    return SchemaApplied(done, outcome)


async def _ensure_role(conn: Any, user: str, password: str | None, reset: bool) -> str:
    # DDL takes no bind parameters: the server quotes the name and the password itself.
    existed = bool(await conn.fetchval("SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = $1",
                                       user))
    verb = "ALTER" if existed else "CREATE"
    if existed and not reset:
        sql = await conn.fetchval("SELECT format('ALTER ROLE %I LOGIN', $1::text)", user)
    elif password is None:
        sql = await conn.fetchval(f"SELECT format('{verb} ROLE %I LOGIN', $1::text)", user)
    else:
        sql = await conn.fetchval(f"SELECT format('{verb} ROLE %I LOGIN PASSWORD %L', "
                                  "$1::text, $2::text)", user, password)
    await _run(conn, sql, f"{verb} ROLE")
    return account_outcome(f"role {quote(user)}", existed, reset)


async def _run(conn: Any, script: str, where: str) -> None:
    try:
        await conn.execute(script)
    except asyncpg.PostgresError as exc:
        position = getattr(exc, "position", None)
        line = ""
        if position and str(position).isdigit():
            line = f" (line {script.count(chr(10), 0, int(position)) + 1})"
        raise DbError(f"{where}{line}: {exc}", sqlstate=getattr(exc, "sqlstate", None)) from exc


async def _connect(adapter: PostgresAdapter, dsn: str, **extra: Any) -> Any:
    kwargs = adapter.connect_kwargs(dsn)
    kwargs.pop("server_settings")      # DBA work has no statement time limit
    try:
        return await asyncpg.connect(**kwargs, **extra)
    except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError, TimeoutError) as exc:
        target = parse_dsn(adapter.settings, dsn)
        raise DbUnavailable(f"cannot connect to {target.host}:{target.port or 5432} as "
                            f"{target.user}: {exc}") from exc


class PostgresSchemaTool:
    """The `SchemaTool` of this engine, on the serving adapter's settings and connections."""

    def __init__(self, adapter: PostgresAdapter) -> None:
        self.adapter = adapter

    async def check(self, templates: list[Template]) -> list[Problem]:
        return await check_templates(self.adapter, templates)

    async def apply_schema(self, files: list[Path], reset_password: bool = False) -> SchemaApplied:
        return await apply_schema(self.adapter, files, reset_password)
