"""DBA tooling for MariaDB / MySQL: `beds templates check` and `beds schema apply`.

Layer: infrastructure (DBA tooling). Runs from the CLI and at a template reload, never on the
request path.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from beds.adapters.base import parse_dsn
from beds.adapters.mysql.adapter import MysqlAdapter
from beds.adapters.mysql.pool import DriverError, connect
from beds.adapters.schema import Problem, SchemaApplied, account_outcome
from beds.errors import ConfigError, DbError, DbUnavailable
from beds.mysql import Connection, Rows
from beds.templates.model import Op, OpTarget, Template

_PARAMS_SQL = (
    "SELECT PARAMETER_MODE, PARAMETER_NAME FROM information_schema.PARAMETERS "
    "WHERE SPECIFIC_SCHEMA = DATABASE() AND SPECIFIC_NAME = %s AND ROUTINE_TYPE = %s "
    "AND ORDINAL_POSITION > 0 ORDER BY ORDINAL_POSITION"
)
_ROUTINE_SQL = (
    "SELECT COUNT(*) FROM information_schema.ROUTINES "
    "WHERE ROUTINE_SCHEMA = DATABASE() AND ROUTINE_NAME = %s AND ROUTINE_TYPE = %s"
)
_COLUMNS_SQL = (
    "SELECT c.COLUMN_NAME, t.TABLE_TYPE FROM information_schema.COLUMNS c "
    "JOIN information_schema.TABLES t ON t.TABLE_SCHEMA = c.TABLE_SCHEMA "
    "AND t.TABLE_NAME = c.TABLE_NAME "
    "WHERE c.TABLE_SCHEMA = DATABASE() AND c.TABLE_NAME = %s"
)


async def check_templates(adapter: MysqlAdapter, templates: list[Template]) -> list[Problem]:
    problems: list[Problem] = []
    conn = await _connect(adapter.connect_kwargs())
    try:
        for template in templates:
            for op in template.ops.values():
                where = f"{template.path}: ops.{op.name}"
                problems += [Problem(where, m) for m in await _check_op(conn, op)]
        problems += await _least_privilege(conn, adapter.settings.name)
    finally:
        conn.close()
    problems += await _dynamic_sql(adapter, templates)
    return problems


_TABLE_GRANTS_SQL = (
    "SELECT p.TABLE_NAME, GROUP_CONCAT(DISTINCT p.PRIVILEGE_TYPE ORDER BY p.PRIVILEGE_TYPE) "
    "FROM information_schema.TABLE_PRIVILEGES p JOIN information_schema.TABLES t "
    "ON t.TABLE_SCHEMA = p.TABLE_SCHEMA AND t.TABLE_NAME = p.TABLE_NAME "
    "WHERE p.TABLE_SCHEMA = DATABASE() AND t.TABLE_TYPE = 'BASE TABLE' "
    "AND p.PRIVILEGE_TYPE IN ('SELECT', 'INSERT', 'UPDATE', 'DELETE') GROUP BY p.TABLE_NAME"
)
_WIDE_GRANTS_SQL = (
    "SELECT 'database', PRIVILEGE_TYPE FROM information_schema.SCHEMA_PRIVILEGES "
    "WHERE TABLE_SCHEMA = DATABASE() AND PRIVILEGE_TYPE IN ('SELECT', 'INSERT', 'UPDATE', 'DELETE') "
    "UNION ALL SELECT 'server', PRIVILEGE_TYPE FROM information_schema.USER_PRIVILEGES "
    "WHERE PRIVILEGE_TYPE IN ('SELECT', 'INSERT', 'UPDATE', 'DELETE')"
)


async def _least_privilege(conn: Connection, datasource: str) -> list[Problem]:
    """Warn when the configured account can touch base tables itself: then the templates are
    not the only way in (information_schema lists the grants of the current account)."""
    where = f"datasources.{datasource}"
    found: list[Problem] = []
    for level, privilege in await _rows(conn, _WIDE_GRANTS_SQL):
        found.append(Problem(where, f"the configured account has {privilege} on the whole "
                             f"{level}: grant EXECUTE on routines and SELECT on views only",
                             warning=True))
    for table, privileges in await _rows(conn, _TABLE_GRANTS_SQL):
        found.append(Problem(where, f"the configured account has {privileges} on base table "
                             f"{table!r}: callers should reach it only through routines and "
                             "views", warning=True))
    return found


async def _dynamic_sql(adapter: MysqlAdapter, templates: list[Template]) -> list[Problem]:
    """Warn when a routine a template uses builds SQL text (CONCAT + PREPARE): binding values
    in BEDS does not protect a procedure that pastes them into a statement. Reading routine
    bodies needs the admin account; without one this check is skipped with a warning."""
    settings = adapter.settings
    names = {(o.object_name, "PROCEDURE" if o.target is OpTarget.PROCEDURE else "FUNCTION"): (t, o)
             for t in templates for o in t.ops.values() if o.target is not OpTarget.VIEW}
    if not names:
        return []
    if not settings.admin_dsn:
        return [Problem(f"datasources.{settings.name}", "no admin_dsn: routine bodies were not "
                        "checked for dynamic SQL", warning=True)]
    kwargs = adapter.connect_kwargs(parse_dsn(settings, settings.admin_dsn))
    kwargs["database"] = adapter.dsn.database
    try:
        conn = await _connect(kwargs)
    except DbUnavailable as exc:
        return [Problem(f"datasources.{settings.name}", f"routine bodies not checked: {exc}",
                        warning=True)]
    found: list[Problem] = []
    try:
        routines = await _rows(conn, "SELECT ROUTINE_NAME, ROUTINE_TYPE, ROUTINE_DEFINITION "
                               "FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = DATABASE()")
        for name, kind, body in routines:
            text = (body or "").upper()
            if (name, kind) in names and "PREPARE" in text and "CONCAT" in text:
                template, op = names[(name, kind)]
                found.append(Problem(
                    f"{template.path}: ops.{op.name}",
                    f"{kind.lower()} {name!r} builds SQL text (CONCAT + PREPARE): a value "
                    "pasted into it can change the statement; use bound parameters "
                    "(EXECUTE ... USING)", warning=True))
    finally:
        conn.close()
    return found


async def _check_op(conn: Connection, op: Op) -> list[str]:
    name = op.object_name
    if op.target is OpTarget.VIEW:
        rows = await _rows(conn, _COLUMNS_SQL, (name,))
        if not rows:
            return [f"view {name!r} does not exist (or the configured user cannot see it)"]
        columns = {r[0] for r in rows}
        found = [f"{name!r} is a {rows[0][1].lower()}, not a view"] if rows[0][1] != "VIEW" else []
        wanted = [("filter", c) for c in op.filters] + [("order_by", o.column) for o in op.order_by]
        return found + [f"{kind} column {col!r} is not a column of view {name!r}"
                        for kind, col in wanted if col not in columns]
    routine = "PROCEDURE" if op.target is OpTarget.PROCEDURE else "FUNCTION"
    if (await _rows(conn, _ROUTINE_SQL, (name, routine)))[0][0] == 0:
        return [f"{routine.lower()} {name!r} does not exist (or the configured user cannot "
                "execute it)"]
    modes = [r[0] or "IN" for r in await _rows(conn, _PARAMS_SQL, (name, routine))]
    ins = modes.count("IN")
    outs = len(modes) - ins
    expected = ["IN"] * len(op.params) + ["OUT"] * len(op.out)
    actual = ["IN" if m == "IN" else "OUT" for m in modes]
    if actual == expected:
        return []
    declared = f"{len(op.params)} params and {len(op.out)} out"
    if ins == len(op.params) and outs == len(op.out):
        return [f"{routine.lower()} {name!r} takes its parameters in the order "
                f"{', '.join(modes)}; BEDS passes every IN parameter first, then every OUT"]
    return [f"{routine.lower()} {name!r} takes {ins} IN and {outs} OUT parameters; "
            f"the template declares {declared}"]


# -- schema apply -----------------------------------------------------------------------------

async def apply_schema(adapter: MysqlAdapter, files: list[Path],
                       reset_password: bool = False) -> SchemaApplied:
    """Create the database and the application account (an existing one keeps its password
    unless `reset_password`), then run each file in order."""
    settings = adapter.settings
    if not settings.admin_dsn:
        raise ConfigError(f"datasources.{settings.name}.admin_dsn: required for schema apply "
                          "(an account that may create databases, users and routines)")
    admin = parse_dsn(settings, settings.admin_dsn)
    app = adapter.dsn
    if not app.database:
        raise ConfigError(f"datasources.{settings.name}.dsn: names no database")
    kwargs = adapter.connect_kwargs(admin)
    kwargs.pop("database", None)
    conn = await _connect(kwargs)
    done: list[str] = []
    # Re-applying is expected to hit "already exists" notes: they are not news (beds.mysql
    # neither fetches nor logs warnings).
    try:
        await conn.query(f"CREATE DATABASE IF NOT EXISTS `{app.database}` "
                         "CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci")
        await conn.query(f"USE `{app.database}`")
        account = "''"
        outcome = f"no application account: the dsn's user is the admin user {admin.user}"
        if app.user and app.user != (admin.user or "root"):
            account = f"'{app.user}'@'%'"
            outcome = await _ensure_account(conn, account, app.user, app.password or "",
                                            reset_password)
        for path in files:
            text = path.read_text(encoding="utf-8").replace("${app_user}", account)
            for statement in split_statements(text):
                try:
                    await conn.query(statement)
                except DriverError as exc:
                    raise DbError(f"{path}: {exc.args[-1]} in: {statement[:200]}") from exc
            done.append(str(path))
    finally:
        conn.close()
    return SchemaApplied(done, outcome)


async def _ensure_account(conn: Connection, account: str, user: str, password: str,
                          reset: bool) -> str:
    existed = bool((await _rows(conn, "SELECT COUNT(*) FROM mysql.user "
                                "WHERE User = %s AND Host = '%%'", (user,)))[0][0])
    escaped = account.replace("%", "%%")   # the host wildcard, not a placeholder
    if not existed:
        await conn.query(f"CREATE USER {escaped} IDENTIFIED BY %s", (password,))
    elif reset:
        await conn.query(f"ALTER USER {escaped} IDENTIFIED BY %s", (password,))
    return account_outcome(account, existed, reset)


async def _rows(conn: Connection, sql: str, args: tuple[Any, ...] | None = None
                ) -> list[tuple[Any, ...]]:
    """The rows of the statement's result set."""
    for outcome in await conn.query(sql, args):
        if isinstance(outcome, Rows):
            return outcome.rows
    return []


