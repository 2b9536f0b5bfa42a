"""The SQL a PostgreSQL op runs: the prepared statement of an op, and the query text of one call.

Layer: infrastructure. Pure: builds text and argument lists, never connects. Identifiers reach
the text only through `quote`, after the template loader checked them against IDENT_RE; every
value is a bound `$n` parameter.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from beds.adapters.base import Call, refuse_cursor
from beds.templates.model import OpTarget

# Arguments of the procedures named $1 visible in the search path, nearest schema first.
# Used at run time (cursor count) and by `beds templates check`.
ROUTINES_SQL = """
SELECT p.oid, p.prokind::text AS prokind, p.prosecdef, p.proconfig, p.pronargdefaults,
       coalesce(p.proargmodes::text[],
                array_fill('i'::text, ARRAY[cardinality(p.proargtypes::oid[])])) AS modes,
       coalesce(p.proallargtypes, p.proargtypes::oid[])::regtype[]::text[] AS types,
       has_function_privilege(p.oid, 'EXECUTE') AS executable
  FROM pg_catalog.pg_proc AS p
  JOIN pg_catalog.pg_namespace AS n ON n.oid = p.pronamespace
 WHERE p.proname = $1
   AND n.nspname = ANY (pg_catalog.current_schemas(false))
 ORDER BY array_position(pg_catalog.current_schemas(false), n.nspname), p.pronargs
"""



@dataclass(frozen=True)
class PostgresStatement:
    target: OpTarget
    name: str                     # the routine or view, unquoted (for cursor look-up, messages)
    sql: str                      # function: SELECT ...; view: SELECT * FROM; procedure: CALL "p"
    params: int                   # number of IN values
    out_names: tuple[str, ...]
    write: bool
    order_sql: str = ""           # views: " ORDER BY ..."
    call_args: tuple[str, ...] = ()   # procedures: "$1", ..., "NULL" per out; cursors follow


def quote(name: str) -> str:
    """A PostgreSQL identifier. Template names passed IDENT_RE already; cursor names come from
    the database, so embedded quotes are doubled all the same."""
    return '"' + name.replace('"', '""') + '"'


def _statement(prepared: PostgresStatement, call: Call) -> tuple[str, list[Any]]:
    if prepared.target is not OpTarget.VIEW:
        return prepared.sql, call.args
    refuse_cursor(call, "PostgreSQL")
    sql = prepared.sql
    args = [v for _, v in call.filters]
    if call.filters:
        sql += " WHERE " + " AND ".join(f"{quote(c)} = ${i}"
                                        for i, (c, _) in enumerate(call.filters, 1))
    n = len(args)
    sql += f"{prepared.order_sql} LIMIT ${n + 1} OFFSET ${n + 2}"
    return sql, [*args, call.limit, call.offset]
