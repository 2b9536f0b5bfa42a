"""Read replicas without a database: configuration and template checks, positions, lag by
positions, round robin, and the router's decisions over stub adapters (one per server)."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest

from beds.adapters import create_adapter
from beds.adapters.base import Call
from beds.adapters.replica_health import ReplicaState, RoundRobin
from beds.adapters.replica_positions import MariadbDialect, PostgresDialect, ReplicaProbe
from beds.adapters.replicas import ReplicatedAdapter
from beds.adapters.stub import StubAdapter
from beds.config import OpKind, load_settings
from beds.errors import BadRequest, ConfigError, DbError, DbUnavailable, TemplateError
from beds.protocol import Result, newer_position, read_after_of
from beds.templates import load_template
from beds.templates.model import Op, OpTarget, Template
from tests.support.services import ROOT

BASE = ROOT / "config/beds.toml"
ENV = {"BEDS_MYSQL_PASSWORD": "s3cret"}
REPLICA = "mysql://app:pw@10.0.0.2:3306/beds"


def settings_with(tmp_path: Path, text: str) -> Any:
    env = tmp_path / "env.toml"
    env.write_text(text)
    return load_settings(BASE, env, environ=ENV)


# -- configuration ---------------------------------------------------------------------------

def test_replicas_and_their_defaults_load(tmp_path: Path) -> None:
    ds = settings_with(tmp_path, f'[datasources.main]\nreplicas = ["{REPLICA}"]\n'
                                 ).datasources["main"]
    assert ds.replicas == (REPLICA,) and ds.max_lag_seconds == 5.0 and ds.ryw_wait_ms == 200
    assert isinstance(create_adapter(ds), ReplicatedAdapter)
    assert not isinstance(create_adapter(dataclasses.replace(ds, replicas=())),
                          ReplicatedAdapter)


@pytest.mark.parametrize(("text", "message"), [
    ('replicas = "mysql://a@h/db"', "datasources.main.replicas: expected a list of DSN strings"),
    ('replicas = ["nonsense"]', "datasources.main.replicas: item 0: expected scheme://"),
    (f'replicas = ["{REPLICA}", "{REPLICA}"]', "datasources.main.replicas: item 1 repeats item 0"),
    ('engine = "mongodb"\nreplicas = ["mongodb://h/db"]',
     "datasources.main.replicas: read replicas are supported for engines mysql and postgres, "
     "not mongodb"),
    ("max_lag_seconds = 0", "datasources.main.max_lag_seconds: expected"),
    ("ryw_wait_ms = -1", "datasources.main.ryw_wait_ms: expected int >= 0"),
])
def test_bad_replica_settings_name_the_key(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        settings_with(tmp_path, f"[datasources.main]\n{text}\n")
    assert message in str(info.value)
    assert "pw@" not in str(info.value)   # a DSN's password is never echoed


TEMPLATE = """name = "t"
datasource = "main"
[fields]
id = { type = "int" }
[ops.get]
kind = "read"
view = "t_v"
filters = ["id"]
consistency = "primary"
[ops.put]
kind = "write"
procedure = "t_put"
params = ["id"]
"""


def test_a_read_op_can_pin_itself_to_the_primary(tmp_path: Path) -> None:
    (tmp_path / "t.toml").write_text(TEMPLATE)
    template = load_template(tmp_path / "t.toml")
    assert template.ops["get"].consistency == "primary"
    assert template.ops["put"].consistency == "any"


@pytest.mark.parametrize(("change", "message"), [
    (('consistency = "primary"', 'consistency = "replica"'),
     "ops.get.consistency: expected one of 'any', 'primary'"),
    (('params = ["id"]', 'params = ["id"]\nconsistency = "primary"'),
     "ops.put.consistency: only read ops choose where they run"),
])
def test_bad_consistency_is_refused(tmp_path: Path, change: tuple[str, str],
                                    message: str) -> None:
    (tmp_path / "t.toml").write_text(TEMPLATE.replace(*change))
    with pytest.raises(TemplateError, match=message):
        load_template(tmp_path / "t.toml")


# -- positions -------------------------------------------------------------------------------

def test_gtid_and_lsn_positions_compare() -> None:
    maria, pg = MariadbDialect(), PostgresDialect()
    assert maria.covers("0-1-10,1-2-5", maria.check("0-1-10"))
    assert not maria.covers("0-1-9", maria.check("0-1-10"))
    assert not maria.covers("0-1-10", maria.check("0-1-10,1-2-1"))   # domain 1 not applied
    assert pg.covers("1/0", pg.check("0/FFFFFFFF")) and not pg.covers("0/10", pg.check("0/11"))
    assert not pg.covers("", pg.check("0/1"))


@pytest.mark.parametrize("value", ["", "0-1", "0/1; DROP", "x" * 300])
def test_a_malformed_read_after_names_the_header(value: str) -> None:
    with pytest.raises(BadRequest, match="x-read-after: expected"):
        after = read_after_of({"x-read-after": value})
        assert after is not None
        MariadbDialect().check(after)


def test_read_after_header_and_the_clients_newest_position() -> None:
    assert read_after_of(None) is None and read_after_of({"x-read-after": b"0-1-5"}) == "0-1-5"
    assert newer_position("0-1-9", "0-1-7") == "0-1-9"
    assert newer_position("0-1-9", "0-1-12") == "0-1-12"
    assert newer_position("0-1-9", "1-2-3") == "0-1-9,1-2-3"
    assert newer_position("0/FF", "1/0") == "1/0" and newer_position("1/0", "0/FF") == "1/0"


# -- lag by positions --------------------------------------------------------------------------

def probe(applied: str, native: float | None = None, replica: bool = True) -> ReplicaProbe:
    return ReplicaProbe(applied=applied, native_lag=native, applying=True, is_replica=replica)


def test_lag_is_the_age_of_the_oldest_position_the_replica_lacks() -> None:
    pg, state = PostgresDialect(), ReplicaState("r")
    state.observe(pg, probe("0/10"), "0/10", now=100.0)
    assert state.lag == 0.0 and state.serves(5.0)
    state.observe(pg, probe("0/10"), "0/20", now=101.0)    # the primary moved on
    state.observe(pg, probe("0/10"), "0/30", now=104.0)
    assert state.lag == 3.0
    state.observe(pg, probe("0/10"), "0/30", now=107.0)
    assert state.lag == 6.0 and not state.serves(5.0)
    state.observe(pg, probe("0/25"), "0/30", now=107.5)    # applied 0/20: 0/30 seen at 104
    assert state.lag == 3.5
    state.observe(pg, probe("0/30"), "0/30", now=108.0)
    assert state.lag == 0.0


def test_an_idle_primary_does_not_make_a_caught_up_standby_stale() -> None:
    # now() - pg_last_xact_replay_timestamp() grows while nothing is written
    state = ReplicaState("r")
    state.observe(PostgresDialect(), probe("0/10", native=600.0), "0/10", now=1.0)
    assert state.lag == 0.0 and state.serves(5.0)


def test_the_engines_own_lag_counts_when_behind_and_a_primary_is_refused() -> None:
    maria, state = MariadbDialect(), ReplicaState("r")
    state.observe(maria, probe("0-1-5", native=42.0), "0-1-9", now=1.0)
    assert state.lag == 42.0
    state.observe(maria, probe("0-1-9", replica=False), "0-1-9", now=2.0)
    assert not state.up and "not a replica" in state.reason


def test_round_robin_takes_healthy_replicas_in_turn() -> None:
    states = [ReplicaState("a", up=True, lag=0.0), ReplicaState("b", up=True, lag=0.0),
              ReplicaState("c", up=True, lag=9.0), ReplicaState("d", up=False, lag=0.0)]
    turn = RoundRobin()
    firsts = [turn.order(states, 5.0)[0] for _ in range(4)]
    assert firsts == [0, 1, 0, 0]      # 2 (lagging) and 3 (down) never serve
    assert RoundRobin().order([ReplicaState("x")], 5.0) == []    # never probed: the primary


# -- the router over stub servers ------------------------------------------------------------

class StubServer(StubAdapter):
    """A stub adapter that also answers the router's own statements (probes, GTID waits)."""

    def __init__(self, settings: Any, answers: dict[str, Any] | None = None) -> None:
        super().__init__(settings)
        self.answers = answers or {}

    async def run(self, prepared: Any, call: Call) -> Result:
        sql = getattr(prepared, "sql", None)
        if sql is None:
            return await super().run(prepared, call)
        self.calls.append((sql, call))
        answer = self.answers[sql]
        if isinstance(answer, Exception):
            raise answer
        return Result(rows=[answer])


