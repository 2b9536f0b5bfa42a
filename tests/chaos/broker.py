"""RabbitMQ for fault injection: `rabbitmqctl` on the shared server, and a private RabbitMQ node.

Faults that hit a whole broker (stop_app/start_app, SIGSTOP, a memory alarm, closing every
connection) would also hit every other user of the shared RabbitMQ on this machine (other test
sessions, benchmarks). They run against a private node instead: the same installed RabbitMQ,
started by the test session on its own loopback port, data directory and Erlang cookie, and halted
at the end of the session. The node under test and the workload talk to it exactly as they would
to the shared one.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

RABBIT_BIN = Path("/usr/lib/rabbitmq/bin")

# ready + checked-out messages of each queue: a quorum queue answers from its Raft state machine
# (rabbit_fifo), a classic one from its process.
_COUNT_MESSAGES = """
[begin
   {ok, Q} = rabbit_amqqueue:lookup(rabbit_misc:r(<<"/">>, queue, N)),
   case amqqueue:get_type(Q) of
     rabbit_quorum_queue ->
       {ok, {_, T}, _} = ra:local_query(amqqueue:get_pid(Q),
                                        fun rabbit_fifo:query_messages_total/1),
       {N, T};
     _ ->
       [{messages, M}] = rabbit_amqqueue:info(Q, [messages]),
       {N, M}
   end
 end || N <- [NAMES],
        rabbit_amqqueue:lookup(rabbit_misc:r(<<"/">>, queue, N)) =/= {error, not_found}].
"""


class CtlError(RuntimeError):
    """rabbitmqctl failed; the message carries its output."""


@dataclass(frozen=True)
class RabbitCtl:
    """`rabbitmqctl` bound to one RabbitMQ node, run without blocking the event loop."""

    argv: tuple[str, ...]
    env: dict[str, str] | None = None

    async def __call__(self, *args: str, timeout: float = 60.0) -> str:
        proc = await asyncio.create_subprocess_exec(
            *self.argv, *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
            env=self.env)
        try:
            out, _ = await asyncio.wait_for(proc.communicate(), timeout)
        except TimeoutError:
            proc.kill()
            await proc.wait()
            raise CtlError(f"rabbitmqctl {' '.join(args)}: no answer within {timeout}s") from None
        text = out.decode(errors="replace")
        if proc.returncode != 0:
            raise CtlError(f"rabbitmqctl {' '.join(args)} exited {proc.returncode}: {text}")
        return text

    async def queue_messages(self, names: set[str]) -> dict[str, int]:
        """Messages (ready + unacknowledged) of the named queues that exist, read live from each
        queue. `list_queues` is no use here: for quorum queues it reports metrics that lag by
        seconds (a queue with an unacked message still showed 0)."""
        wanted = ", ".join(f'<<"{n}">>' for n in sorted(names))
        text = await self("eval", _COUNT_MESSAGES.replace("NAMES", wanted))
        return {name: int(count) for name, count in re.findall(r'<<"([^"]+)">>,(\d+)', text)}

    async def connection_names(self) -> list[tuple[str, str]]:
        """(pid, client-provided name) of every connection."""
        text = await self("list_connections", "--quiet", "--no-table-headers", "pid",
                          "client_properties")
        out = []
        for line in text.splitlines():
            pid, _, props = line.partition("\t")
            name = ""
            marker = '{"connection_name",longstr,<<"'
            if marker in props:
                name = props.split(marker, 1)[1].split('">>', 1)[0]
            out.append((pid.strip(), name))
        return out


def shared_ctl() -> RabbitCtl | None:
    path = shutil.which("rabbitmqctl")
    return RabbitCtl((path,)) if path else None


def _alive(pid: int) -> bool:
    """The process runs (a zombie waiting for its parent to reap it does not)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[0] != "Z"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def private_node(home: Path, tag: str) -> Iterator[PrivateRabbit]:
    """A started PrivateRabbit, halted at the end; skips (fails under CI=true) where RabbitMQ is
    not installed."""

    from tests.support.services import missing

    why = PrivateRabbit.available()
    if why is not None:
        missing(f"cannot start a private RabbitMQ node: {why}")
    node = PrivateRabbit(home, tag)
    node.start()
    try:
        yield node
    finally:
        node.halt()


