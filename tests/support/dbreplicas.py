"""Private database pairs for replica tests, chaos scenarios, the bench and `make scale-lab`: a
MariaDB primary with a GTID replica, a PostgreSQL primary with a streaming standby.

Each pair lives entirely under its `home` directory (data dirs, sockets, logs), listens on free
loopback ports chosen at `start()`, and is stopped by the pids it started. The shared MariaDB and
PostgreSQL on this machine are never touched. The API is synchronous (a few short control
statements) so a plain script can drive it as well as a test:

    pair = MariadbPair(home)          # or PostgresPair(home)
    pair.start()                      # ~10-20 s: install, start both, replicate, create accounts
    pair.primary_dsn / pair.replica_dsn              # the application account
    pair.primary_admin_dsn / pair.replica_admin_dsn  # the superuser
    pair.pause_replication(); pair.resume_replication()
    pair.kill_replica(); pair.restart_replica()
    pair.stop()

From a shell (`make scale-lab`): `python -m tests.support.dbreplicas start mariadb|postgres HOME`
prints the DSNs and pids as JSON and leaves the pair running (state in HOME/pair.json);
`... show HOME` prints them again, `... stop HOME` stops it (`_Pair.attach(HOME)` in Python).

Recipes: ../shared/FIELD-NOTES.md "MariaDB primary + replica on one machine". PostgreSQL's tools
refuse to run as root, so they run as the `postgres` user (runuser), on data directories that
user owns.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pymysql

PG_BIN = Path(os.environ.get("BEDS_PG_BIN", "/usr/lib/postgresql/15/bin"))
APP_USER = "beds_app"
DATABASE = "beds"


class PairError(RuntimeError):
    """A pair could not be started or controlled; the message says which step and why."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def missing_mariadb() -> str | None:
    """Why a MariaDB pair cannot run here, or None."""
    for tool in ("mariadb-install-db", "mariadbd"):
        if not shutil.which(tool) and not Path(f"/usr/sbin/{tool}").exists():
            return f"{tool} is not installed (apt-get install mariadb-server)"
    return None


def missing_postgres() -> str | None:
    """Why a PostgreSQL pair cannot run here, or None."""
    for tool in ("initdb", "pg_ctl", "pg_basebackup", "postgres", "psql"):
        if not (PG_BIN / tool).exists():
            return f"{PG_BIN / tool} is missing (apt-get install postgresql-15, or set BEDS_PG_BIN)"
    if shutil.which("runuser") is None:
        return "runuser is missing (PostgreSQL's tools must run as the postgres user)"
    return None


def _wait(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.2)
    raise PairError(f"{what}: not within {timeout:.0f}s")


def _run(argv: list[str], what: str, timeout: float = 120.0) -> str:
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)
    if proc.returncode != 0:
        raise PairError(f"{what} exited {proc.returncode}: {proc.stderr.strip() or proc.stdout}")
    return proc.stdout


def _stop_pid(pid: int, sig: signal.Signals = signal.SIGTERM, timeout: float = 30.0) -> None:
    """Signal one pid we started and wait until it is gone (SIGKILL after `timeout`)."""
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        try:  # reap it if it is our child
            if os.waitpid(pid, os.WNOHANG)[0] == pid:
                return
        except ChildProcessError:
            pass
        time.sleep(0.1)
    os.kill(pid, signal.SIGKILL)


