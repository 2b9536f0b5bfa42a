"""Adapters: one per database engine, behind the `Adapter` protocol of `base`.

Drivers are imported lazily: a node that uses only MariaDB never imports asyncpg, and a missing
driver says which extra to install.
"""

from __future__ import annotations

import importlib

from beds.adapters.base import Adapter, Call
from beds.config import DatasourceSettings, Engine
from beds.errors import ConfigError

_MODULES = {
    Engine.MYSQL: ("beds.adapters.mysql", "MysqlAdapter", "asyncmy", None),
    Engine.POSTGRES: ("beds.adapters.postgres", "PostgresAdapter", "asyncpg", "postgres"),
    Engine.MONGODB: ("beds.adapters.mongodb", "MongoAdapter", "motor", "mongodb"),
    Engine.DYNAMODB: ("beds.adapters.dynamodb", "DynamoAdapter", "aioboto3", "dynamodb"),
}


def create_adapter(settings: DatasourceSettings) -> Adapter:
    module_name, class_name, driver, extra = _MODULES[settings.engine]
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name == module_name:
            raise ConfigError(
                f"datasources.{settings.name}.engine: {settings.engine.value!r} has no adapter "
                "in this version of BEDS"
            ) from None
        hint = f"pip install 'beds[{extra}]'" if extra else "pip install beds"
        raise ConfigError(
            f"datasources.{settings.name}.engine: {settings.engine.value!r} needs the "
            f"{driver} driver ({exc.name} is not installed): {hint}"
        ) from None
    adapter: Adapter = getattr(module, class_name)(settings)
    if settings.replicas:
        # By name, like the engines: a type check of a module that only imports beds.adapters
        # must not reach every driver through the router.
        routing = importlib.import_module("beds.adapters.replicas")
        cls = getattr(module, class_name)
        replicas = [cls(routing.replica_settings(settings, dsn)) for dsn in settings.replicas]
        routed: Adapter = routing.ReplicatedAdapter(settings, adapter, replicas)
        return routed
    return adapter


__all__ = ["Adapter", "Call", "create_adapter"]