async def _connect(kwargs: dict[str, Any]) -> Connection:
    try:
        return await connect(kwargs)
    except (DriverError, OSError) as exc:
        raise DbUnavailable(f"cannot connect to {kwargs.get('host')}:{kwargs.get('port')} as "
                            f"{kwargs.get('user')}: {exc}") from exc


def split_statements(text: str) -> list[str]:
    """Split a mysql-client style script: `;` separators, `DELIMITER xx` lines, quotes and
    comments respected."""
    statements: list[str] = []
    delimiter = ";"
    buf: list[str] = []
    i, n = 0, len(text)
    at_line_start = True
    while i < n:
        if at_line_start:
            line_end = text.find("\n", i)
            line = text[i: n if line_end == -1 else line_end]
            if line.strip().upper().startswith("DELIMITER "):
                _flush(buf, statements)
                delimiter = line.strip().split(None, 1)[1].strip()
                i = n if line_end == -1 else line_end + 1
                continue
        at_line_start = False
        ch = text[i]
        if text.startswith(delimiter, i):
            _flush(buf, statements)
            i += len(delimiter)
            continue
        if ch in "'\"`":
            end = _quote_end(text, i, ch)
            buf.append(text[i:end])
            i = end
            continue
        if (text.startswith("--", i) and (i + 2 >= n or text[i + 2] in " \t\r\n")) or ch == "#":
            end = text.find("\n", i)
            i = n if end == -1 else end
            continue
        if text.startswith("/*", i):
            end = text.find("*/", i + 2)
            i = n if end == -1 else end + 2
            continue
        buf.append(ch)
        if ch == "\n":
            at_line_start = True
        i += 1
    _flush(buf, statements)
    return statements


def _quote_end(text: str, start: int, quote: str) -> int:
    i = start + 1
    while i < len(text):
        if text[i] == "\\" and quote != "`":
            i += 2
            continue
        if text[i] == quote:
            if i + 1 < len(text) and text[i + 1] == quote:
                i += 2
                continue
            return i + 1
        i += 1
    return len(text)


def _flush(buf: list[str], statements: list[str]) -> None:
    statement = "".join(buf).strip()
    buf.clear()
    if statement:
        statements.append(statement)


class MysqlSchemaTool:
    """The `SchemaTool` of this engine, on the serving adapter's settings and connections."""

    def __init__(self, adapter: MysqlAdapter) -> None:
        self.adapter = adapter

    async def check(self, templates: list[Template]) -> list[Problem]:
        return await check_templates(self.adapter, templates)

    async def apply_schema(self, files: list[Path], reset_password: bool = False) -> SchemaApplied:
        return await apply_schema(self.adapter, files, reset_password)
