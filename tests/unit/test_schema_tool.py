"""`beds.adapters.schema_tool`: the DBA tooling of a datasource's engine, built on its serving
adapter without connecting; with replicas, on the primary (schema and checks concern the
database that takes the writes)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from beds.adapters import create_adapter, schema_tool
from beds.adapters.mysql.adapter import MysqlAdapter
from beds.adapters.mysql.schema import MysqlSchemaTool
from beds.adapters.postgres.schema import PostgresSchemaTool
from beds.adapters.replicas import ReplicatedAdapter
from beds.config import Engine, load_settings

ROOT = Path(__file__).resolve().parents[2]
ENV = {"BEDS_MYSQL_PASSWORD": "s3cret", "BEDS_PG_PASSWORD": "s3cret"}


def test_each_engine_gets_its_own_tool() -> None:
    settings = load_settings(ROOT / "config/beds.toml", None, environ=ENV)
    maria = settings.datasources["main"]
    tool = schema_tool(create_adapter(maria))
    assert isinstance(tool, MysqlSchemaTool) and isinstance(tool.adapter, MysqlAdapter)
    pg = dataclasses.replace(maria, engine=Engine.POSTGRES, dsn="postgresql://app:pw@127.0.0.1/beds")
    assert isinstance(schema_tool(create_adapter(pg)), PostgresSchemaTool)


def test_with_replicas_the_tool_works_on_the_primary() -> None:
    settings = load_settings(ROOT / "config/beds.toml", None, environ=ENV)
    ds = dataclasses.replace(settings.datasources["main"],
                             replicas=("mysql://app:pw@10.0.0.2:3306/beds",))
    routed = create_adapter(ds)
    assert isinstance(routed, ReplicatedAdapter)
    tool = schema_tool(routed)
    assert isinstance(tool, MysqlSchemaTool) and tool.adapter is routed.primary
