"""What `beds schema apply` and `beds templates check` need from an engine (the `SchemaTool`
protocol), and what the engines' tooling shares.

Layer: infrastructure (DBA tooling). Runs from the CLI and at a template reload, never per
request. A tool is built on a serving adapter (`beds.adapters.schema_tool`): the tooling imports
the serving side, never the reverse.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from beds.templates.model import Op, Template


@dataclass(frozen=True)
class Problem:
    """One finding of `beds templates check`."""

    where: str      # "templates/film.toml: ops.in_stock"
    message: str
    warning: bool = False

    def __str__(self) -> str:
        level = "warning" if self.warning else "error"
        return f"{self.where}: {level}: {self.message}"


@dataclass(frozen=True)
class SchemaApplied:
    """What `beds schema apply` did: the files it ran, and what it did to the application
    account (`account`: one sentence, printed as is)."""

    files: list[str]
    account: str


def account_outcome(name: str, existed: bool, reset: bool) -> str:
    """The sentence for the application account; an existing account's password is changed
    only when asked (`--reset-password`): another checkout or a DBA may have set it."""
    if not existed:
        return f"created account {name} with the dsn's password"
    if reset:
        return f"account {name} exists: reset its password to the dsn's (--reset-password)"
    return (f"account {name} exists: left its password unchanged (--reset-password sets it "
            "to the dsn's)")


class SchemaTool(Protocol):
    async def check(self, templates: list[Template]) -> list[Problem]:
        """Compare templates with the live database (`beds templates check`)."""

    async def apply_schema(self, files: list[Path], reset_password: bool = False) -> SchemaApplied:
        """Apply the engine's schema files in order, idempotently (`beds schema apply`); an
        existing application account keeps its password unless `reset_password`."""


def per_op(templates: list[Template],
           check: Callable[[Template, Op], list[str]]) -> list[Problem]:
    """Run a check on every op, each finding placed at `<template file>: ops.<op>`."""
    return [Problem(f"{template.path}: ops.{op.name}", message)
            for template in templates for op in template.ops.values()
            for message in check(template, op)]
