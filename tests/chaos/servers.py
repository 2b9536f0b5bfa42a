"""Private database servers for faults that hit a whole server: a MariaDB and a PostgreSQL of
the scenario's own, on their own loopback port and data directory, frozen with SIGSTOP and
stopped by pid. The shared servers other sessions use are never touched.

MariaDB: `mariadb-install-db` + `mariadbd --no-defaults` (FIELD-NOTES). PostgreSQL: `initdb` and
`pg_ctl` from /usr/lib/postgresql/15/bin, run as the `postgres` user (they refuse root) on a
directory that user owns.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

PG_BIN = Path("/usr/lib/postgresql/15/bin")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_port(port: int, what: str, proc: subprocess.Popen[bytes] | None, log: Path,
               timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"{what} exited {proc.returncode}: {log.read_text()[-2000:]}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.5):
            return
        time.sleep(0.2)
    raise RuntimeError(f"{what} did not listen on {port} within {timeout}s: "
                       f"{log.read_text()[-2000:]}")


class PrivateMariaDb:
    """A MariaDB server of our own; root with an empty password on 127.0.0.1:`port`."""

    def __init__(self, home: Path) -> None:
        self.home = home
        self.port = free_port()
        self.datadir = home / "data"
        self._proc: subprocess.Popen[bytes] | None = None

    @staticmethod
    def available() -> str | None:
        for name in ("mariadbd", "mariadb-install-db"):
            if shutil.which(name) is None:
                return f"{name} is not on PATH"
        return None

    @property
    def admin_dsn(self) -> str:
        return f"mysql://root@127.0.0.1:{self.port}/"

    @property
    def pid(self) -> int:
        assert self._proc is not None, "not started"
        return self._proc.pid

    def start(self) -> None:
        log = self.home / "mariadbd.log"
        subprocess.run(["mariadb-install-db", "--no-defaults", "--user=root",
                        f"--datadir={self.datadir}", "--auth-root-authentication-method=normal"],
                       check=True, capture_output=True, timeout=120)
        with log.open("wb") as out:
            self._proc = subprocess.Popen(
                ["mariadbd", "--no-defaults", "--user=root", f"--datadir={self.datadir}",
                 f"--port={self.port}", f"--socket={self.home / 'mysqld.sock'}",
                 "--bind-address=127.0.0.1", "--skip-log-bin", "--innodb-buffer-pool-size=64M"],
                stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        _wait_port(self.port, "private mariadbd", self._proc, log)
        # mariadb-install-db makes anonymous accounts for localhost; a client on 127.0.0.1
        # resolves to localhost and would match them before 'app'@'%'.
        subprocess.run(["mariadb", f"--socket={self.home / 'mysqld.sock'}", "-uroot", "-e",
                        "DELETE FROM mysql.global_priv WHERE User = ''; FLUSH PRIVILEGES"],
                       check=True, capture_output=True, timeout=60)

    def stop(self) -> None:
        if self._proc is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(self._proc.pid, signal.SIGCONT)     # never leave it frozen
            self._proc.terminate()
        try:
            self._proc.wait(60)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait(10)
        self._proc = None

    @contextlib.contextmanager
    def frozen(self) -> Iterator[None]:
        """SIGSTOP the server for the block: it keeps accepting TCP (the kernel does) and never
        answers, like a server stuck on I/O."""
        os.kill(self.pid, signal.SIGSTOP)
        try:
            yield
        finally:
            os.kill(self.pid, signal.SIGCONT)


class PrivatePostgres:
    """A PostgreSQL cluster of our own; user postgres, trust auth, on 127.0.0.1:`port`. Its
    directory is a fresh one under /tmp (pytest's are private to root, and the postgres user
    must reach its data directory), removed by `stop`."""

    def __init__(self) -> None:
        self.home = Path(tempfile.mkdtemp(prefix="beds-chaos-pg-"))
        self.port = free_port()
        self.datadir = self.home / "pgdata"
        self._pid: int | None = None

    @staticmethod
    def available() -> str | None:
        for name in ("initdb", "pg_ctl", "postgres"):
            if not (PG_BIN / name).exists():
                return f"{PG_BIN / name} is missing"
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            return "there is no postgres user to run initdb as"
        if os.geteuid() != 0:
            return "starting a cluster as the postgres user needs root (runuser)"
        return None

    @property
    def admin_dsn(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    @property
    def pid(self) -> int:
        assert self._pid is not None, "not started"
        return self._pid

    def _as_postgres(self, *argv: str) -> None:
        subprocess.run(["runuser", "-u", "postgres", "--", *argv], check=True,
                       capture_output=True, timeout=120)

    def start(self) -> None:
        user = pwd.getpwnam("postgres")
        os.chown(self.home, user.pw_uid, user.pw_gid)
        os.chmod(self.home, 0o700)
        self._as_postgres(str(PG_BIN / "initdb"), "-D", str(self.datadir), "-U", "postgres",
                          "--auth=trust", "--no-sync")
        log = self.home / "postgres.log"
        self._as_postgres(str(PG_BIN / "pg_ctl"), "-D", str(self.datadir), "-l", str(log), "-w",
                          "-o", f"-p {self.port} -k {self.home} -c listen_addresses=127.0.0.1 "
                                "-c fsync=off -c shared_buffers=32MB", "start")
        self._pid = int((self.datadir / "postmaster.pid").read_text().split()[0])
        _wait_port(self.port, "private postgres", None, log)

    def stop(self) -> None:
        if self._pid is None:
            return
        with contextlib.suppress(ProcessLookupError):
            for pid in self._pids():
                os.kill(pid, signal.SIGCONT)
        with contextlib.suppress(subprocess.CalledProcessError):
            self._as_postgres(str(PG_BIN / "pg_ctl"), "-D", str(self.datadir), "-m", "immediate",
                              "-w", "stop")
        self._pid = None
        shutil.rmtree(self.home, ignore_errors=True)

    def _pids(self) -> list[int]:
        """The postmaster and its children (the backends serving the node)."""
        out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(self.pid)], capture_output=True,
                             text=True, check=False).stdout
        return [self.pid, *(int(p) for p in out.split())]

    @contextlib.contextmanager
    def frozen(self) -> Iterator[None]:
        """SIGSTOP the postmaster and every backend for the block."""
        pids = self._pids()
        for pid in pids:
            os.kill(pid, signal.SIGSTOP)
        try:
            yield
        finally:
            for pid in pids:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGCONT)


async def started(server: PrivateMariaDb | PrivatePostgres) -> None:
    """Start a private server without blocking the event loop."""
    await asyncio.to_thread(server.start)