class _Pair:
    """What both pairs share: where they live, their ports and their DSNs."""

    scheme = ""
    admin_user = ""

    def __init__(self, home: Path, database: str = DATABASE) -> None:
        self.home = Path(home)
        self.database = database
        self.app_password = secrets.token_hex(12)
        self.ports = {"primary": 0, "replica": 0}
        self.pids: dict[str, int] = {}   # role -> the server's (postmaster's) pid

    def pid(self, role: str) -> int:
        return self.pids[role]

    def save(self) -> None:
        """Write ports, pids and the app password to `home/pair.json`, for `attach`."""
        state = {"kind": type(self).__name__, "database": self.database,
                 "app_password": self.app_password, "ports": self.ports, "pids": self.pids}
        (self.home / "pair.json").write_text(json.dumps(state))

    @classmethod
    def attach(cls, home: Path) -> _Pair:
        """The pair a `start()` in another process left running under `home` (to stop it, or to
        read its DSNs)."""
        state = json.loads((Path(home) / "pair.json").read_text())
        kind = {"MariadbPair": MariadbPair, "PostgresPair": PostgresPair}[state["kind"]]
        pair = kind(Path(home), state["database"])
        pair.app_password, pair.ports, pair.pids = (state["app_password"], state["ports"],
                                                    state["pids"])
        return pair

    def dsn(self, role: str, admin: bool = False) -> str:
        """`role` is "primary" or "replica"; admin=True gives the superuser's DSN."""
        account = self.admin_user if admin else f"{APP_USER}:{self.app_password}"
        return f"{self.scheme}://{account}@127.0.0.1:{self.ports[role]}/{self.database}"

    @property
    def primary_dsn(self) -> str:
        return self.dsn("primary")

    @property
    def replica_dsn(self) -> str:
        return self.dsn("replica")

    @property
    def primary_admin_dsn(self) -> str:
        return self.dsn("primary", admin=True)

    @property
    def replica_admin_dsn(self) -> str:
        return self.dsn("replica", admin=True)

    def start(self) -> None:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> _Pair:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


class MariadbPair(_Pair):
    """A MariaDB primary (binlog, server-id 1) and a read-only GTID replica (server-id 2)."""

    scheme = "mysql"
    admin_user = "root"

    def __init__(self, home: Path, database: str = DATABASE) -> None:
        super().__init__(home, database)
        self.procs: dict[str, subprocess.Popen[bytes]] = {}   # the servers this process started

    # ---- lifecycle ----
    def start(self) -> None:
        self.home.mkdir(parents=True, exist_ok=True)
        primary_dir = self.home / "primary"
        if not primary_dir.exists():
            _run(["mariadb-install-db", "--no-defaults", "--user=root", f"--datadir={primary_dir}",
                  "--auth-root-authentication-method=normal", "--skip-test-db"],
                 "mariadb-install-db")
            # both servers start from the same system tables; the primary's binlog (empty so
            # far) then carries everything else to the replica
            shutil.copytree(primary_dir, self.home / "replica")
        for role in ("primary", "replica"):
            self.ports[role] = free_port()
            self._spawn(role)
        self._setup()
        self.save()

    def _spawn(self, role: str) -> None:
        datadir = self.home / role
        argv = ["mariadbd", "--no-defaults", "--user=root", f"--datadir={datadir}",
                f"--port={self.ports[role]}", f"--socket={self.home / role}.sock",
                f"--pid-file={self.home / role}.pid", f"--log-error={self.home / role}.err",
                "--bind-address=127.0.0.1", "--skip-name-resolve", "--performance-schema=OFF",
                "--innodb-buffer-pool-size=32M", "--max-connections=200",
                "--log-bin=binlog", "--binlog-format=ROW", "--log-slave-updates"]
        if role == "primary":
            argv += ["--server-id=1"]
        else:
            argv += ["--server-id=2", "--read-only=1"]
        self.procs[role] = subprocess.Popen(argv, stdout=subprocess.DEVNULL,
                                            stderr=subprocess.DEVNULL, start_new_session=True)
        self.pids[role] = self.procs[role].pid
        _wait(lambda: self._answers(role), 60, f"mariadbd {role} on port {self.ports[role]}")

    def _answers(self, role: str) -> bool:
        if self.procs[role].poll() is not None:
            log = (self.home / f"{role}.err")
            tail = log.read_text(errors="replace")[-800:] if log.exists() else ""
            raise PairError(f"mariadbd {role} exited {self.procs[role].returncode}: {tail}")
        # A raw probe first: pymysql leaves its socket open when a connect fails.
        with socket.socket(socket.AF_UNIX) as probe:
            try:
                probe.connect(str(self.home / f"{role}.sock"))
            except OSError:
                return False
        self.query(role, "SELECT 1")
        return True

    def _setup(self) -> None:
        repl_password = secrets.token_hex(12)
        # root over TCP from 127.0.0.1 (skip-name-resolve: 'localhost' only matches the socket)
        for role in ("primary", "replica"):
            self.query(role, "SET sql_log_bin = 0",
                       "CREATE USER IF NOT EXISTS 'root'@'127.0.0.1'",
                       "GRANT ALL ON *.* TO 'root'@'127.0.0.1' WITH GRANT OPTION")
        self.query("primary",
                   f"CREATE USER 'repl'@'127.0.0.1' IDENTIFIED BY '{repl_password}'",
                   "GRANT REPLICATION SLAVE ON *.* TO 'repl'@'127.0.0.1'",
                   f"CREATE DATABASE `{self.database}`",
                   f"CREATE USER '{APP_USER}'@'%' IDENTIFIED BY '{self.app_password}'",
                   f"GRANT ALL ON `{self.database}`.* TO '{APP_USER}'@'%'")
        self.query("replica",
                   f"CHANGE MASTER TO MASTER_HOST='127.0.0.1', MASTER_PORT={self.ports['primary']}, "
                   f"MASTER_USER='repl', MASTER_PASSWORD='{repl_password}', "
                   "MASTER_USE_GTID=slave_pos",
                   "START SLAVE")
        self.wait_caught_up()

    def stop(self) -> None:
        for role in ("replica", "primary"):
            self._stop_server(role, signal.SIGTERM)

    def _stop_server(self, role: str, sig: signal.Signals) -> None:
        pid = self.pids.pop(role, None)
        if pid is not None:
            _stop_pid(pid, sig)
        proc = self.procs.pop(role, None)
        if proc is not None:
            proc.wait()

    # ---- control ----
    def query(self, role: str, *statements: str) -> list[tuple[Any, ...]]:
        """Run statements as root on one server (over its socket); rows of the last one."""
        conn = pymysql.connect(unix_socket=str(self.home / f"{role}.sock"), user="root",
                               autocommit=True, connect_timeout=5)
        try:
            with conn.cursor() as cur:
                rows: list[tuple[Any, ...]] = []
                for statement in statements:
                    cur.execute(statement)
                    rows = list(cur.fetchall())
                return rows
        finally:
            conn.close()

    def wait_caught_up(self, timeout: float = 30.0) -> None:
        """Until the replica has applied everything the primary has written so far."""
        gtid = self.query("primary", "SELECT @@gtid_binlog_pos")[0][0]
        if gtid:
            done = self.query("replica", f"SELECT MASTER_GTID_WAIT('{gtid}', {timeout})")[0][0]
            if done != 0:
                raise PairError(f"the replica did not reach {gtid} within {timeout}s")

    def pause_replication(self) -> None:
        """The replica keeps receiving the binlog but stops applying it: it lags."""
        self.query("replica", "STOP SLAVE SQL_THREAD")

    def resume_replication(self) -> None:
        self.query("replica", "START SLAVE SQL_THREAD")

    def kill_replica(self) -> None:
        self._stop_server("replica", signal.SIGKILL)

    def restart_replica(self) -> None:
        """Start the replica again on the same port; it resumes replicating by itself."""
        self._spawn("replica")
        self.query("replica", "START SLAVE")
        self.save()


