"""`beds --role NAME --workers N`: N node processes under one supervisor, sharing the queues.

Layer: application, top (beside cli.py). The supervisor does no request work. It starts N normal
single-process nodes (`python -m beds --role NAME [--config ..] [--env ..]`), restarts one that
dies (capped, jittered backoff, reset after a healthy run), forwards SIGTERM/SIGINT to every
worker, waits for them to drain, and exits 0. A worker that exits 2 (config or template error)
stops the supervisor with 2: restarting cannot fix that.

Each worker gets BEDS_NODE_NAME=<name>-w<i> when the config names the node with ${BEDS_NODE_NAME},
so its log lines and AMQP connection names tell the workers apart; otherwise names are left alone.
Likewise worker i gets BEDS_HTTP_LISTEN=<host>:<port + i - 1> when [ops] http_listen uses that
variable, so each worker serves its own /live /ready /metrics.
If the supervisor itself is killed, the kernel sends each worker SIGTERM (PR_SET_PDEATHSIG), so no
worker is left behind without a supervisor.
"""

from __future__ import annotations

import asyncio
import ctypes
import os
import random
import signal
import sys

from beds.brokers.link import sleep_unless
from beds.config import Settings, load_settings
from beds.config.ops import split_listen
from beds.errors import ConfigError
from beds.log import get_logger, setup_logging

log = get_logger("beds.processes")
NAME_VAR = "BEDS_NODE_NAME"
HTTP_VAR = "BEDS_HTTP_LISTEN"
CONFIG_ERROR = 2          # a worker's exit code for a config/template error: do not restart
HEALTHY_AFTER = 10.0      # seconds of running that reset the restart backoff
MAX_BACKOFF = 10.0        # seconds: the cap on the delay before a restart
KILL_MARGIN = 10.0        # seconds past the node's grace before a stuck worker is killed
_PR_SET_PDEATHSIG = 1


def run_workers(settings: Settings, role: str, count: int, config: str | None,
                env_file: str | None) -> int:
    """Validate like a node would, then supervise `count` worker processes until stopped."""
    from beds.node import Node

    if count < 1:
        raise ConfigError(f"--workers: expected an int >= 1, got {count}")
    setup_logging(settings.node.log_level, node=settings.node.name, role=role)
    Node.build(settings, role)   # a bad template stops here, before any worker starts
    argv = [sys.executable, "-m", "beds", "--role", role]
    argv += ["--config", config] if config else []
    argv += ["--env", env_file] if env_file else []
    named = _config_uses_name_var(config, env_file)
    envs = [{**os.environ, NAME_VAR: f"{settings.node.name}-w{i}"} if named else dict(os.environ)
            for i in range(1, count + 1)]
    if settings.ops.http_listen and _config_uses_http_var(config, env_file):
        host, port = split_listen(settings.ops.http_listen)
        for i, env in enumerate(envs):
            env[HTTP_VAR] = f"{host}:{port + i}" if port else f"{host}:0"
    supervisor = Supervisor(argv, envs, settings.node.grace_seconds + KILL_MARGIN)
    return asyncio.run(supervisor.run())


def _config_uses_name_var(config: str | None, env_file: str | None) -> bool:
    marker = "beds-workers-name-probe"
    probe = load_settings(config, env_file, environ={**os.environ, NAME_VAR: marker},
                          sections=("node",))
    return marker in probe.node.name


def _config_uses_http_var(config: str | None, env_file: str | None) -> bool:
    marker = "probe.invalid:1"
    probe = load_settings(config, env_file, environ={**os.environ, HTTP_VAR: marker},
                          sections=("node", "ops"))
    return probe.ops.http_listen == marker


def _die_with_parent() -> None:   # pragma: no cover - runs in the child between fork and exec
    parent = os.getppid()
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    except (OSError, AttributeError):
        return   # not Linux: a killed supervisor leaves its workers running
    if os.getppid() != parent:   # the supervisor died before prctl took effect
        os.kill(os.getpid(), signal.SIGTERM)


class Supervisor:
    def __init__(self, argv: list[str], envs: list[dict[str, str]], kill_after: float) -> None:
        self.argv = argv
        self.envs = envs
        self.kill_after = kill_after
        self.procs: dict[int, asyncio.subprocess.Process] = {}
        self.stop = asyncio.Event()
        self.exit_code = 0

    async def run(self) -> int:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.request_stop, sig)
        log.info("workers.starting", workers=len(self.envs), command=" ".join(self.argv[1:]))
        try:
            await asyncio.gather(*(self._keep(i) for i in range(1, len(self.envs) + 1)))
        finally:
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.remove_signal_handler(sig)
        log.info("workers.stopped", exit_code=self.exit_code)
        return self.exit_code

    def request_stop(self, sig: signal.Signals = signal.SIGTERM) -> None:
        if not self.stop.is_set():
            log.info("workers.stopping", signal=sig.name, workers=len(self.procs))
            self.stop.set()
        for proc in self.procs.values():
            if proc.returncode is None:
                proc.send_signal(sig)

    async def _keep(self, index: int) -> None:
        """Run worker `index` until the supervisor stops; restart it whenever it exits."""
        loop = asyncio.get_running_loop()
        delay = 0.5
        while not self.stop.is_set():
            proc = await asyncio.create_subprocess_exec(
                *self.argv, env=self.envs[index - 1], preexec_fn=_die_with_parent)
            self.procs[index] = proc
            started = loop.time()
            log.info("worker.started", worker=index, pid=proc.pid,
                     name=self.envs[index - 1].get(NAME_VAR))
            if self.stop.is_set():   # the stop signal came while this worker was starting
                proc.send_signal(signal.SIGTERM)
            code = await self._wait(proc)
            del self.procs[index]
            ran = round(loop.time() - started, 3)
            if self.stop.is_set():
                log.info("worker.exited", worker=index, pid=proc.pid, code=code, seconds=ran)
                if code != 0:
                    self.exit_code = self.exit_code or 1
                return
            if code == CONFIG_ERROR:
                log.error("worker.config_error", worker=index, pid=proc.pid, code=code,
                          hint="a worker refused its config or templates; not restarting")
                self.exit_code = CONFIG_ERROR
                self.request_stop()
                return
            if ran > HEALTHY_AFTER:
                delay = 0.5
            wait = delay * random.uniform(0.5, 1.0)  # noqa: S311 - jitter, not crypto
            log.warning("worker.died", worker=index, pid=proc.pid, code=code, seconds=ran,
                        restart_in=round(wait, 3))
            await sleep_unless(self.stop, wait)
            delay = min(delay * 2, MAX_BACKOFF)

    async def _wait(self, proc: asyncio.subprocess.Process) -> int:
        """The worker's exit code; once stopping, kill it if it outlives its drain time."""
        waiting = asyncio.ensure_future(proc.wait())
        stopping = asyncio.ensure_future(self.stop.wait())
        try:
            await asyncio.wait({waiting, stopping}, return_when=asyncio.FIRST_COMPLETED)
            if not waiting.done():
                done, _ = await asyncio.wait({waiting}, timeout=self.kill_after)
                if not done:
                    log.error("worker.kill", pid=proc.pid, after_seconds=self.kill_after)
                    proc.kill()
            return await waiting
        finally:
            stopping.cancel()


__all__ = ["Supervisor", "run_workers"]
