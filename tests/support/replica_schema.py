"""A tiny versioned schema for replica tests, scenarios and the bench, installed on a pair's
primary (replication carries it to the replica), and the node config that serves it.

`item(id, version)`: `item.bump` (write) adds 1 to an item's version and returns it in out;
`item.get` (read, view) returns the item and `server`: 1 when the primary answered, 2 when the
replica did, so a test sees who served a read in the data itself; `item.get_primary` is the
same read pinned to the primary (`consistency = "primary"`).
"""

from __future__ import annotations

import secrets
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import tomli_w

from beds.config import load_settings
from tests.support.dbreplicas import (
    APP_USER,
    MariadbPair,
    PostgresPair,
    missing_mariadb,
    missing_postgres,
)
from tests.support.services import ROOT, missing
from tests.support.stack import RunningNode, Stack, env_data, start_node

Pair = MariadbPair | PostgresPair

TEMPLATE = """\
name = "item"
datasource = "main"
[fields]
id = { type = "int", min = 1 }
version = { type = "int" }
[ops.bump]
kind = "write"
procedure = "item_bump"
params = ["id"]
out = ["version"]
[ops.get]
kind = "read"
view = "item_v"
filters = ["id"]
[ops.get_primary]
kind = "read"
view = "item_v"
filters = ["id"]
consistency = "primary"
"""

_MARIADB = (
    "CREATE TABLE item (id INT PRIMARY KEY, version INT NOT NULL)",
    """CREATE PROCEDURE item_bump(IN p_id INT, OUT p_version INT)
       BEGIN
         INSERT INTO item VALUES (p_id, 1) ON DUPLICATE KEY UPDATE version = version + 1;
         SELECT version INTO p_version FROM item WHERE id = p_id;
       END""",
    "CREATE FUNCTION server_tag() RETURNS INT NO SQL RETURN @@server_id",
    "CREATE VIEW item_v AS SELECT id, version, server_tag() AS server FROM item",
)

_POSTGRES = (
    "CREATE TABLE item (id int PRIMARY KEY, version int NOT NULL)",
    f"""CREATE PROCEDURE item_bump(p_id int, OUT p_version int) LANGUAGE plpgsql
       SECURITY DEFINER AS $$
       BEGIN
         INSERT INTO item VALUES (p_id, 1)
           ON CONFLICT (id) DO UPDATE SET version = item.version + 1
           RETURNING version INTO p_version;
       END $$;
       CREATE VIEW item_v AS
         SELECT id, version, CASE WHEN pg_is_in_recovery() THEN 2 ELSE 1 END AS server
           FROM item;
       GRANT SELECT ON item_v TO {APP_USER}""",
)


def install(pair: MariadbPair | PostgresPair) -> None:
    """The schema on the primary, then wait until the replica has it."""
    if isinstance(pair, MariadbPair):
        pair.query("primary", f"USE `{pair.database}`", *_MARIADB)
    else:
        for sql in _POSTGRES:
            pair.psql("primary", sql)
    pair.wait_caught_up()


def node_data(pair: MariadbPair | PostgresPair, base: dict[str, Any], templates: Path,
              **datasource: Any) -> dict[str, Any]:
    """`base` (a test env's data, see tests.support.stack.env_data) serving the item template from
    `templates` on `pair`, with its replica; `datasource`: more [datasources.main] keys."""
    templates.mkdir(parents=True, exist_ok=True)
    (templates / "item.toml").write_text(TEMPLATE)
    engine = "mysql" if isinstance(pair, MariadbPair) else "postgres"
    base["node"]["templates_dir"] = str(templates)
    base["datasources"]["main"] = {"engine": engine, "dsn": pair.primary_dsn,
                                   "admin_dsn": pair.primary_admin_dsn,
                                   "replicas": [pair.replica_dsn], "pool_min": 1,
                                   "connect_timeout": 2.0, **datasource}
    return base


def new_id() -> int:
    return secrets.randbelow(2_000_000_000) + 1


def open_pair(engine: str) -> Iterator[Pair]:
    """A started pair ("mysql" or "postgres") with the item schema, for a fixture to yield;
    stopped and removed afterwards. Missing binaries skip (FAIL under CI=true)."""
    lacking = missing_mariadb() if engine == "mysql" else missing_postgres()
    if lacking:
        missing(lacking)
    home = Path(tempfile.mkdtemp(prefix=f"beds-replica-{engine}-"))
    pair: Pair = MariadbPair(home) if engine == "mysql" else PostgresPair(home)
    try:
        pair.start()
        install(pair)
        yield pair
    finally:
        pair.stop()
        shutil.rmtree(home, ignore_errors=True)


async def start_replicated_node(pair: Pair, tmp_path: Path, **datasource: Any) -> RunningNode:
    """An appServer node in this process serving the item template on `pair`."""
    exchange = f"beds-test-replica-{secrets.token_hex(3)}"
    data = node_data(pair, env_data({"dsn": pair.primary_dsn}, exchange), tmp_path / "t",
                     **datasource)
    env = tmp_path / "env.toml"
    env.write_text(tomli_w.dumps(data))
    stack = Stack(load_settings(ROOT / "config/beds.toml", env, environ={}), env, exchange)
    return await start_node(stack)
