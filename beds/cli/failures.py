"""What the CLI prints when a command fails: one line naming the cause and the fix, and the exit
code. The traceback only with --debug.

Layer: interface (CLI). The errors arrive already translated (beds.errors); this module only
chooses the words and the exit code, in one place, so no command prints a traceback.
"""

from __future__ import annotations

import argparse
import sys
import traceback
from dataclasses import dataclass

from beds.errors import (
    BedsError,
    ConfigError,
    DbUnavailable,
    Disconnected,
    RequestError,
    TemplateError,
)
from beds.ops.commands import CommandFailed

USAGE = 2    # usage, config or template error: nothing was started
FAILED = 1   # the work failed


@dataclass(frozen=True)
class Failure:
    message: str
    code: int


def explain(exc: BaseException) -> Failure:
    """The one line for an exception a command may raise."""
    if isinstance(exc, ConfigError | TemplateError):
        return Failure(str(exc), USAGE)
    if isinstance(exc, Disconnected):
        return Failure(f"{exc}: check that RabbitMQ runs there, or point [amqp] url "
                       "(BEDS_AMQP_URL) at one that does", FAILED)
    if isinstance(exc, CommandFailed):
        return Failure(f"{exc} ({exc.code})", FAILED)
    if isinstance(exc, DbUnavailable):
        return Failure(f"{exc}: check that the database runs and that the datasource's dsn "
                       "(admin_dsn for schema apply) names the right host, user and password",
                       FAILED)
    if isinstance(exc, RequestError):
        return Failure(f"{exc.code}: {exc}", FAILED)
    if isinstance(exc, BedsError):
        return Failure(str(exc), FAILED)
    if isinstance(exc, OSError) and exc.filename is not None:
        return Failure(f"{exc.filename}: {exc.strerror}; give a path in a folder that exists "
                       "and that you may write to", FAILED)
    if isinstance(exc, KeyboardInterrupt):
        return Failure("interrupted", 130)
    return Failure(f"unexpected {type(exc).__name__}: {exc}; this is a bug in BEDS: run again "
                   "with --debug and report the traceback", FAILED)


def report(exc: BaseException, args: argparse.Namespace | None) -> int:
    """Print the one line (after the traceback with --debug); return the exit code."""
    failure = explain(exc)
    if args is not None and getattr(args, "debug", False):
        traceback.print_exception(exc)
    words = [getattr(args, "command", None), getattr(args, "action", None)]
    prog = " ".join(["beds", *(w for w in words if w)])
    print(f"{prog}: {failure.message}", file=sys.stderr)
    return failure.code