class PostgresPair(_Pair):
    """A PostgreSQL 15 primary and a hot standby made with pg_basebackup -R (streaming)."""

    scheme = "postgresql"
    admin_user = "postgres"

    def __init__(self, home: Path, database: str = DATABASE) -> None:
        super().__init__(home, database)

    def _as_postgres(self, argv: list[str], what: str) -> str:
        return _run(["runuser", "-u", "postgres", "--", *argv], what)

    def start(self) -> None:
        self.home.mkdir(parents=True, exist_ok=True)
        shutil.chown(self.home, "postgres", "postgres")
        self.home.chmod(0o700)
        try:
            self._as_postgres(["test", "-w", str(self.home)], "access check")
        except PairError:
            raise PairError(f"the postgres user cannot write {self.home}: give the pair a home "
                            "whose parent directories it may enter (e.g. under /tmp)") from None
        primary_dir = self.home / "primary"
        if not primary_dir.exists():
            self._as_postgres([str(PG_BIN / "initdb"), "-D", str(primary_dir), "-U", "postgres",
                               "--auth=trust", "--no-sync"], "initdb")
        self.ports["primary"] = free_port()
        self._pg_start("primary")
        self.psql("primary", f"CREATE ROLE {APP_USER} LOGIN PASSWORD '{self.app_password}'",
                  db="postgres")
        self.psql("primary", f"CREATE DATABASE {self.database} OWNER {APP_USER}", db="postgres")
        replica_dir = self.home / "replica"
        if not replica_dir.exists():
            self._as_postgres([str(PG_BIN / "pg_basebackup"), "-h", "127.0.0.1",
                               "-p", str(self.ports["primary"]), "-U", "postgres",
                               "-D", str(replica_dir), "-R", "-X", "stream", "--no-sync",
                               "--checkpoint=fast"],
                              "pg_basebackup")
        self.ports["replica"] = free_port()
        self._pg_start("replica")
        self.wait_caught_up()
        self.save()

    def _pg_start(self, role: str) -> None:
        datadir = self.home / role
        options = (f"-p {self.ports[role]} -k {self.home} -c listen_addresses=127.0.0.1 "
                   "-c shared_buffers=16MB -c max_connections=100 -c fsync=off "
                   "-c wal_level=replica -c max_wal_senders=5 -c hot_standby=on "
                   "-c hot_standby_feedback=on")
        self._as_postgres([str(PG_BIN / "pg_ctl"), "-D", str(datadir), "-l",
                           str(self.home / f"{role}.log"), "-o", options, "-w", "-t", "60",
                           "start"], f"pg_ctl start {role}")
        self.pids[role] = int((datadir / "postmaster.pid").read_text().split()[0])

    def stop(self) -> None:
        for role in ("replica", "primary"):
            pid = self.pids.pop(role, None)
            if pid is not None:
                _stop_pid(pid, signal.SIGINT)   # SIGINT: the postmaster's "fast" shutdown

    def psql(self, role: str, sql: str, db: str | None = None) -> list[list[str]]:
        """One statement as postgres on one server; rows as lists of text."""
        out = _run([str(PG_BIN / "psql"), "-h", "127.0.0.1", "-p", str(self.ports[role]),
                    "-U", "postgres", "-d", db or self.database, "-v", "ON_ERROR_STOP=1",
                    "-AtF", "\t", "-c", sql], f"psql on {role}: {sql}", timeout=60)
        return [line.split("\t") for line in out.splitlines()]

    def wait_caught_up(self, timeout: float = 30.0) -> None:
        target = self.psql("primary", "SELECT pg_current_wal_lsn()", db="postgres")[0][0]
        sql = f"SELECT pg_last_wal_replay_lsn() >= '{target}'::pg_lsn"
        _wait(lambda: self.psql("replica", sql, db="postgres")[0][0] == "t", timeout,
              f"standby replaying up to {target}")

    def pause_replication(self) -> None:
        """The standby keeps receiving WAL but stops replaying it: it lags."""
        self.psql("replica", "SELECT pg_wal_replay_pause()", db="postgres")

    def resume_replication(self) -> None:
        self.psql("replica", "SELECT pg_wal_replay_resume()", db="postgres")

    def kill_replica(self) -> None:
        """SIGQUIT: the postmaster's immediate shutdown (no checkpoint, every session cut), which
        unlike SIGKILL does not leave orphaned backends holding its shared memory."""
        pid = self.pids.pop("replica")
        _stop_pid(pid, signal.SIGQUIT)

    def restart_replica(self) -> None:
        self._pg_start("replica")
        self.save()


