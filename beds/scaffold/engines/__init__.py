"""Schema generators, one per engine, behind the `SchemaGenerator` protocol.

Layer: scaffold. Each generator turns a spec (and `scaffold.design`) into the text of ONE schema
file for `schema/<engine>/`; the command numbers it after the files already there. A MongoDB or
DynamoDB generator plugs in here the same way (its file may be JSON or JS: `suffix`), and the
template and docs it needs are the engine-independent ones.
"""

from __future__ import annotations

from typing import Protocol

from beds.config import Engine
from beds.errors import ConfigError
from beds.scaffold.spec import Spec


class SchemaGenerator(Protocol):
    engine: Engine
    suffix: str          # ".sql"; the file is schema/<engine>/NNN_<name><suffix>

    def render(self, spec: Spec) -> str:
        """The whole schema file: idempotent DDL, routines, grants for ${app_user}."""


def generator_for(engine: str) -> SchemaGenerator:
    from beds.scaffold.engines.mysql import MysqlGenerator
    from beds.scaffold.engines.postgres import PostgresGenerator

    generators: dict[str, SchemaGenerator] = {
        Engine.MYSQL.value: MysqlGenerator(), Engine.POSTGRES.value: PostgresGenerator()}
    if engine not in generators:
        built = ", ".join(generators)
        raise ConfigError(f"--engine: no scaffold for {engine!r} yet; engines: {built}")
    return generators[engine]


__all__ = ["SchemaGenerator", "generator_for"]
