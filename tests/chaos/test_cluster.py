"""Scale scenarios 25a-25d: BEDS nodes over a private 3-node RabbitMQ cluster
(tests/support/rabbit_cluster.py), `[amqp] urls` listing all three, quorum queues with a member
on each node.

  25a  SIGKILL the RabbitMQ node that holds the request queues' leaders and the node's
       connections, under load: the node moves to a survivor; the time from the kill to the
       first answered request sent after it is measured (and must stay under 10 s).
  25b  stop a follower RabbitMQ node (no leader, no connection on it): callers see no error.
  25c  stop two of three (no quorum): callers see timeouts, the node keeps answering /live and
       loses nothing it confirmed; after both come back everything is served.
  25d  three BEDS nodes over the cluster, SIGKILL one under load.

The cluster is started once for this module (about 30 s) and made whole again after each
scenario. It never touches the shared RabbitMQ."""

from __future__ import annotations

import asyncio
import signal
import socket
import time
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

from tests.chaos.broker import PrivateRabbit
from tests.chaos.checker import RESULTS
from tests.chaos.lab import ChaosStack, Lab
from tests.chaos.workload import AT_LEAST_ONCE, Workload, wait_until
from tests.support.node_process import NodeProcess
from tests.support.rabbit_cluster import RabbitCluster, connection_ports, queue_leaders
from tests.support.services import SESSION, missing

pytestmark = [pytest.mark.rabbitmq, pytest.mark.mariadb, pytest.mark.chaos]
FIRST_REPLY_LIMIT = 10.0   # seconds from the kill (issue 13)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RabbitCluster]:
    why = PrivateRabbit.available()
    if why is not None:
        missing(f"cannot start a private RabbitMQ cluster: {why}")
    made = RabbitCluster(tmp_path_factory.mktemp("cluster"), f"cl-{SESSION}")
    made.start()
    try:
        yield made
    finally:
        made.stop()


async def heal(cluster: RabbitCluster) -> None:
    """Every member running and in the cluster again (a killed one is started anew: its data
    directory makes it rejoin)."""
    for member in cluster.members:
        try:
            alive = member.ctl_sync("eval", "rabbit:is_running().", timeout=30).strip() == "true"
        except Exception:   # the node's VM is gone: start it again
            member.halt()
            await asyncio.to_thread(member.start)
            continue
        if not alive:
            await member.ctl("start_app")
    await wait_until(lambda: len(cluster.running_nodes()) == len(cluster.members), 60,
                     "every member back in the cluster", interval=1)


def cluster_stack(lab: Lab, cluster: RabbitCluster, tag: str, via: PrivateRabbit,
                  http: bool = False) -> ChaosStack:
    """A stack whose node lists every member; `via`: the member the checker's own connections
    (queue depths, DLQ, clean-up) use."""
    amqp: dict[str, Any] = {"urls": cluster.urls, "heartbeat": 5}
    overrides: dict[str, Any] = {"amqp": amqp}
    if http:
        overrides["ops"] = {"http_listen": f"127.0.0.1:{_free_port()}"}
    return lab.stack(tag, rabbit=via, overrides=overrides)


def use_member(stack: ChaosStack, wl: Workload | None, member: PrivateRabbit) -> None:
    """Point the checker's own connections at `member` (the one they used is going away)."""
    stack.url, stack.ctl = member.url, member.ctl
    if wl is not None:
        wl.amqp_url, wl.ctl = member.url, member.ctl


async def node_member(cluster: RabbitCluster, node: str) -> PrivateRabbit:
    """The member the node's consume connection is on."""
    ports = await connection_ports(cluster.ctl)
    return cluster.member_at(ports[f"beds:{node}:consume"])