def main(argv: list[str] | None = None) -> int:
    """`python -m tests.support.dbreplicas start mariadb|postgres HOME` starts a pair and prints
    its DSNs as JSON (for `make scale-lab`); `stop HOME` stops the pair started there."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m tests.support.dbreplicas")
    parser.add_argument("action", choices=["start", "stop", "show"])
    parser.add_argument("engine_or_home")
    parser.add_argument("home", nargs="?")
    args = parser.parse_args(argv)
    if args.action == "start":
        if args.engine_or_home not in ("mariadb", "postgres") or args.home is None:
            parser.error("start takes an engine (mariadb or postgres) and a home directory")
        missing = missing_mariadb() if args.engine_or_home == "mariadb" else missing_postgres()
        if missing:
            parser.exit(2, f"{missing}\n")
        kind = MariadbPair if args.engine_or_home == "mariadb" else PostgresPair
        pair: _Pair = kind(Path(args.home))
        pair.start()
    else:
        pair = _Pair.attach(Path(args.engine_or_home))
        if args.action == "stop":
            pair.stop()
            return 0
    print(json.dumps({"primary_dsn": pair.primary_dsn, "replica_dsn": pair.replica_dsn,
                      "primary_admin_dsn": pair.primary_admin_dsn,
                      "replica_admin_dsn": pair.replica_admin_dsn, "pids": pair.pids}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