def router(tmp_path: Path, **answers: Any) -> ReplicatedAdapter:
    ds = settings_with(tmp_path, f'[datasources.main]\nreplicas = ["{REPLICA}"]\n'
                                 ).datasources["main"]
    primary = StubServer(ds)
    replica = StubServer(dataclasses.replace(ds, dsn=REPLICA), answers)
    routed = ReplicatedAdapter(ds, primary, [replica])
    routed.states[0] = ReplicaState("10.0.0.2:3306", up=True, lag=0.0, applied="0-1-5")
    return routed


OPS = {kind: Op(kind.value, kind, OpTarget.VIEW if kind is OpKind.READ else OpTarget.PROCEDURE,
                f"obj_{kind.value}") for kind in (OpKind.READ, OpKind.WRITE)}
TEMPLATE_T = Template("t", "main", {}, {}, Path("t.toml"))


def servers(routed: ReplicatedAdapter) -> tuple[StubServer, StubServer]:
    return routed.primary, routed.replicas[0]   # type: ignore[return-value]


async def test_reads_go_to_the_replica_writes_and_pinned_reads_to_the_primary(
        tmp_path: Path) -> None:
    routed = router(tmp_path)
    primary, replica = servers(routed)
    read = await routed.run(routed.prepare(TEMPLATE_T, OPS[OpKind.READ]), Call())
    assert read.served_by == "10.0.0.2:3306" and replica.calls and not primary.calls
    await routed.run(routed.prepare(TEMPLATE_T, OPS[OpKind.WRITE]), Call())
    pinned = dataclasses.replace(OPS[OpKind.READ], consistency="primary")
    assert (await routed.run(routed.prepare(TEMPLATE_T, pinned), Call())).served_by == "primary"
    assert [p for p, _ in primary.calls] == ["obj_write", "obj_read"]
    assert getattr(primary, "track_position", False)   # writes report their position


