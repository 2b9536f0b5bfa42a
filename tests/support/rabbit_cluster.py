"""A 3-node RabbitMQ cluster on loopback, for the scale scenarios and `make scale-lab`.

Each member is a tests/chaos/broker.py PrivateRabbit (its own node name, AMQP and distribution
ports, data and log dirs) sharing one HOME, so one Erlang cookie; c2 and c3 join c1. Tuned to fit
next to everything else on 2 cores: one scheduler per node, no busy waiting, a 512 MB memory
watermark (FIELD-NOTES, "RabbitMQ cluster on one machine"). Never touches the shared RabbitMQ:
every command names a private node, and members are stopped by the pid in their own pid file.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from pathlib import Path

from tests.chaos.broker import CtlError, PrivateRabbit, RabbitCtl


class RabbitCluster:
    """`size` private RabbitMQ nodes under `home`, clustered with the first."""

    def __init__(self, home: Path, tag: str, size: int = 3,
                 ports: Sequence[int] | None = None) -> None:
        self.home = home
        self.tag = tag
        ports = list(ports) if ports is not None else [0] * size
        self.members = [
            PrivateRabbit(home / f"c{i + 1}", f"{tag}-c{i + 1}", port=ports[i] or None,
                          dist_port=(ports[i] + 20000) if ports[i] else None,
                          cookie_home=home, small=True)
            for i in range(size)
        ]

    @property
    def urls(self) -> list[str]:
        return [m.url for m in self.members]

    @property
    def ctl(self) -> RabbitCtl:
        """rabbitmqctl on the first member (any live member answers for the cluster)."""
        return self.members[0].ctl

    def start(self, timeout: float = 120.0) -> None:
        """Boot every member side by side, then join the others to the first."""
        self.home.mkdir(parents=True, exist_ok=True)
        try:
            for member in self.members:
                member.launch()
            for member in self.members:
                member.wait_started(timeout)
            first = self.members[0].node
            for member in self.members[1:]:
                member.ctl_sync("stop_app")
                member.ctl_sync("join_cluster", first)
                member.ctl_sync("start_app")
            running = self.running_nodes()
            if len(running) != len(self.members):
                raise CtlError(f"cluster formed with {running}, expected every member")
        except BaseException:
            self.stop()
            raise

    def running_nodes(self, via: PrivateRabbit | None = None) -> list[str]:
        text = (via or self.members[0]).ctl_sync("cluster_status", "--formatter", "json")
        return list(json.loads(text[text.index("{"):])["running_nodes"])

    def member_at(self, port: int) -> PrivateRabbit:
        return next(m for m in self.members if m.port == port)

    def member_named(self, node: str) -> PrivateRabbit:
        return next(m for m in self.members if m.node == node)

    def stop(self) -> None:
        """Stop every member (by pid file); members already gone are skipped."""
        for member in reversed(self.members):
            member.stop_by_pid()
            member.halt()


async def queue_leaders(ctl: RabbitCtl, names: Sequence[str]) -> dict[str, str]:
    """{queue: node of its quorum leader} for the named queues."""
    text = await ctl("list_queues", "--quiet", "--no-table-headers", "name", "leader")
    wanted = set(names)
    out = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[0] in wanted:
            out[parts[0]] = parts[1]
    return out


async def connection_ports(ctl: RabbitCtl) -> dict[str, int]:
    """{client-provided connection name: the AMQP port (so the member) it is connected to}."""
    text = await ctl("list_connections", "--quiet", "--no-table-headers", "port",
                     "client_properties")
    out = {}
    for line in text.splitlines():
        port, _, props = line.partition("\t")
        name = re.search(r'"connection_name",(?:longstr,<<)?"([^"]*)"', props)
        if name and port.strip().isdigit():
            out[name.group(1)] = int(port.strip())
    return out
