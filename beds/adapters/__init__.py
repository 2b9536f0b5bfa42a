"""Adapters: one package per database engine, behind the `Adapter` protocol of `base` (what a
node needs to serve) and the `SchemaTool` protocol of `schema` (what `beds schema apply` and
`beds templates check` need).

Layer: infrastructure. Drivers are imported lazily: a node that uses only MariaDB never imports
asyncpg, and a missing driver says which extra to install. The tooling is imported only by
`schema_tool`, so a serving node never loads it.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from beds.adapters.base import Adapter, Call
from beds.adapters.schema import SchemaTool
from beds.config import DatasourceSettings, Engine
from beds.errors import ConfigError

# engine -> (package, adapter class, schema tool class, driver, extra)
_ENGINES = {
    Engine.MYSQL: ("beds.adapters.mysql", "MysqlAdapter", "MysqlSchemaTool", "beds.mysql", None),
    Engine.POSTGRES: ("beds.adapters.postgres", "PostgresAdapter", "PostgresSchemaTool",
                      "asyncpg", "postgres"),
    Engine.MONGODB: ("beds.adapters.mongodb", "MongoAdapter", "MongoSchemaTool", "motor",
                     "mongodb"),
    Engine.DYNAMODB: ("beds.adapters.dynamodb", "DynamoAdapter", "DynamoSchemaTool", "aioboto3",
                      "dynamodb"),
}


def _engine_module(settings: DatasourceSettings, part: str) -> ModuleType:
    package, _adapter, _tool, driver, extra = _ENGINES[settings.engine]
    module_name = f"{package}.{part}"
    try:
        return importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name in (package, module_name):
            raise ConfigError(
                f"datasources.{settings.name}.engine: {settings.engine.value!r} has no adapter "
                "in this version of BEDS"
            ) from None
        hint = f"pip install 'beds[{extra}]'" if extra else "pip install beds"
        raise ConfigError(
            f"datasources.{settings.name}.engine: {settings.engine.value!r} needs the "
            f"{driver} driver ({exc.name} is not installed): {hint}"
        ) from None


def create_adapter(settings: DatasourceSettings) -> Adapter:
    cls = getattr(_engine_module(settings, "adapter"), _ENGINES[settings.engine][1])
    adapter: Adapter = cls(settings)
    if settings.replicas:
        # By name, like the engines: a type check of a module that only imports beds.adapters
        # must not reach every driver through the router.
        routing = importlib.import_module("beds.adapters.replicas")
        replicas = [cls(routing.replica_settings(settings, dsn)) for dsn in settings.replicas]
        routed: Adapter = routing.ReplicatedAdapter(settings, adapter, replicas)
        return routed
    return adapter


def schema_tool(adapter: Adapter) -> SchemaTool:
    """The DBA tooling of `adapter`'s engine; with replicas, it works on the primary (a schema
    reaches the replicas through replication, and a check asks the database that takes writes)."""
    serving = getattr(adapter, "primary", adapter) if adapter.settings.replicas else adapter
    tool_class = getattr(_engine_module(adapter.settings, "schema"),
                         _ENGINES[adapter.settings.engine][2])
    tool: SchemaTool = tool_class(serving)
    return tool


__all__ = ["Adapter", "Call", "SchemaTool", "create_adapter", "schema_tool"]