async def test_a_replica_that_fails_is_marked_down_and_the_primary_answers(
        tmp_path: Path) -> None:
    routed = router(tmp_path)
    primary, replica = servers(routed)
    replica.results["obj_read"] = DbUnavailable("datasource 'main' is unreachable", ran=False)
    result = await routed.run(routed.prepare(TEMPLATE_T, OPS[OpKind.READ]), Call())
    assert result.served_by == "primary" and not routed.states[0].up
    assert [p for p, _ in primary.calls] == ["obj_read"]


@pytest.mark.parametrize(("position", "wait", "served_by", "waited"), [
    ("0-1-5", None, "10.0.0.2:3306", False),     # already applied: no wait
    ("0-1-7", 0, "10.0.0.2:3306", True),         # MASTER_GTID_WAIT says applied
    ("0-1-7", -1, "primary", True),              # timed out: the primary
])
async def test_read_your_writes_waits_for_the_replica_or_uses_the_primary(
        tmp_path: Path, position: str, wait: int | None, served_by: str, waited: bool) -> None:
    routed = router(tmp_path, **{MariadbDialect.wait_sql: {"value": wait}})
    _, replica = servers(routed)
    result = await routed.run(routed.prepare(TEMPLATE_T, OPS[OpKind.READ]),
                              Call(read_after=position))
    assert result.served_by == served_by
    assert any(sql == MariadbDialect.wait_sql for sql, _ in replica.calls) is waited


async def test_a_malformed_position_is_refused_before_any_read(tmp_path: Path) -> None:
    routed = router(tmp_path)
    with pytest.raises(BadRequest, match="x-read-after: expected a MariaDB GTID"):
        await routed.run(routed.prepare(TEMPLATE_T, OPS[OpKind.READ]), Call(read_after="0/1"))
    assert not servers(routed)[1].calls


async def test_probes_survive_a_silent_primary_and_mark_a_silent_replica_down(
        tmp_path: Path) -> None:
    maria = MariadbDialect()
    routed = router(tmp_path, **{maria.probe_sqls[0]: {"applied": "0-1-5", "read_only": 1},
                                 maria.probe_sqls[1]: DbError("denied", errno=1227)})
    primary, replica = servers(routed)
    primary.answers = {maria.primary_position_sql: TimeoutError()}
    await routed.probe()     # the primary does not answer: no exception, the lag is kept
    assert routed.states[0].up and "primary does not answer" in routed.states[0].reason
    primary.answers = {maria.primary_position_sql: {"value": "0-1-5"}}
    await routed.probe()     # SHOW SLAVE STATUS refused: lag by positions alone, asked once
    await routed.probe()
    assert routed.states[0].serves(5.0) and routed.states[0].lag == 0.0
    assert sum(sql == maria.probe_sqls[1] for sql, _ in replica.calls) == 1
    replica.answers[maria.probe_sqls[0]] = TimeoutError()
    await routed.probe()
    assert not routed.states[0].up and "no answer within" in routed.states[0].reason
