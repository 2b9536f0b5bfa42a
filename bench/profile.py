"""py-spy profile of the BEDS node under load, and its summary: libraries against BEDS's own code.

Layer: bench harness. `make bench PROFILE=1` records bench/results/profile.{raw.txt,svg} while the
node serves film.fetch at 16 in flight and writes profile.md; a kept raw profile can be summarised
again (e.g. one taken before a change, for a before/after table):

    python -m bench.profile [bench/results/profile.raw.txt] [--out bench/results/profile.md]

Charging rule: a sample belongs to the innermost frame of a non-stdlib package (aiormq, aiomysql,
beds/..., uvloop); stdlib frames (asyncio's StreamWriter.write is the socket send) are charged to
the library or BEDS code that called them. A sample with no such frame but the loop's run()
is the event loop's own time (polling, scheduling, reading sockets in C).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bench.run import System
    from bench.stack import Stack

RESULTS = Path(__file__).resolve().parent / "results"

# Split groups in the order of the table; a package not listed is "other" (structlog, yarl, ...).
GROUPS: dict[str, str] = {
    "aiormq": "AMQP client library (aiormq + pamqp)",
    "pamqp": "AMQP client library (aiormq + pamqp)",
    "beds/amqp": "BEDS's own AMQP client (beds/amqp)",
    "aiomysql": "MySQL driver (aiomysql + PyMySQL, or asyncmy)",
    "pymysql": "MySQL driver (aiomysql + PyMySQL, or asyncmy)",
    "asyncmy": "MySQL driver (aiomysql + PyMySQL, or asyncmy)",
    "beds/mysql": "BEDS's own MySQL client (beds/mysql)",
    "uvloop": "event loop (uvloop, asyncio)",
    "msgspec": "msgspec",
}
BEDS = "BEDS (beds/*, its AMQP and MySQL clients apart)"
OTHER = "other (structlog, yarl, ...)"
ORDER = [*dict.fromkeys(GROUPS.values()), BEDS, OTHER]
LIBRARY_GROUPS = {GROUPS["aiormq"], GROUPS["aiomysql"], GROUPS["uvloop"], GROUPS["msgspec"], OTHER}


def frame_name(frame: str) -> str:
    # py-spy raw frames look like "Consumer._handle (beds/brokers/consumer.py:112)"
    name, _, where = frame.rpartition(" (")
    return f"{name} ({where.rstrip(')').rsplit(':', 1)[0]})"


def package(frame: str) -> str:
    """'beds/brokers' for BEDS modules (one level down), else the top-level package."""
    path = frame.rpartition(" (")[2].rstrip(")").rsplit(":", 1)[0]
    parts = [p for p in path.split("/") if p]
    if "site-packages" in parts:       # an absolute path: keep what follows site-packages
        parts = parts[parts.index("site-packages") + 1:]
    if parts and parts[0] == "beds" and len(parts) > 1:
        return "beds/" + parts[1].removesuffix(".py")
    return parts[0].removesuffix(".py") if parts else "?"


def owner(frames: list[str]) -> str:
    """The package a sample is charged to: the innermost non-stdlib frame's."""
    for frame in reversed(frames):
        pkg = package(frame)
        if not pkg.startswith("<") and pkg.split("/")[0] not in sys.stdlib_module_names:
            return pkg
    return "uvloop"      # only stdlib frames: the loop's own time


def group(pkg: str) -> str:
    if pkg in GROUPS:
        return GROUPS[pkg]
    return BEDS if pkg.startswith("beds/") else OTHER


def read_samples(raw: Path) -> list[tuple[list[str], int]]:
    samples = []
    for line in raw.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if stack and count_text.isdigit():
            samples.append((stack.split(";"), int(count_text)))
    return samples


def split(samples: list[tuple[list[str], int]]) -> dict[str, int]:
    """Samples per group of ORDER (zeros included, so before/after tables line up)."""
    out = dict.fromkeys(ORDER, 0)
    for frames, count in samples:
        out[group(owner(frames))] += count
    return out