async def consumers_back(stack: ChaosStack, gone: PrivateRabbit, within: float) -> None:
    """Every consumer of the node registered again on a live member. RabbitMQ's consumer count
    is no proof here: a quorum queue keeps counting the consumers of a member that went down
    ("suspected down", in case it was only cut off) until that member returns (seen on 3.10);
    so count the consumers whose channel lives on another member."""
    expected = {stack.queue(b): stack.settings.brokers[b].instances
                for b in ("rBroker", "wBroker")}
    seen: dict[str, int] = {}

    async def registered() -> bool:
        text = await stack.ctl("list_consumers", "--quiet", "--no-table-headers", "queue_name",
                               "channel_pid")
        seen.clear()
        for line in text.splitlines():
            queue, _, pid = line.partition("\t")
            if queue in expected and gone.node not in pid:
                seen[queue] = seen.get(queue, 0) + 1
        return seen == expected

    try:
        await wait_until(registered, within, "consumers back", interval=0.5)
    except AssertionError:
        raise AssertionError(f"consumers on live members {seen}, expected {expected}") from None


def first_reply_after(wl: Workload, moment: float) -> float | None:
    """Seconds from `moment` to the first ok reply to a copy published after it."""
    times = [at for r in wl.requests
             for (cid, reply), at in zip(r.replies, r.reply_times, strict=True)
             if reply.get("ok") and r.published.get(cid, 0) > moment]
    return min(times) - moment if times else None


def note(row_index: int, text: str) -> None:
    row = RESULTS[row_index]
    RESULTS[row_index] = type(row)(**{**row.__dict__,
                                      "notes": f"{row.notes}; {text}" if row.notes else text})


async def test_25a_sigkill_the_rabbitmq_node_with_the_leaders_and_connections(
        lab: Lab, cluster: RabbitCluster) -> None:
    await heal(cluster)
    stack = cluster_stack(lab, cluster, "qqkill", cluster.members[0])
    node = await lab.spawn(stack.env_file)
    target = await node_member(cluster, "chaos-qqkill")
    queues = [stack.queue("rBroker"), stack.queue("wBroker")]
    leaders = await queue_leaders(cluster.ctl, queues)
    # client-local placement: the queues' leaders are where the node declared them
    assert set(leaders.values()) == {target.node}, leaders
    survivor = next(m for m in cluster.members if m is not target)
    use_member(stack, None, survivor)
    wl = lab.workload("25a RabbitMQ node with the leaders and the node's links SIGKILLed",
                      stack, min_sent=300, allow={"re-executed": AT_LEAST_ONCE})
    wl.caller.urls = [m.url for m in cluster.members if m is not target] + [target.url]
    load = wl.load()
    try:
        await load.progress(100)
        links = len(node.events("amqp.connected"))
        killed_at = time.time()
        target.kill()
        await node.wait_event("amqp.connected", count=links + 2, timeout=30)
        await consumers_back(stack, target, within=30)
        await load.progress(150, within=60)
    finally:
        await load.stop()
    first = first_reply_after(wl, killed_at)
    moved = await queue_leaders(survivor.ctl, queues)
    row = await wl.finish()
    note(-1, f"first reply {first:.1f} s after the kill" if first is not None
         else "no reply after the kill")
    wl.assert_clean(row)
    assert first is not None and first < FIRST_REPLY_LIMIT, f"first reply after {first} s"
    assert target.node not in moved.values(), f"leaders did not move: {moved}"
    assert node.proc.returncode is None
    await heal(cluster)


async def test_25b_stop_a_follower_rabbitmq_node(lab: Lab, cluster: RabbitCluster) -> None:
    await heal(cluster)
    stack = cluster_stack(lab, cluster, "qqfollower", cluster.members[0])
    node = await lab.spawn(stack.env_file)
    home = await node_member(cluster, "chaos-qqfollower")
    follower = next(m for m in cluster.members if m is not home)
    use_member(stack, None, home)
    wl = lab.workload("25b a follower RabbitMQ node stopped", stack, min_sent=300)
    wl.caller.urls = [home.url]   # callers and node away from the follower
    load = wl.load()
    try:
        await load.progress(100)
        await follower.ctl("stop_app")
        try:
            await load.progress(150, within=60)
        finally:
            await follower.ctl("start_app")
        await load.progress(50)
    finally:
        await load.stop()
    row = await wl.finish()
    wl.assert_clean(row)
    failed = [r for r in wl.requests if r.refused or (r.codes() and "ok" not in r.codes())]
    assert not failed, f"callers saw errors: {[(r.rid, r.refused, r.codes()) for r in failed]}"
    assert node.proc.returncode is None
    await heal(cluster)


