"""`beds docs`: the AsyncAPI 3.0 document for the node's catalogue (the shipped templates and a
scaffolded one) passes the official parser, `@asyncapi/parser` run by tests/asyncapi/validate.mjs,
with no errors; every template op is in it with its routing key and schemas; the Markdown
catalogue covers every op. The parser is installed from tests/asyncapi/package-lock.json when
node_modules is missing (node and npm: skipped locally when absent, a failure under CI=true)."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from beds.asyncapi import field_schema, params_schema
from beds.cli import main
from beds.errors import ERROR_CODES
from beds.scaffold.command import scaffold
from beds.templates.loader import load_template, load_templates
from beds.templates.model import Field, FieldType
from tests.support.services import ROOT, require_tool
from tests.support.stack import write_env_file

CHECKER = ROOT / "tests/asyncapi"


@pytest.fixture(scope="module")
def validator() -> Path:
    """validate.mjs with @asyncapi/parser installed (npm ci, only when node_modules is missing)."""
    for tool in ("node", "npm"):
        require_tool(tool, "the AsyncAPI parser check")
    if not (CHECKER / "node_modules/@asyncapi/parser/package.json").exists():
        # npm ci installs exactly package-lock.json; --ignore-scripts: nothing runs at install.
        done = subprocess.run(["npm", "ci", "--ignore-scripts", "--no-audit", "--no-fund"],
                              cwd=CHECKER, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, f"npm ci failed:\n{done.stdout}\n{done.stderr}"
    return CHECKER / "validate.mjs"


def validate(checker: Path, document: Path) -> tuple[int, dict[str, Any]]:
    done = subprocess.run(["node", str(checker), str(document)], capture_output=True, text=True,
                          timeout=120)
    assert done.stdout, done.stderr
    return done.returncode, json.loads(done.stdout)


@pytest.fixture(scope="module")
def docs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`beds docs` over the shipped templates plus a scaffolded supplier template."""
    root = tmp_path_factory.mktemp("docs")
    shutil.copytree(ROOT / "templates", root / "templates")
    scaffold(ROOT / "docs/specs/supplier.toml", "mysql", root)
    env = write_env_file(None, root / "env.toml", exchange="beds-docs",
                         templates=root / "templates",
                         amqp={"url": "amqp://app:secret@rabbit.example:5673/prod"})
    assert main(["docs", "--env", str(env), "--out", str(root / "api")]) == 0
    return root


def test_the_document_passes_the_official_parser(validator: Path, docs: Path) -> None:
    code, report = validate(validator, docs / "api/asyncapi.json")
    assert code == 0 and report["errors"] == [], json.dumps(report, indent=1)


def test_the_parser_check_is_live(validator: Path, docs: Path, tmp_path: Path) -> None:
    document = json.loads((docs / "api/asyncapi.json").read_text())
    del document["info"]["version"]
    payload = document["components"]["messages"]["film.list.request"]["payload"]
    payload["properties"]["limit"]["minimum"] = "one"          # the JSON Schemas are checked too
    broken = tmp_path / "broken.json"
    broken.write_text(json.dumps(document))
    code, report = validate(validator, broken)
    assert code == 1
    found = {(e["path"], e["message"]) for e in report["errors"]}
    assert ("info", '"info" property must have required property "version"') in found
    assert ("components/messages/film.list.request/payload/properties/limit/minimum",
            '"minimum" property type must be number') in found


def test_every_op_is_a_request_reply_operation_with_its_routing_key(docs: Path) -> None:
    document = json.loads((docs / "api/asyncapi.json").read_text())
    assert document["asyncapi"] == "3.0.0"
    assert document["servers"]["rabbitmq"]["host"] == "rabbit.example:5673"
    assert "secret" not in json.dumps(document)
    # Every role's templates (templates/ and its role folders), less the ops only a built-in
    # service calls (they are bound to no queue, so a caller cannot reach them).
    templates = [t for folder in (docs / "templates", *sorted(
        p for p in (docs / "templates").iterdir() if p.is_dir())) for t in load_templates(folder)]
    internal = {"logs.append", "payments.wh_extract", "payments.wh_purge",
                "payment_archive.wh_load"}
    keys = {f"{t.name}.{o}" for t in templates for o in t.ops} - internal
    assert {"supplier.create", "film.in_stock", "customer.pay", "users.create", "sessions.open",
            "logs.recent", "payment_archive.fetch"} <= keys
    assert set(document["operations"]) == keys
    assert document["operations"]["users.create"]["x-beds"]["broker"] == "uBroker"
    for key in keys:
        operation, channel = document["operations"][key], document["channels"][key]
        assert operation["action"] == "receive"
        assert channel["address"] == key
        assert channel["bindings"]["amqp"]["exchange"] == {
            "name": "beds-docs", "type": "topic", "durable": True, "autoDelete": False,
            "vhost": "prod"}
        assert operation["reply"]["channel"] == {"$ref": "#/channels/reply"}
    assert document["operations"]["supplier.create"]["x-beds"]["broker"] == "wBroker"
    codes = document["components"]["schemas"]["ReplyError"]["properties"]["code"]["enum"]
    assert codes == sorted(ERROR_CODES)
    reply = document["components"]["messages"]["film.in_stock.reply"]["payload"]["oneOf"][0]
    assert reply["properties"]["out"]["required"] == ["film_count"]


def test_params_schemas_follow_the_field_declarations(docs: Path) -> None:
    supplier = load_template(docs / "templates/supplier.toml")
    create = params_schema(supplier, supplier.ops["create"])
    assert create["required"] == ["name", "email", "active"]    # request_id: the message_id
    assert create["additionalProperties"] is False
    assert create["properties"]["email"] == {
        "type": "string", "maxLength": 100, "pattern": r"^[^@\s]+@[^@\s]+\.[^@\s]+$",
        "description": "Order email address (unique)"}
    assert create["properties"]["credit_limit"]["type"] == ["string", "number", "null"]
    assert create["properties"]["credit_limit"]["maximum"] == 999999.99
    listing = params_schema(supplier, supplier.ops["list"])
    assert "required" not in listing and listing["properties"]["active"] == {
        "type": "boolean", "description": "Whether orders may be placed"}
    film = {t.name: t for t in load_templates(docs / "templates")}["film"]
    rating = params_schema(film, film.ops["list"])["properties"]["rating"]
    assert rating["enum"] == ["G", "PG", "PG-13", "R", "NC-17"]


@pytest.mark.parametrize(("field", "schema"), [
    (Field("n", FieldType.INT, min=1, max=9), {"type": "integer", "minimum": 1, "maximum": 9}),
    (Field("d", FieldType.DATE), {"type": "string", "format": "date"}),
    (Field("b", FieldType.BOOL, required=False), {"type": ["boolean", "null"]}),
    (Field("s", FieldType.STR, choices=("a", "b")), {"type": "string", "enum": ["a", "b"]}),
    (Field("p", FieldType.STR, protected=True), {"type": "string", "writeOnly": True}),
])
def test_field_schemas(field: Field, schema: dict[str, Any]) -> None:
    assert field_schema(field, nullable=not field.required) == schema


def test_the_markdown_catalogue_covers_every_op(docs: Path) -> None:
    catalogue = (docs / "api/catalogue.md").read_text()
    for template in load_templates(docs / "templates"):
        assert f"## {template.name}\n" in catalogue
        for op in template.ops:
            assert f"### {template.name}.{op}\n" in catalogue
            assert f'"template": "{template.name}", "op": "{op}"' in catalogue
    assert "(broker `wBroker`)" in catalogue