def summarize(raw: Path, top: int = 25) -> str:
    """profile.md: the libraries-vs-BEDS split, then shares per owner package, per function
    (self) and per function (inclusive)."""
    samples = read_samples(raw)
    total = sum(count for _, count in samples)
    if not total:
        return "no samples\n"
    self_t: dict[str, int] = {}
    incl: dict[str, int] = {}
    owners: dict[str, int] = {}
    for frames, count in samples:
        names = [frame_name(f) for f in frames]
        self_t[names[-1]] = self_t.get(names[-1], 0) + count
        for name in set(names):
            incl[name] = incl.get(name, 0) + count
        who = owner(frames)
        owners[who] = owners.get(who, 0) + count

    def table(title: str, data: dict[str, int], skip_above: float = 1.0) -> list[str]:
        rows = [kv for kv in sorted(data.items(), key=lambda kv: -kv[1])
                if kv[1] / total < skip_above][:top]
        return [f"## {title}", "", "| share | where |", "|---:|---|",
                *[f"| {n / total:.1%} | `{name}` |" for name, n in rows], ""]

    groups = split(samples)
    libraries = sum(n for g, n in groups.items() if g in LIBRARY_GROUPS)
    out = [f"# py-spy profile of the BEDS node, film.fetch at 16 in flight ({total} samples "
           "of its busy thread at 100 Hz; idle waits excluded)", "",
           "`Runner.run` self time is uvloop's native loop (C: polling, reading sockets, "
           "scheduling); `StreamWriter.write` self time is the socket send (on loopback the "
           "sender also pays for the receiver's TCP processing). py-spy sees Python frames "
           "only: time inside a C extension (msgspec, uvloop's C) shows as the Python frame "
           "that called it, so msgspec's row stays near 0 and its cost lands with its caller "
           "(BEDS).", "",
           "## Split: libraries against BEDS (stdlib frames charged to their caller)", "",
           "| share | where |", "|---:|---|",
           *[f"| {n / total:.1%} | {g} |" for g, n in groups.items()],
           f"| **{libraries / total:.1%}** | **libraries** (all but BEDS's rows) |",
           f"| **{(total - libraries) / total:.1%}** | **BEDS** (beds/*, its AMQP and MySQL "
           "clients included) |", ""]
    out += table("By owner package", owners)
    out += table("Self time (innermost frame)", self_t)
    out += table("Inclusive time (function anywhere on the stack; the entry frames omitted)",
                 incl, skip_above=0.6)
    return "\n".join(out)


async def record(stack: Stack, system: System, args: argparse.Namespace) -> list[str]:
    """py-spy on the BEDS node while it serves `system` at 16 in flight: raw stacks (for
    profile.md) in one cell, a flame graph (profile.svg) in another."""
    from bench.run import run_cell

    server = stack.servers["beds"]
    pyspy = str(Path(sys.executable).parent / "py-spy")
    notes = []
    for fmt, out in (("raw", RESULTS / "profile.raw.txt"), ("flamegraph", RESULTS / "profile.svg")):
        seconds = max(2, int(args.warmup + args.duration))   # load runs for warm-up + window
        spy = await asyncio.create_subprocess_exec(
            pyspy, "record", "--pid", str(server.pid), "--rate", "100", "--duration",
            str(seconds), "--format", fmt, "--output", str(out),
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)
        cell = await run_cell(server, system, 16, args, f"{stack.run_id}prof{fmt}")
        _, err = await spy.communicate()
        if spy.returncode != 0:
            notes.append(f"py-spy {fmt}: exit {spy.returncode}: {err.decode()[-300:]}")
        notes.append(f"profiled cell ({fmt}): {cell['req_per_s']} req/s, "
                     f"{cell['server_cores']} cores (py-spy attached)")
    return notes


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench.profile", description=__doc__.split("\n")[0])
    parser.add_argument("raw", nargs="?", type=Path, default=RESULTS / "profile.raw.txt",
                        help="py-spy record --format raw output")
    parser.add_argument("--out", type=Path, default=RESULTS / "profile.md")
    args = parser.parse_args(argv)
    if not args.raw.exists():
        print(f"bench.profile: {args.raw} not found (make bench PROFILE=1 writes it)",
              file=sys.stderr)
        return 1
    text = summarize(args.raw)
    args.out.write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
