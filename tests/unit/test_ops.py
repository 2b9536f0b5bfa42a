"""The operations plane without a network: config of [ops]/[admin] and service brokers, the
command wire format, metrics snapshots, and the pool scaling stub workers up and down."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from beds.brokers.pool import Pool
from beds.config import BrokerSettings, QueueType, load_settings
from beds.config.ops import Service
from beds.errors import ConfigError
from beds.ops.commands import (
    Command,
    CommandFailed,
    arg_int,
    decode_command,
    encode_command,
    result_of,
)
from beds.ops.console import render_status
from beds.ops.metrics import MAX_OPS, UNKNOWN, NodeMetrics
from tests.support.services import ROOT

BASE = ROOT / "config/beds.toml"
ENV = {"BEDS_MYSQL_PASSWORD": "s3cret"}


def test_shipped_roles_run_their_services_and_template_folders() -> None:
    s = load_settings(BASE, environ=ENV)
    assert s.brokers["adminBrokerIn"].service is Service.ADMIN_IN
    assert s.brokers["whBroker"].service is Service.WAREHOUSE
    assert s.brokers["rBroker"].service is Service.REQUESTS
    assert s.templates_dir("tercero") == ROOT / "templates/tercero"
    assert s.templates_dir("appServer") == ROOT / "templates"
    assert s.ops.control_exchange == "beds.control" and s.ops.snapshot_seconds == 2


@pytest.mark.parametrize(("text", "message"), [
    ('[brokers.rBroker]\nservice = "dashboard"\n',
     r"brokers.rBroker.service: expected one of 'requests', 'admin-in'"),
    ('[ops]\nhttp_listen = "9464"\n', r"ops.http_listen"),
    ('[admin]\nsyslog = "tcp://x:514"\n', r"admin.syslog"),
    ('[ops]\nsnapshot_seconds = 0\n', r"ops.snapshot_seconds"),
    ('[ops]\nbogus = 1\n', r"ops.bogus"),
])
def test_bad_ops_config_names_the_key(tmp_path: Path, text: str, message: str) -> None:
    env = tmp_path / "env.toml"
    env.write_text(text)
    with pytest.raises(ConfigError, match=message):
        load_settings(BASE, env, environ=ENV)


def test_commands_round_trip_and_refuse_bad_input() -> None:
    command = decode_command(encode_command("set-instances", {"instances": 3}))
    assert command == Command("set-instances", {"instances": 3})
    assert arg_int(command, "instances", 0, 10) == 3
    with pytest.raises(CommandFailed, match=r"args.instances: expected an integer from 0 to 2"):
        arg_int(command, "instances", 0, 2)
    with pytest.raises(CommandFailed, match="not a JSON command"):
        decode_command(b"\xff")
    with pytest.raises(CommandFailed, match=r"args: expected an object, got list"):
        decode_command(b'{"cmd": "ping", "args": []}')
    with pytest.raises(CommandFailed, match="no such node") as failed:
        result_of({"ok": False, "error": {"code": "NO_ROUTE", "message": "no such node"}})
    assert failed.value.code == "NO_ROUTE"


def test_metrics_snapshot_counts_answers_not_retries() -> None:
    m = NodeMetrics("n1")
    m.observe("film", "fetch", "ok", 0.0015)
    m.observe("film", "fetch", "ok", 0.2)
    m.observe("film", "fetch", "VALIDATION_FAILED", 0.0001)
    m.observe("film", "fetch", "retry", 0.1)            # comes back; counted when answered
    snap = m.snapshot()
    op = snap["ops"]["film.fetch"]
    assert op["outcomes"] == {"ok": 2, "VALIDATION_FAILED": 1}
    assert op["count"] == 3 and sum(op["buckets"]) == 3
    assert op["buckets"][snap["bucket_bounds"].index(0.002)] == 1   # 1.5 ms
    assert snap["errors"] == 1
    assert b'beds_requests_total{op="fetch",outcome="ok",template="film"} 2.0' in m.exposition()


class StubWorker:
    """A broker instance that takes no messages: enough to watch the pool add and drain."""

    def __init__(self, broker: BrokerSettings, instance: int) -> None:
        self.broker, self.instance = broker, instance
        self.name = f"{broker.name}#{instance}"
        self.consuming = asyncio.Event()
        self.inflight = 0
        self.drained = False

    async def run(self, stop: asyncio.Event) -> None:
        self.consuming.set()
        await stop.wait()
        self.drained = True


async def test_pool_scales_up_down_and_drains_exactly_the_removed() -> None:
    broker = BrokerSettings("rBroker", "q", (), (), 2, 1, QueueType.CLASSIC, 0)
    made: list[StubWorker] = []

    def make(b: BrokerSettings, i: int) -> StubWorker:
        made.append(StubWorker(b, i))
        return made[-1]

    pool = Pool(make, 1.0)
    pool.start(broker, 2)
    await pool.scale(broker, 4)
    assert pool.instances("rBroker") == 4 and len(made) == 4
    await asyncio.gather(*(w.consuming.wait() for w in made))
    await pool.scale(broker, 1)
    assert pool.instances("rBroker") == 1
    assert [w.drained for w in made] == [False, True, True, True]
    await pool.stop_all(["rBroker"])
    assert made[0].drained and pool.instances("rBroker") == 0
    resumed = pool.start(broker, 2)
    assert pool.instances("rBroker") == 2
    await asyncio.gather(*(w.consuming.wait() for w in resumed))
    await pool.close()
    assert all(w.drained for w in made)
    assert not pool.start(broker, 3)   # a closed pool starts nothing


def test_status_table_shows_nodes_rates_and_queue_consumers() -> None:
    status = {"nodes": [{"node": "app1", "role": "appServer", "state": "ready",
                         "rates": {"rps": 12.5, "errors_per_s": 0.0, "p95": 4.25},
                         "brokers": {"rBroker": {"instances": 2, "queue": "beds.rBroker"}}}],
              "queues": {"beds.rBroker": {"consumers": 2, "messages": 0}},
              "lost": ["old1"], "dead_letters": 3}
    text = render_status(status)
    assert "app1" in text and "appServer" in text and "12.5" in text and "4.2" in text
    assert "rBroker 2 (queue consumers 2)" in text
    assert "old1" in text and "lost" in text and "dead letters: 3" in text


def test_the_catalogue_refuses_one_template_in_two_role_folders(tmp_path: Path) -> None:
    import shutil

    import tomli_w

    from beds.asyncapi import catalogue_templates
    from beds.errors import TemplateError

    shutil.copytree(ROOT / "templates", tmp_path / "templates")
    env = tmp_path / "env.toml"
    env.write_text(tomli_w.dumps({"node": {"templates_dir": str(tmp_path / "templates")}}))
    settings = load_settings(BASE, env, environ=ENV)
    names = {t.name for t in catalogue_templates(settings)}
    assert {"film", "users", "logs", "payment_archive"} <= names
    shutil.copy(tmp_path / "templates/film.toml", tmp_path / "templates/tercero/film.toml")
    with pytest.raises(TemplateError, match=r"template 'film' is also defined in .*film.toml; "
                                            "a routing key must reach one queue"):
        catalogue_templates(settings)


def test_names_the_node_does_not_serve_share_one_series() -> None:
    served = {("film", "fetch")}
    m = NodeMetrics("n1", known=lambda key: key in served)
    m.observe("film", "fetch", "ok", 0.001)
    for n in range(3000):
        m.observe(f"t{n}", "x", "TEMPLATE_NOT_FOUND", 0.0001)
        m.observe("film", f"op{n}", "OP_NOT_FOUND", 0.0001)
    m.observe(None, None, "BAD_REQUEST", 0.0001)        # the body had no usable name
    assert set(m.ops) == {("film", "fetch"), (UNKNOWN, UNKNOWN)}
    assert m.ops[(UNKNOWN, UNKNOWN)].outcomes == {"TEMPLATE_NOT_FOUND": 3000,
                                                  "OP_NOT_FOUND": 3000, "BAD_REQUEST": 1}
    assert set(m.snapshot()["ops"]) == {"film.fetch", f"{UNKNOWN}.{UNKNOWN}"}
    assert b'template="<unknown>"' in m.exposition()


def test_series_are_capped_even_without_a_list_of_served_names() -> None:
    m = NodeMetrics("n1")
    for n in range(MAX_OPS + 10):
        m.observe(f"t{n}", "x", "ok", 0.001)
    assert len(m.ops) == MAX_OPS + 1 and m.ops[(UNKNOWN, UNKNOWN)].count == 10


def test_retries_requeues_dead_letters_and_redeliveries_are_counted_per_broker() -> None:
    m = NodeMetrics("n1")
    m.observe("film", "fetch", "retry", 0.1, "rBroker")
    m.observe("film", "fetch", "retry", 0.1, "rBroker")
    m.observe("film", "fetch", "requeued", 0.1, "rBroker")
    m.count("wBroker", "dead_lettered")
    m.count("rBroker", "redelivered")
    assert "film.fetch" not in m.snapshot()["ops"]      # none of them is an answer
    text = m.exposition().decode()
    assert 'beds_request_retries_total{broker="rBroker"} 2.0' in text
    assert 'beds_requests_requeued_total{broker="rBroker"} 1.0' in text
    assert 'beds_requests_dead_lettered_total{broker="wBroker"} 1.0' in text
    assert 'beds_redeliveries_total{broker="rBroker"} 1.0' in text
    assert m.snapshot()["broker_events"] == {"rBroker": {"retry": 2, "requeued": 1,
                                                         "redelivered": 1},
                                             "wBroker": {"dead_lettered": 1}}


def test_exposition_has_build_info_process_metrics_and_queue_depths() -> None:
    import platform

    import beds

    m = NodeMetrics("n1")
    m.queues["beds.rBroker"] = (7, 2)
    text = m.exposition().decode()
    assert (f'beds_build_info{{python="{platform.python_version()}",'
            f'version="{beds.__version__}"}} 1.0') in text
    rss = next(line for line in text.splitlines()
               if line.startswith("process_resident_memory_bytes "))
    assert float(rss.split()[1]) > 10_000_000
    assert "process_open_fds " in text and "process_cpu_seconds_total " in text
    assert 'beds_queue_messages{queue="beds.rBroker"} 7.0' in text
    assert 'beds_queue_consumers{queue="beds.rBroker"} 2.0' in text
def test_only_operators_change_nodes_and_every_node_needs_all() -> None:
    # F6: the control plane had no authorization at all.
    from beds.ops.commands import authorize, operators_of

    ops = operators_of(None, "amqp://ops-user:pw@h:5672/")
    assert ops == frozenset({"ops-user"})
    drain = Command("drain", {})
    for user in (None, "node-svc"):
        with pytest.raises(CommandFailed) as refused:
            authorize(drain, user, ops, "node.n1")
        assert refused.value.code == "FORBIDDEN"
    authorize(Command("status", {}), None, ops, "node.all")   # read-only: anyone
    authorize(drain, "ops-user", ops, "node.n1")
    with pytest.raises(CommandFailed) as everyone:
        authorize(drain, "ops-user", ops, "node.all")
    assert everyone.value.code == "NEEDS_ALL"
    authorize(decode_command(encode_command("drain", every=True)), "ops-user", ops, "node.all")


def test_beds_reload_without_a_node_needs_all(capsys: pytest.CaptureFixture[str]) -> None:
    import argparse

    from beds.ops import console
    args = argparse.Namespace(command="reload", node=None, every=False, timeout=1.0, json=False)
    settings = load_settings(ROOT / "config/beds.toml", environ={"BEDS_MYSQL_PASSWORD": "x"})
    assert console.run(settings, args) == 2
    assert "--all" in capsys.readouterr().err
