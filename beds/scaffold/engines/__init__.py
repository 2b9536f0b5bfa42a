"""Schema generators, one per engine, behind the `SchemaGenerator` protocol.

Layer: tooling. Each generator turns a spec (and `scaffold.design`) into the text of ONE schema
file for `schema/<engine>/`; the command numbers it after the files already there. SQL engines
write `.sql`; MongoDB and DynamoDB write `.json` in the named-operation format their adapters
read (`beds.adapters.mongodb.operations`, `beds.adapters.dynamodb.operations`). The
generators import `base`, never this registry. The template and docs are the
engine-independent ones, from the spec as `adapt` returns it.
"""

from __future__ import annotations

from beds.config import Engine
from beds.errors import ConfigError
from beds.scaffold.engines.base import Existing, SchemaGenerator


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