class PrivateRabbit:
    """A RabbitMQ node of our own on loopback; everything it has lives under `home`.

    `port`/`dist_port`: fixed ports (default: free ones). `cookie_home`: the HOME whose Erlang
    cookie the node uses (cluster members share one; default `home`). `small`: tuned to share 2
    cores with other nodes (one scheduler, no busy waiting) and a fixed memory watermark."""

    def __init__(self, home: Path, tag: str, *, port: int | None = None,
                 dist_port: int | None = None, cookie_home: Path | None = None,
                 small: bool = False) -> None:
        self.home = home
        self.node = f"beds-chaos-{tag}@localhost"
        self.port = port or _free_port()
        self.dist_port = dist_port or _free_port()
        self.url = f"amqp://guest:guest@127.0.0.1:{self.port}/"
        self.small = small
        erl_args = "-kernel inet_dist_use_interface {127,0,0,1}"
        if small:
            erl_args += " +S 1:1 +sbwt none +sbwtdcpu none +sbwtdio none"
        self.env = {
            **os.environ,
            "HOME": str(cookie_home or home),        # its own Erlang cookie
            "RABBITMQ_NODENAME": self.node,
            "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1",
            "RABBITMQ_NODE_PORT": str(self.port),
            "RABBITMQ_DIST_PORT": str(self.dist_port),
            "RABBITMQ_MNESIA_BASE": str(home / "mnesia"),
            "RABBITMQ_LOG_BASE": str(home / "log"),
            "RABBITMQ_CONFIG_FILE": str(home / "rabbitmq"),
            "RABBITMQ_ADVANCED_CONFIG_FILE": str(home / "advanced.config"),
            "RABBITMQ_CONF_ENV_FILE": str(home / "rabbitmq-env.conf"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(home / "enabled_plugins"),
            "RABBITMQ_PID_FILE": str(home / "rabbit.pid"),
            "ERL_EPMD_ADDRESS": "127.0.0.1",
            "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS": erl_args,
        }
        self.ctl = RabbitCtl((str(RABBIT_BIN / "rabbitmqctl"), "-n", self.node), self.env)
        self._proc: subprocess.Popen[bytes] | None = None

    @staticmethod
    def available() -> str | None:
        """None when a private node can be started here, else why not."""
        for name in ("rabbitmq-server", "rabbitmqctl"):
            if not (RABBIT_BIN / name).exists():
                return f"{RABBIT_BIN / name} is missing"
        return None

    def start(self, timeout: float = 90.0) -> None:
        self.launch()
        self.wait_started(timeout)

    def launch(self) -> None:
        """Start the server process (in its own session: it outlives this process if asked to)
        without waiting for it to boot: cluster members boot side by side."""
        self.home.mkdir(parents=True, exist_ok=True)
        memory = "vm_memory_high_watermark.absolute = 512MB\n" if self.small else ""
        (self.home / "rabbitmq.conf").write_text(
            f"listeners.tcp.1 = 127.0.0.1:{self.port}\n"
            "log.console = false\n"
            "log.file.level = warning\n" + memory)
        # At-least-once dead-lettering retries a refused dead-letter after this long (default
        # 2 minutes): short here, so a scenario sees the retry.
        (self.home / "advanced.config").write_text(
            "[{rabbit, [{dead_letter_worker_publisher_confirm_timeout, 2000}]}].\n")
        (self.home / "enabled_plugins").write_text("[].\n")
        (self.home / "rabbitmq-env.conf").write_text("")
        log = (self.home / "server.out").open("wb")
        self._proc = subprocess.Popen([str(RABBIT_BIN / "rabbitmq-server")], env=self.env,
                                      stdout=log, stderr=subprocess.STDOUT,
                                      start_new_session=True)
        log.close()

    def wait_started(self, timeout: float = 90.0) -> None:
        assert self._proc is not None, "launch() first"
        deadline = time.monotonic() + timeout
        while True:
            if self._proc.poll() is not None:
                raise CtlError(f"private RabbitMQ exited {self._proc.returncode}: "
                               + (self.home / "server.out").read_text()[-2000:])
            done = subprocess.run([*self.ctl.argv, "await_startup", "--timeout", "5"],
                                  env=self.env, capture_output=True, timeout=30, check=False)
            if done.returncode == 0:
                return
            if time.monotonic() > deadline:
                self.halt()
                raise CtlError(f"private RabbitMQ did not start within {timeout}s: "
                               + done.stdout.decode(errors="replace")[-2000:])
            time.sleep(0.5)

    def ctl_sync(self, *args: str, timeout: float = 60.0) -> str:
        """rabbitmqctl on this node, blocking (set-up and tear-down, outside an event loop)."""
        done = subprocess.run([*self.ctl.argv, *args], env=self.env, capture_output=True,
                              timeout=timeout, check=False)
        text = done.stdout.decode(errors="replace") + done.stderr.decode(errors="replace")
        if done.returncode != 0:
            raise CtlError(f"rabbitmqctl {' '.join(args)} exited {done.returncode}: {text}")
        return text

    def beam_pid(self) -> int:
        """The Erlang VM's OS pid: a child of the process this object started."""
        return int((self.home / "rabbit.pid").read_text().strip())

    def kill(self) -> None:
        """SIGKILL the Erlang VM: a crash, no goodbye to clients or cluster peers."""
        os.kill(self.beam_pid(), signal.SIGKILL)

    def halt(self) -> None:
        if self._proc is None:
            return
        self.stop_by_pid()
        try:
            self._proc.wait(30)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait(10)
        self._proc = None

    def stop_by_pid(self) -> None:
        """Stop the node this home's pid file names (also from another process than the one
        that started it: `make scale-lab-stop`); SIGKILL if it does not stop."""
        try:
            pid = self.beam_pid()
        except (OSError, ValueError):
            return   # never started, or stopped already
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGCONT)   # never leave it frozen
        subprocess.run([*self.ctl.argv, "stop"], env=self.env, capture_output=True,
                       timeout=60, check=False)
        deadline = time.monotonic() + 30
        while _alive(pid) and time.monotonic() < deadline:
            time.sleep(0.2)
        if _alive(pid):
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
        with contextlib.suppress(OSError):
            (self.home / "rabbit.pid").unlink()

    async def await_startup(self, timeout: float = 60.0) -> None:
        await self.ctl("await_startup", "--timeout", str(int(timeout)), timeout=timeout + 10)
