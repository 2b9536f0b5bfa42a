"""What a server process (and its children, for `--workers`) costs, read from /proc (Linux).

CPU: utime + stime of /proc/<pid>/stat in clock ticks; a process tree is the root plus every
live descendant. Memory: VmRSS now and VmHWM (the kernel's peak RSS) from /proc/<pid>/status.
"""

from __future__ import annotations

import contextlib
import ctypes
import itertools
import os
import signal
from dataclasses import dataclass

TICKS = os.sysconf("SC_CLK_TCK")


def _stat_fields(pid: int) -> list[str]:
    with open(f"/proc/{pid}/stat") as fh:
        text = fh.read()
    # The command name (field 2) may hold spaces: split after its closing parenthesis.
    return text[text.rindex(")") + 2:].split()


def cpu_seconds(pid: int) -> float:
    fields = _stat_fields(pid)   # fields[0] is field 3 (state): utime is 14, stime is 15
    return (int(fields[11]) + int(fields[12])) / TICKS


def children(pid: int) -> list[int]:
    found: list[int] = []
    with contextlib.suppress(OSError):
        for task in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task}/children") as fh:
                found += [int(c) for c in fh.read().split()]
    return found


def tree(pid: int) -> list[int]:
    """`pid` and its live descendants."""
    pids, todo = [], [pid]
    while todo:
        current = todo.pop()
        pids.append(current)
        todo += children(current)
    return pids


def tree_cpu_seconds(pid: int) -> dict[int, float]:
    out: dict[int, float] = {}
    for p in tree(pid):
        with contextlib.suppress(OSError, ValueError, IndexError):
            out[p] = cpu_seconds(p)
    return out


def status_kb(pid: int, key: str) -> int:
    """A `Vm...` line of /proc/<pid>/status in kB (0 when the process is gone)."""
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def open_fds(pid: int) -> int:
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return 0


def system_busy() -> tuple[float, float]:
    """(busy, total) jiffies of the whole machine, from /proc/stat."""
    with open("/proc/stat") as fh:
        values = [int(v) for v in fh.readline().split()[1:]]
    idle = values[3] + values[4]   # idle + iowait
    return sum(values) - idle, sum(values)


def pids_named(*names: str) -> list[int]:
    """Processes whose command name (/proc/<pid>/comm) is one of `names` (RabbitMQ, MariaDB)."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            with contextlib.suppress(OSError), open(f"/proc/{entry}/comm") as fh:
                if fh.read().strip() in names:
                    found.append(int(entry))
    return found


def beam_busy_wait() -> str:
    """How the RabbitMQ VM's schedulers wait, from its command line: RabbitMQ <= 3.13 lets them
    spin (busy-wait) by default, which counts as broker CPU; `+sbwt none` (and the dirty-CPU
    and dirty-IO variants) turns that off. Read-only: the shared broker is not touched."""
    pids = pids_named("beam.smp")
    if not pids:
        return "RabbitMQ not found on this machine"
    try:
        with open(f"/proc/{pids[0]}/cmdline", "rb") as fh:
            args = fh.read().split(b"\0")
    except OSError:
        return "busy-wait setting unknown"
    off = {flag.decode() for flag, value in itertools.pairwise(args)
           if flag in (b"-sbwt", b"-sbwtdcpu", b"-sbwtdio") and value == b"none"}
    if off == {"-sbwt", "-sbwtdcpu", "-sbwtdio"}:
        return "scheduler busy-wait off: +sbwt none +sbwtdcpu none +sbwtdio none, so its CPU is work"
    return ("scheduler busy-wait ON (the 3.x default; off only for " + (", ".join(sorted(off))
            or "none") + "): its CPU includes spinning, an upper bound of its work")


@dataclass
class CpuWindow:
    """CPU spent by process trees between `start()` and `stop()`; a pid that appears only at
    the end counts from zero (a restarted worker), one that vanished is lost (reported)."""

    roots: list[int]
    before: dict[int, float] | None = None
    seconds: float = 0.0
    vanished: int = 0

    def _now(self) -> dict[int, float]:
        out: dict[int, float] = {}
        for root in self.roots:
            out.update(tree_cpu_seconds(root))
        return out

    def start(self) -> None:
        self.before = self._now()

    def stop(self) -> float:
        after = self._now()
        before = self.before or {}
        self.vanished = len(set(before) - set(after))
        self.seconds = sum(v - before.get(p, 0.0) for p, v in after.items())
        return self.seconds


def die_with_parent() -> None:   # runs in the child between fork and exec
    """Ask the kernel to SIGTERM this child when the bench process dies (Linux)."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)   # PR_SET_PDEATHSIG
