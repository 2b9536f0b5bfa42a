"""Schema generators, one per engine, behind the `SchemaGenerator` protocol.

Layer: scaffold. Each generator turns a spec (and `scaffold.design`) into the text of ONE schema
file for `schema/<engine>/`; the command numbers it after the files already there. SQL engines
write `.sql`; MongoDB and DynamoDB write `.json` in the named-operation format their adapters
read (`beds.adapters.mongodb_ops`, `beds.adapters.dynamodb_ops`). The template and docs are the
engine-independent ones, from the spec as `adapt` returns it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from beds.config import Engine
from beds.errors import ConfigError
from beds.scaffold.spec import Spec


@dataclass(frozen=True)
class Existing:
    """What the other files of the schema directory already define, by section (JSON engines:
    `request_log`, `counters`, grants). A JSON schema may not define a name twice, so a
    generated file leaves out what the project already has, as SQL's IF NOT EXISTS would."""

    names: dict[str, frozenset[str]] = field(default_factory=dict)

    def has(self, section: str, name: str) -> bool:
        return name in self.names.get(section, frozenset())


class SchemaGenerator(Protocol):
    engine: Engine
    suffix: str          # ".sql" or ".json"; the file is schema/<engine>/NNN_<name><suffix>

    def adapt(self, spec: Spec) -> Spec:
        """The spec as this engine can serve it (a ConfigError naming the spec's key when it
        cannot); the template and docs are written from what this returns."""

    def doc_note(self, spec: Spec) -> str:
        """What a caller of this engine should know beyond the template ("" for none)."""

    def render(self, spec: Spec, existing: Existing) -> str:
        """The whole schema file: idempotent objects, operations, grants for ${app_user}."""


def generator_for(engine: str) -> SchemaGenerator:
    from beds.scaffold.engines.dynamodb import DynamoGenerator
    from beds.scaffold.engines.mongodb import MongoGenerator
    from beds.scaffold.engines.mysql import MysqlGenerator
    from beds.scaffold.engines.postgres import PostgresGenerator

    generators: dict[str, SchemaGenerator] = {
        Engine.MYSQL.value: MysqlGenerator(), Engine.POSTGRES.value: PostgresGenerator(),
        Engine.MONGODB.value: MongoGenerator(), Engine.DYNAMODB.value: DynamoGenerator()}
    if engine not in generators:
        built = ", ".join(generators)
        raise ConfigError(f"--engine: no scaffold for {engine!r}; engines: {built}")
    return generators[engine]


__all__ = ["Existing", "SchemaGenerator", "generator_for"]
