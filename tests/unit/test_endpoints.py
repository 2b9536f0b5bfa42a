"""[amqp] urls (a RabbitMQ cluster's endpoints), queue placement, and how a node's link picks and
rotates endpoints. The rotation tests replace `aiormq.connect` with a scripted stand-in: what is
tested is the order endpoints are tried in, not RabbitMQ (tests/integration/test_failover.py
does that against real nodes)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from beds.brokers.link import AmqpLink, connect_first, shuffled
from beds.brokers.topology import queue_arguments
from beds.config import load_settings, masked
from beds.errors import ConfigError
from tests.support.services import ROOT

BASE = ROOT / "config/beds.toml"
ENV = {"BEDS_MYSQL_PASSWORD": "s3cret"}
A, B, C = (f"amqp://u:pw@127.0.0.1:{port}/" for port in (5691, 5692, 5693))


def settings(tmp_path: Path, text: str, environ: dict[str, str] | None = None) -> Any:
    env = tmp_path / "env.toml"
    env.write_text(text)
    return load_settings(BASE, env, environ={**ENV, **(environ or {})})


def test_urls_list_wins_over_url(tmp_path: Path) -> None:
    s = settings(tmp_path, f'[amqp]\nurl = "amqp://x@h:1/"\nurls = ["{A}", "{B}", "{C}"]\n')
    assert s.amqp.endpoints == (A, B, C)
    assert s.amqp.url == A          # the user the node's connections log in as


def test_urls_from_the_environment_comma_separated(tmp_path: Path) -> None:
    s = settings(tmp_path, "", {"BEDS_AMQP_URLS": f"{A}, {B}"})
    assert s.amqp.endpoints == (A, B)


def test_without_urls_the_one_url_is_the_endpoint(tmp_path: Path) -> None:
    s = settings(tmp_path, '[amqp]\nurl = "amqp://x@h:1/"\n')
    assert s.amqp.endpoints == ("amqp://x@h:1/",)
    assert s.amqp.quorum_group_size is None and s.amqp.leader_locator is None


@pytest.mark.parametrize(("text", "message"), [
    ('urls = ["http://h/"]', r"amqp.urls: expected a list of amqp:// or amqps:// URLs .*"
                             r"got an entry 'http://h/'"),
    ("urls = [5672]", r"amqp.urls: expected a list of amqp:// .* got \[5672\]"),
    (f'urls = ["{A}", "{A}"]', r"amqp.urls: the same endpoint is listed twice"),
    ('queue_leader_locator = "random"', r"amqp.queue_leader_locator: expected one of "
                                        r"'client-local', 'balanced', got 'random'"),
    ("quorum_initial_group_size = 0", r"amqp.quorum_initial_group_size: expected int >= 1"),
])
def test_bad_cluster_settings_name_the_key(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        settings(tmp_path, f"[amqp]\n{text}\n")


def test_placement_reaches_every_quorum_queue_argument(tmp_path: Path) -> None:
    s = settings(tmp_path, '[amqp]\nquorum_initial_group_size = 3\n'
                           'queue_leader_locator = "balanced"\n')
    args = queue_arguments(s.amqp, s.brokers["rBroker"])
    assert args["x-quorum-initial-group-size"] == 3
    assert args["x-queue-leader-locator"] == "balanced"


def test_masked_hides_every_password_of_the_env_form() -> None:
    shown = masked({"amqp": {"urls": f"{A},{B}"}})["amqp"]["urls"]
    assert "pw" not in shown and shown.count("u:***@") == 2


def test_shuffled_keeps_every_endpoint() -> None:
    assert sorted(shuffled([A, B, C])) == [A, B, C]


class ScriptedBroker:
    """Stands in for aiormq.connect: refuses the ports listed in `down`; records each try."""

    def __init__(self, down: set[int]) -> None:
        self.down = down
        self.tried: list[int] = []

    async def connect(self, url: str) -> Any:
        port = int(url.split(":")[3].split("/")[0])
        self.tried.append(port)
        if port in self.down:
            raise ConnectionRefusedError(f"port {port} refused")
        return FakeConnection()


class FakeConnection:
    is_closed = False

    async def close(self) -> None:
        self.is_closed = True


@pytest.fixture
def broker(monkeypatch: pytest.MonkeyPatch) -> ScriptedBroker:
    scripted = ScriptedBroker(set())
    monkeypatch.setattr("aiormq.connect", scripted.connect)   # as beds.brokers.link calls it
    return scripted


async def test_a_dead_first_endpoint_is_skipped_at_once(broker: ScriptedBroker) -> None:
    broker.down = {5691}
    link = AmqpLink([A, B, C], "t", heartbeat=30, max_backoff=5)
    await link.connection()
    assert broker.tried == [5691, 5692]
    assert link.endpoint == "127.0.0.1:5692/"


async def test_a_lost_connection_moves_to_the_next_endpoint(broker: ScriptedBroker) -> None:
    link = AmqpLink([A, B, C], "t", heartbeat=30, max_backoff=5)
    conn = await link.connection()
    await conn.close()                       # the RabbitMQ node went away
    broker.down = {5691}
    await link.connection()
    assert broker.tried == [5691, 5692]      # not back to the lost node first
    assert link.connects == 2


async def test_a_round_without_an_answer_backs_off_then_retries(broker: ScriptedBroker) -> None:
    broker.down = {5691, 5692, 5693}
    link = AmqpLink([A, B, C], "t", heartbeat=30, max_backoff=0.1)
    connecting = asyncio.ensure_future(link.connection())
    while len(broker.tried) < 6:             # two full rounds, each endpoint once per round
        await asyncio.sleep(0.01)
    broker.down = set()
    await asyncio.wait_for(connecting, 5)
    assert broker.tried[:6] == [5691, 5692, 5693] * 2


async def test_connect_first_names_every_endpoint_that_refused(broker: ScriptedBroker) -> None:
    broker.down = {5691, 5692}
    with pytest.raises(ConnectionError, match=r"127.0.0.1:5691/: .*127.0.0.1:5692/: "):
        await connect_first([A, B])
    assert not (await connect_first([A, B, C])).is_closed
