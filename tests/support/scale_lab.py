"""`make scale-lab` / `make scale-lab-stop`: BEDS at scale on one machine, in the background.

Starts, on loopback: a 3-node RabbitMQ cluster (rabbit_cluster.py), a MariaDB primary with a
GTID replica and a PostgreSQL primary with a streaming standby (dbreplicas.py), the example
schema on both primaries, and two `beds --role appServer` nodes over the cluster. Everything
lives under .scale-lab/ (git-ignored): data dirs, logs, and state.json with every pid, which
`stop` uses to end exactly what `start` started. The env files it writes
(config/scale-lab.toml, config/scale-lab-postgres.toml; git-ignored: they hold the lab's
generated passwords) let any `beds` command use the lab:

    .venv/bin/python -m tests.support.scale_lab start | stop | status
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import tomli_w

from tests.chaos.broker import _alive
from tests.support.dbreplicas import (
    MariadbPair,
    PostgresPair,
    _Pair,
    missing_mariadb,
    missing_postgres,
)
from tests.support.rabbit_cluster import RabbitCluster

ROOT = Path(__file__).resolve().parents[2]
STATE_DIR = ROOT / ".scale-lab"
STATE = STATE_DIR / "state.json"
ENV_FILE = ROOT / "config" / "scale-lab.toml"
PG_ENV_FILE = ROOT / "config" / "scale-lab-postgres.toml"
BEDS = ROOT / ".venv" / "bin" / "beds"
RABBIT_PORTS = (5691, 5692, 5693)     # FIELD-NOTES' ports; free ones when these are taken
NODES = (("lab1", 9571), ("lab2", 9572))
TAG = "scale-lab"


def _port_free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _rabbit_ports() -> list[int]:
    wanted = [*RABBIT_PORTS, *(p + 20000 for p in RABBIT_PORTS)]
    if all(_port_free(p) for p in wanted):
        return list(RABBIT_PORTS)
    ports: list[int] = []
    while len(ports) < 3:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = int(s.getsockname()[1])
        if port < 45000 and _port_free(port + 20000):   # its dist port is port + 20000
            ports.append(port)
    return ports


def write_env(path: Path, urls: list[str], main: dict[str, Any], replica_dsn: str,
              cool: dict[str, Any], namespace: str = "beds") -> None:
    """An env file for nodes and commands on the lab: the cluster's endpoints (leaders placed
    evenly), a datasource whose reads go to its replica, and the exchange and queues under
    `namespace` (nodes on another database must not take each other's requests)."""
    from beds.config import load_settings

    brokers = load_settings(ROOT / "config/beds.toml", environ={"BEDS_MYSQL_PASSWORD": "x"},
                            sections=("brokers",)).brokers
    main = {**main, "replicas": [replica_dsn]}
    data: dict[str, Any] = {
        "amqp": {"urls": urls, "queue_leader_locator": "balanced", "exchange": namespace,
                 "dlx": f"{namespace}.dlx", "dlq": f"{namespace}.dead"},
        "brokers": {name: {"queue": f"{namespace}.{name}"} for name in brokers},
        "datasources": {"main": main, "cool": cool},
    }
    path.write_text(tomli_w.dumps(data))


def _mysql(pair: MariadbPair, database: str, replica: bool) -> dict[str, Any]:
    port = pair.ports["replica" if replica else "primary"]
    return {"engine": "mysql",
            "dsn": f"mysql://beds_app:{pair.app_password}@127.0.0.1:{port}/{database}",
            "admin_dsn": f"mysql://root@127.0.0.1:{pair.ports['primary']}/"}


def _schema(env_file: Path, datasource: str) -> None:
    done = subprocess.run([str(BEDS), "schema", "apply", "--datasource", datasource,
                           "--env", str(env_file)], capture_output=True, text=True, check=False,
                          cwd=ROOT, timeout=300)
    if done.returncode != 0:
        raise RuntimeError(f"beds schema apply --datasource {datasource} --env {env_file}: "
                           f"{done.stderr or done.stdout}")


def _spawn_node(name: str, http_port: int) -> int:
    log = (STATE_DIR / f"{name}.log").open("wb")   # a fresh log: its node.ready is this run's
    env = {**os.environ, "BEDS_NODE_NAME": name, "BEDS_HTTP_LISTEN": f"127.0.0.1:{http_port}"}
    proc = subprocess.Popen([str(BEDS), "--role", "appServer", "--env", str(ENV_FILE)],
                            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)
    log.close()
    return proc.pid


def _wait_ready(name: str, pid: int, timeout: float = 90.0) -> None:
    log = STATE_DIR / f"{name}.log"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if '"node.ready"' in log.read_text(errors="replace"):
            return
        if not _alive(pid):
            raise RuntimeError(f"BEDS node {name} exited; see {log}")
        time.sleep(0.5)
    raise RuntimeError(f"BEDS node {name} not ready within {timeout:.0f}s; see {log}")


def start() -> int:
    if STATE.exists():
        print(f"scale-lab: already running (state in {STATE}); `make scale-lab-stop` first")
        return 1
    for why in (missing_mariadb(), missing_postgres()):
        if why is not None:
            print(f"scale-lab: cannot start: {why}", file=sys.stderr)
            return 1
    STATE_DIR.mkdir(exist_ok=True)
    state: dict[str, Any] = {"rabbit_ports": _rabbit_ports(), "nodes": {}}
    cluster = RabbitCluster(STATE_DIR / "rabbit", TAG, ports=state["rabbit_ports"])
    mariadb = MariadbPair(STATE_DIR / "mariadb")
    postgres = PostgresPair(Path("/tmp") / f"beds-scale-lab-pg-{os.getuid()}")  # postgres user
    try:
        print("scale-lab: starting 3 RabbitMQ nodes (about 30 s on 2 cores) ...", flush=True)
        cluster.start()
        print("scale-lab: starting MariaDB primary + replica, PostgreSQL primary + standby ...",
              flush=True)
        mariadb.start()
        state["mariadb"] = {"home": str(mariadb.home)}
        postgres.start()
        state["postgres"] = {"home": str(postgres.home)}
        STATE.write_text(json.dumps(state, indent=2))
        print("scale-lab: applying the example schema, starting 2 BEDS nodes ...", flush=True)
        main = _mysql(mariadb, "beds", replica=False)
        write_env(ENV_FILE, cluster.urls, main, _mysql(mariadb, "beds", replica=True)["dsn"],
                  cool=_mysql(mariadb, "beds_cool", replica=False))
        pg_main = {"engine": "postgres", "dsn": postgres.primary_dsn,
                   "admin_dsn": postgres.primary_admin_dsn}
        # [datasources.cool] (the warehouse, MariaDB only) must resolve in every env file
        write_env(PG_ENV_FILE, cluster.urls, pg_main, postgres.replica_dsn,
                  cool=_mysql(mariadb, "beds_cool", replica=False), namespace="beds-pg")
        _schema(ENV_FILE, "main")
        _schema(PG_ENV_FILE, "main")
        for name, http_port in NODES:
            state["nodes"][name] = {"pid": _spawn_node(name, http_port), "http": http_port}
            STATE.write_text(json.dumps(state, indent=2))
        for name, node in state["nodes"].items():
            _wait_ready(name, node["pid"])
    except BaseException:
        STATE.write_text(json.dumps(state, indent=2))
        print("scale-lab: start failed; stopping what started", file=sys.stderr)
        for pair in (postgres, mariadb):   # also a pair that failed before it saved its state
            pair.stop()
        stop()
        raise
    print(describe(state, cluster, mariadb, postgres))
    return 0


def describe(state: dict[str, Any], cluster: RabbitCluster, mariadb: MariadbPair,
             postgres: PostgresPair) -> str:
    rel = ENV_FILE.relative_to(ROOT)
    lines = ["", "scale-lab is running (state, logs and data under .scale-lab/):", ""]
    for member in cluster.members:
        lines.append(f"  RabbitMQ {member.node:32} amqp 127.0.0.1:{member.port}  "
                     f"pid {member.beam_pid()}")
    for engine, pair in (("MariaDB   ", mariadb), ("PostgreSQL", postgres)):
        for role in ("primary", "replica"):
            lines.append(f"  {engine} {role:8} 127.0.0.1:{pair.ports[role]:<6} pid "
                         f"{pair.pid(role)}")
    for name, node in state["nodes"].items():
        lines.append(f"  BEDS node {name} (appServer, MariaDB)  http 127.0.0.1:{node['http']}  "
                     f"pid {node['pid']}  log .scale-lab/{name}.log")
    lines += ["", f"  env files: {rel} (MariaDB), {PG_ENV_FILE.relative_to(ROOT)} (PostgreSQL)",
              "  read replicas: configured ([datasources.main] replicas)",
              "", "  call it:", f"    .venv/bin/beds call film fetch --params '{{\"film_id\": 1}}' "
              f"--env {rel}",
              "    curl -s 127.0.0.1:9571/ready     (each node's health, metrics on /metrics)",
              "  where the queues' leaders are:",
              f"    {cluster.members[0].ctl.argv[0]} -n {cluster.members[0].node} list_queues "
              "name type leader members   (with HOME=.scale-lab/rabbit)",
              "  stop everything: make scale-lab-stop", ""]
    return "\n".join(lines)


def _end(pid: int, timeout: float = 30.0) -> None:
    """SIGTERM one pid the lab started; SIGKILL if it is still there after `timeout`."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.2)
    if _alive(pid):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def stop() -> int:
    if not STATE.exists():
        print("scale-lab: not running (no .scale-lab/state.json)")
        return 0
    state = json.loads(STATE.read_text())
    for name, node in state.get("nodes", {}).items():
        _end(node["pid"])   # SIGTERM: it drains, then exits
        print(f"scale-lab: BEDS node {name} stopped")
    for engine in ("postgres", "mariadb"):
        home = Path(state.get(engine, {}).get("home", STATE_DIR / "none"))
        if (home / "pair.json").exists():
            _Pair.attach(home).stop()   # by the pids its start() recorded
            print(f"scale-lab: {engine} primary + replica stopped")
    if "rabbit_ports" in state:
        RabbitCluster(STATE_DIR / "rabbit", TAG, ports=state["rabbit_ports"]).stop()
        print("scale-lab: RabbitMQ cluster stopped")
    # Data dirs go too: the next start installs fresh servers and accounts.
    for home in (STATE_DIR / "rabbit", STATE_DIR / "mariadb",
                 Path(state.get("postgres", {}).get("home", STATE_DIR / "none"))):
        shutil.rmtree(home, ignore_errors=True)
    STATE.unlink()
    return 0


def status() -> int:
    if not STATE.exists():
        print("scale-lab: not running")
        return 1
    state = json.loads(STATE.read_text())
    for name, node in state.get("nodes", {}).items():
        print(f"BEDS {name}: pid {node['pid']} {'running' if _alive(node['pid']) else 'GONE'}")
    cluster = RabbitCluster(STATE_DIR / "rabbit", TAG, ports=state["rabbit_ports"])
    for member in cluster.members:
        try:
            pid = member.beam_pid()
            print(f"RabbitMQ {member.node}: pid {pid} {'running' if _alive(pid) else 'GONE'}")
        except (OSError, ValueError):
            print(f"RabbitMQ {member.node}: not running")
    return 0


if __name__ == "__main__":
    command = sys.argv[1] if len(sys.argv) > 1 else ""
    actions = {"start": start, "stop": stop, "status": status}
    if command not in actions:
        print("usage: python -m tests.support.scale_lab start|stop|status", file=sys.stderr)
        sys.exit(2)
    sys.exit(actions[command]())
