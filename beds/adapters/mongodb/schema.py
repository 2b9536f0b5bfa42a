"""DBA tooling for MongoDB: `beds templates check` and `beds schema apply`.

Layer: infrastructure (DBA tooling). Runs from the CLI and at a template reload, never on the
request path. The schema
format is described in `beds.adapters.mongodb.operations`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pymongo
from motor.motor_asyncio import AsyncIOMotorClient, AsyncIOMotorDatabase
from pymongo import UpdateOne, uri_parser
from pymongo.collation import Collation
from pymongo.errors import OperationFailure, PyMongoError

from beds.adapters.mongodb.adapter import Document, MongoAdapter, translate
from beds.adapters.mongodb.catalog import COUNTERS, MongoCatalog, load_catalog
from beds.adapters.mongodb.operations import MongoAggregate, MongoOperation, MongoWrite
from beds.adapters.named_ops import signature_problems
from beds.adapters.schema import Problem, SchemaApplied, account_outcome, per_op
from beds.errors import DbError
from beds.templates.model import Op, OpTarget, Template

APP_ROLE = "beds_app"
ADMIN_SECONDS = 60.0


# -- templates check --------------------------------------------------------------------------------

def catalog_problems(catalog: MongoCatalog, templates: list[Template]) -> list[Problem]:
    """What can be told from the schema files alone: every op names a view or an operation that
    is declared, with the params and out the template expects."""
    return per_op(templates, lambda template, op: _op_problems(catalog, template, op))


def _op_problems(catalog: MongoCatalog, template: Template, op: Op) -> list[str]:
    name = op.object_name
    if op.target is OpTarget.VIEW:
        view = catalog.views.get(name)
        if view is None:
            if name in catalog.collections:
                return [f"{name!r} is a collection, not a view"]
            return [f"view {name!r} does not exist in {catalog.schema.directory}"]
        if view.columns is None:
            return []
        wanted = [("filter", c) for c in op.filters] + [("order_by", o.column)
                                                         for o in op.order_by]
        return [f"{kind} column {col!r} is not a column of view {name!r}"
                for kind, col in wanted if col not in view.columns]
    operation = catalog.operations.get(name)
    if operation is None:
        return [f"{op.target.value} {name!r} does not exist: no operation of that name in "
                f"{catalog.schema.directory}"]
    return signature_problems(op, template, operation.sig, operation.writes)


def _namespaces(operation: MongoOperation) -> set[str]:
    body = operation.body
    names = {r.collection for r in operation.reads}
    if isinstance(body, MongoAggregate):
        names.add(body.collection)
        names |= _lookups(body.pipeline)
    elif isinstance(body, MongoWrite):
        names.add(body.collection)
    if operation.sig.next:
        names.add(COUNTERS)
    return names


def _lookups(value: Any) -> set[str]:
    """Collections a pipeline reads through $lookup / $unionWith / $graphLookup."""
    found: set[str] = set()
    if isinstance(value, dict):
        for key, sub in value.items():
            if key in ("$lookup", "$graphLookup") and isinstance(sub, dict):
                if isinstance(sub.get("from"), str):
                    found.add(sub["from"])
            elif key == "$unionWith":
                target = sub.get("coll") if isinstance(sub, dict) else sub
                if isinstance(target, str):
                    found.add(target)
            found |= _lookups(sub)
    elif isinstance(value, list):
        for sub in value:
            found |= _lookups(sub)
    return found


async def check_templates(adapter: MongoAdapter, templates: list[Template]) -> list[Problem]:
    """The schema files against the templates, then the live database (as the application user):
    views and collections exist, views match their definition, declared indexes exist."""
    catalog = adapter.catalog()
    problems = catalog_problems(catalog, templates)
    try:
        with pymongo.timeout(ADMIN_SECONDS):
            live = await _collections_info(adapter.db())
            for template in templates:
                for op in template.ops.values():
                    where = f"{template.path}: ops.{op.name}"
                    problems += [Problem(where, m) for m in _live_op(catalog, op, live)]
            problems += await _live_schema(adapter.db(), catalog, live)
    except PyMongoError as exc:
        raise translate(exc, ADMIN_SECONDS) from exc
    return problems


def _live_op(catalog: MongoCatalog, op: Op, live: dict[str, Any]) -> list[str]:
    if op.target is OpTarget.VIEW:
        if op.object_name not in catalog.views:
            return []                 # reported from the schema files already
        info = live.get(op.object_name)
        if info is None:
            return [f"view {op.object_name!r} does not exist in the database "
                    "(run beds schema apply)"]
        if info.get("type") != "view":
            return [f"{op.object_name!r} is a {info.get('type', 'collection')}, not a view"]
        return []
    operation = catalog.operations.get(op.object_name)
    if operation is None:
        return []
    return [f"{op.target.value} {op.object_name!r} uses {name!r}, which does not exist in the "
            "database (run beds schema apply)"
            for name in sorted(_namespaces(operation)) if name not in live]


async def _live_schema(db: AsyncIOMotorDatabase[Document], catalog: MongoCatalog,
                       live: dict[str, Any]) -> list[Problem]:
    problems = []
    for name, view in catalog.views.items():
        where = f"{catalog.schema.entries['views'][name].origin('')}: views.{name}"
        info = live.get(name)
        if info is None:
            continue                   # reported with the op that reads it, if any does
        options = info.get("options", {})
        if options.get("viewOn") != view.on or options.get("pipeline") != view.pipeline:
            problems.append(Problem(where, "the view in the database differs from this "
                                           "definition (run beds schema apply)", warning=True))
    for name, collection in catalog.collections.items():
        where = f"{catalog.schema.entries['collections'][name].origin('')}: collections.{name}"
        if name not in live:
            problems.append(Problem(where, f"collection {name!r} does not exist "
                                           "(run beds schema apply)"))
            continue
        if collection.validator is not None and \
                live[name].get("options", {}).get("validator") != collection.validator:
            problems.append(Problem(where, f"collection {name!r} has another validator than "
                                           "this definition (run beds schema apply)",
                                    warning=True))
        indexes = {i["name"] async for i in db[name].list_indexes()}
        problems += [Problem(where, f"collection {name!r} lacks index {index.name!r} "
                                    "(run beds schema apply)")
                     for index in collection.indexes if index.name not in indexes]
    return problems


async def _collections_info(db: AsyncIOMotorDatabase[Document]) -> dict[str, Any]:
    cursor = await db.list_collections()
    return {info["name"]: info for info in await cursor.to_list(None)}


# -- schema apply -----------------------------------------------------------------------------------

async def apply_schema(adapter: MongoAdapter, files: list[Path],
                       reset_password: bool = False) -> SchemaApplied:
    """Create or update, file by file: collections with validators and indexes, seed documents
    (inserted when absent, never overwritten), views, and the application role and user; named
    operations are checked here and read by nodes at start-up."""
    settings = adapter.settings
    catalog = load_catalog(settings.schema_dir, files)
    admin_dsn = settings.admin_dsn or settings.dsn
    client: AsyncIOMotorClient[Document] = AsyncIOMotorClient(admin_dsn,
                                                              **adapter.client_kwargs())
    db = client[adapter.database]
    done: list[str] = []
    outcome = "no application account: the schema grants nothing (no grants section)"
    try:
        with pymongo.timeout(ADMIN_SECONDS):
            live = {n: c.get("type") for n, c in (await _collections_info(db)).items()}
            for file in catalog.schema.files:
                for section in ("collections", "documents", "views"):
                    if section in file.sections:
                        await _APPLY[section](db, catalog, list(file.sections[section].data),
                                              live)
                done.append(str(file.path))
            if catalog.grants:
                outcome = await _ensure_app_user(db, settings.dsn, admin_dsn, catalog,
                                                 reset_password)
    except PyMongoError as exc:
        error = translate(exc, ADMIN_SECONDS)
        where = f"after {done[-1]}: " if done else ""
        raise type(error)(f"{where}{error.message}", **error.details) from exc
    finally:
        client.close()
    return SchemaApplied(done, outcome)


async def _collections(db: AsyncIOMotorDatabase[Document], catalog: MongoCatalog,
                       names: list[str], live: dict[str, Any]) -> None:
    for name in names:
        spec = catalog.collections[name]
        options: dict[str, Any] = {}
        if spec.validator is not None:
            options = {"validator": spec.validator, "validationLevel": "strict",
                       "validationAction": "error"}
        if name not in live:
            await db.create_collection(name, **options)
            live[name] = "collection"
        elif live[name] != "collection":
            raise DbError(f"collections.{name}: {name!r} exists as a {live[name]}")
        elif options:
            await db.command({"collMod": name, **options})
        for index in spec.indexes:
            extra = dict(index.options)
            if "collation" in extra:
                extra["collation"] = Collation(**extra["collation"])
            await db[name].create_index(index.key, name=index.name, **extra)


async def _documents(db: AsyncIOMotorDatabase[Document], catalog: MongoCatalog,
                     names: list[str], live: dict[str, Any]) -> None:
    for name in names:
        ops = [UpdateOne({"_id": doc["_id"]},
                         {"$setOnInsert": {k: v for k, v in doc.items() if k != "_id"}},
                         upsert=True)
               for doc in catalog.documents[name]]
        if ops:
            await db[name].bulk_write(ops, ordered=True)
        live.setdefault(name, "collection")


async def _views(db: AsyncIOMotorDatabase[Document], catalog: MongoCatalog,
                 names: list[str], live: dict[str, Any]) -> None:
    for name in names:
        view = catalog.views[name]
        if name not in live:
            await db.command({"create": name, "viewOn": view.on, "pipeline": view.pipeline})
            live[name] = "view"
        elif live[name] == "view":
            await db.command({"collMod": name, "viewOn": view.on, "pipeline": view.pipeline})
        else:
            raise DbError(f"views.{name}: {name!r} exists as a {live[name]}")


_APPLY = {"collections": _collections, "documents": _documents, "views": _views}


async def _ensure_app_user(db: AsyncIOMotorDatabase[Document], dsn: str, admin_dsn: str,
                           catalog: MongoCatalog, reset: bool) -> str:
    """The application user gets one role: `find`/`insert`/`update`/`remove` exactly as the
    grants section says, plus listing collections and indexes (for templates check)."""
    app = uri_parser.parse_uri(dsn, warn=False)
    admin = uri_parser.parse_uri(admin_dsn, warn=False)
    user, password = app.get("username"), app.get("password")
    if not user or user == admin.get("username"):
        return f"no application account: the dsn's user is the admin user {user}"
    privileges = [{"resource": {"db": db.name, "collection": name}, "actions": list(actions)}
                  for name, actions in catalog.grants.items()]
    privileges.append({"resource": {"db": db.name, "collection": ""},
                       "actions": ["listCollections", "listIndexes"]})
    roles = await db.command({"rolesInfo": APP_ROLE})
    verb = "updateRole" if roles.get("roles") else "createRole"
    command: dict[str, Any] = {verb: APP_ROLE, "privileges": privileges, "roles": []}
    await db.command(command)
    existed = bool((await db.command({"usersInfo": user})).get("users"))
    verb = "updateUser" if existed else "createUser"
    command = {verb: user, "roles": [{"role": APP_ROLE, "db": db.name}]}
    if password is not None and (reset or not existed):
        command["pwd"] = password
    try:
        await db.command(command)
    except OperationFailure as exc:
        raise DbError(f"{verb} {user!r}: {exc}") from exc
    return account_outcome(f"user {user!r} of {db.name}", existed, reset)


class MongoSchemaTool:
    """The `SchemaTool` of this engine, on the serving adapter's settings and connections."""

    def __init__(self, adapter: MongoAdapter) -> None:
        self.adapter = adapter

    async def check(self, templates: list[Template]) -> list[Problem]:
        return await check_templates(self.adapter, templates)

    async def apply_schema(self, files: list[Path], reset_password: bool = False) -> SchemaApplied:
        return await apply_schema(self.adapter, files, reset_password)
