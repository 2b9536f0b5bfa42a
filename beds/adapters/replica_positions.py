"""Replication positions and the statements that read them, per engine.

Layer: infrastructure. Pure apart from building the engine's statement objects: the replica router
runs them through the adapters' own `run`, so driver calls and error translation stay in
`mysql.py` / `postgres.py`.

A position is what a write reply carries in `meta.position` and a read sends back in the
`x-read-after` header:
  - MariaDB: a GTID list, "domain-server-sequence[,...]" (`@@last_gtid`, `@@gtid_slave_pos`);
    one position covers another when every domain of the other has a sequence <= its own.
  - PostgreSQL: a WAL location (LSN), "XXXXXXXX/XXXXXXXX" (`pg_current_wal_lsn()`); ordered.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Protocol

from beds.config import Engine
from beds.errors import BadRequest
from beds.templates.model import OpTarget

_GTID_RE = re.compile(r"\d{1,10}-\d{1,10}-\d{1,20}(,\d{1,10}-\d{1,10}-\d{1,20})*")
_LSN_RE = re.compile(r"[0-9A-Fa-f]{1,8}/[0-9A-Fa-f]{1,8}")


@dataclass(frozen=True)
class ReplicaProbe:
    """One look at a replica: what it has applied, and the engine's own view of its lag."""

    applied: str                  # a position ("" = nothing applied yet)
    native_lag: float | None      # Seconds_Behind_Master / now() - last replay; None = unknown
    applying: bool                # the SQL thread runs / WAL replay is not paused
    is_replica: bool              # false: the DSN points at a primary, a configuration error


class Dialect(Protocol):
    """What the router needs to know about an engine's replication."""

    def check(self, position: str) -> Any:
        """The parsed position; BadRequest naming x-read-after when it is not one."""

    def covers(self, applied: Any, target: Any) -> bool: ...

    def statement(self, sql: str) -> Any:
        """An adapter statement (read, function-shaped) for `sql`."""

    primary_position_sql: str
    probe_sqls: tuple[str, ...]
    wait_sql: str

    def probe(self, rows: list[list[dict[str, Any]]]) -> ReplicaProbe:
        """A ReplicaProbe from the rows of each of `probe_sqls` (an empty list: not run)."""


class MariadbDialect:
    primary_position_sql: str = "SELECT @@gtid_binlog_pos AS value"
    # The first is open to any account; SHOW SLAVE STATUS needs SLAVE MONITOR (or SUPER), and
    # the router stops asking when it is refused.
    probe_sqls: tuple[str, ...] = ("SELECT @@gtid_slave_pos AS applied, @@read_only AS read_only",
                  "SHOW SLAVE STATUS")
    wait_sql: str = "SELECT MASTER_GTID_WAIT(%s, %s) AS value"

    def check(self, position: str) -> dict[int, int]:
        if not _GTID_RE.fullmatch(position):
            raise BadRequest("x-read-after: expected a MariaDB GTID position such as "
                             f"'0-1-42' (a write's meta.position), got {position[:60]!r}")
        return _gtids(position)

    def covers(self, applied: Any, target: Any) -> bool:
        have = applied if isinstance(applied, dict) else _gtids(applied)
        want = target if isinstance(target, dict) else _gtids(target)
        return all(have.get(domain, -1) >= seq for domain, seq in want.items())

    def statement(self, sql: str) -> Any:
        from beds.adapters.mysql.adapter import MysqlStatement
        return MysqlStatement(OpTarget.FUNCTION, sql, None, (), False)

    def probe(self, rows: list[list[dict[str, Any]]]) -> ReplicaProbe:
        first = rows[0][0]
        status = rows[1][0] if len(rows) > 1 and rows[1] else None
        applying, native = True, None
        if status is not None:
            applying = str(status.get("Slave_SQL_Running", "Yes")) == "Yes"
            lag = status.get("Seconds_Behind_Master")
            native = float(lag) if lag is not None else None
        return ReplicaProbe(applied=str(first["applied"] or ""), native_lag=native,
                            applying=applying,
                            is_replica=bool(int(first["read_only"])) or status is not None)


class PostgresDialect:
    primary_position_sql: str = "SELECT pg_current_wal_lsn()::text AS value"
    probe_sqls: tuple[str, ...] = ("SELECT pg_is_in_recovery() AS standby, "
                  "coalesce(pg_last_wal_replay_lsn()::text, '') AS applied, "
                  "extract(epoch FROM now() - pg_last_xact_replay_timestamp())::float8 AS age, "
                  "CASE WHEN pg_is_in_recovery() THEN pg_is_wal_replay_paused() "
                  "ELSE false END AS paused",)
    wait_sql: str = "SELECT pg_last_wal_replay_lsn() >= $1::text::pg_lsn AS value"

    def check(self, position: str) -> int:
        if not _LSN_RE.fullmatch(position):
            raise BadRequest("x-read-after: expected a PostgreSQL LSN such as '0/3000148' "
                             f"(a write's meta.position), got {position[:60]!r}")
        return _lsn(position)

    def covers(self, applied: Any, target: Any) -> bool:
        have = applied if isinstance(applied, int) else _lsn(applied) if applied else -1
        want = target if isinstance(target, int) else _lsn(target) if target else -1
        return have >= want

    def statement(self, sql: str) -> Any:
        from beds.adapters.postgres.statements import PostgresStatement
        return PostgresStatement(OpTarget.FUNCTION, "replication", sql, 0, (), False)

    def probe(self, rows: list[list[dict[str, Any]]]) -> ReplicaProbe:
        row = rows[0][0]
        # now() - last replay grows while the primary is idle: the router trusts it only when
        # the positions say the standby is behind.
        age = row["age"]
        return ReplicaProbe(applied=str(row["applied"] or ""),
                            native_lag=float(age) if age is not None else None,
                            applying=not row["paused"], is_replica=bool(row["standby"]))


def dialect_of(engine: Engine) -> Dialect:
    return MariadbDialect() if engine is Engine.MYSQL else PostgresDialect()


def _gtids(text: str) -> dict[int, int]:
    out: dict[int, int] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        domain, _server, seq = part.split("-")
        out[int(domain)] = max(out.get(int(domain), -1), int(seq))
    return out


def _lsn(text: str) -> int:
    high, low = text.split("/")
    return (int(high, 16) << 32) | int(low, 16)