async def test_25c_two_of_three_rabbitmq_nodes_stopped(lab: Lab, cluster: RabbitCluster) -> None:
    await heal(cluster)
    stack = cluster_stack(lab, cluster, "qqminority", cluster.members[0], http=True)
    node = await lab.spawn(stack.env_file)
    home = await node_member(cluster, "chaos-qqminority")
    others = [m for m in cluster.members if m is not home]
    use_member(stack, None, home)
    # The node's links stay up (its member is the one left): nothing may run twice.
    wl = lab.workload("25c two of three RabbitMQ nodes stopped (no quorum) 15 s", stack,
                      min_sent=200)
    wl.caller.urls = [home.url]
    load = wl.load(timeout=4)
    live = stack.settings.ops.http_listen
    try:
        await load.progress(100)
        for member in others:
            await member.ctl("stop_app")
        try:
            outage_from = wl.answered()
            await asyncio.sleep(15)                          # the fault
            assert await _live(live), "the node stopped answering /live without quorum"
            unconfirmed = sum(1 for r in wl.requests if r.refused)
            answered_during = wl.answered() - outage_from
        finally:
            for member in others:
                await member.ctl("start_app")
        back_at = time.time()
        await wait_until(lambda: len(cluster.running_nodes(home)) == 3, 60, "quorum back",
                         interval=1)
        await lab.wait_serving(stack, within=60)
        await load.progress(100, within=90)
    finally:
        await load.stop()
    first = first_reply_after(wl, back_at)
    row = await wl.finish(within=90)
    note(-1, f"{unconfirmed} publishes unconfirmed during the outage (callers saw timeouts), "
             f"{answered_during} answered during it (sent before it began); first reply "
             f"{first:.1f} s after both members were started again" if first is not None
             else "no reply after recovery")
    wl.assert_clean(row)
    assert unconfirmed > 0, "every publish was confirmed without quorum: the fault hit nothing"
    assert node.proc.returncode is None
    await heal(cluster)


async def test_25d_three_beds_nodes_one_sigkilled(lab: Lab, cluster: RabbitCluster) -> None:
    await heal(cluster)
    stack = cluster_stack(lab, cluster, "qqthree", cluster.members[0])
    nodes: list[NodeProcess] = [await lab.spawn(lab.env_variant(stack, f"chaos-qqthree-{i}"))
                                for i in range(3)]
    wl = lab.workload("25d three BEDS nodes over three RabbitMQ nodes, one SIGKILLed", stack,
                      min_sent=300, allow={"re-executed": AT_LEAST_ONCE})
    wl.caller.urls = cluster.urls
    await lab.wait_serving(stack, nodes=3)
    load = wl.load()
    try:
        await load.progress(150)
        nodes[0].proc.send_signal(signal.SIGKILL)
        await nodes[0].proc.wait()
        await lab.wait_serving(stack, nodes=2, within=30)   # its consumers are gone
        await load.progress(150, within=60)
    finally:
        await load.stop()
    row = await wl.finish()
    wl.assert_clean(row)
    assert all(n.proc.returncode is None for n in nodes[1:])


async def _live(listen: str) -> bool:
    def get() -> bool:
        with urllib.request.urlopen(f"http://{listen}/live", timeout=5) as answer:
            return bool(answer.status == 200)
    try:
        return await asyncio.to_thread(get)
    except OSError:
        return False


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
