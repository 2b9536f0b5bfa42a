"""The editor schemas (docs/schemas/) are fresh, accept what BEDS ships, and refuse what the
loaders refuse, at the key that is wrong."""

from __future__ import annotations

import copy
import json
import tomllib
from pathlib import Path
from typing import Any

import pytest
import tomli_w
from jsonschema import Draft202012Validator

from beds import jsonschemas
from beds.config import load_settings
from beds.errors import ConfigError, TemplateError
from beds.templates.loader import load_template

ROOT = Path(__file__).resolve().parents[2]
SCHEMAS = ROOT / "docs/schemas"
TEMPLATES = sorted((ROOT / "templates").rglob("*.toml"))
CONFIGS = sorted((ROOT / "config").glob("*.toml"))


def validator(name: str) -> Draft202012Validator:
    schema = json.loads((SCHEMAS / jsonschemas.FILES[name]).read_text())
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)


def errors(name: str, document: dict[str, Any]) -> list[tuple[str, str]]:
    return sorted((e.json_path, e.message) for e in validator(name).iter_errors(document))


@pytest.mark.parametrize("name", ["template", "config"])
def test_the_committed_schemas_are_what_the_loaders_generate(name: str) -> None:
    fresh = jsonschemas.render({"template": jsonschemas.template_schema,
                                "config": jsonschemas.config_schema}[name]())
    committed = (SCHEMAS / jsonschemas.FILES[name]).read_text()
    assert committed == fresh, "docs/schemas is stale: run `make jsonschema`"


@pytest.mark.parametrize("path", TEMPLATES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_shipped_template_validates(path: Path) -> None:
    assert errors("template", tomllib.loads(path.read_text())) == []


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_shipped_config_file_validates(path: Path) -> None:
    assert errors("config", tomllib.loads(path.read_text())) == []


def _film() -> dict[str, Any]:
    return tomllib.loads((ROOT / "templates/film.toml").read_text())


def _broken(change: str) -> dict[str, Any]:
    doc = copy.deepcopy(_film())
    if change == "wrong type":
        doc["ops"]["list"]["limit"] = "ten"
    elif change == "unknown key":
        doc["ops"]["fetch"]["procedur"] = doc["ops"]["fetch"].pop("procedure")
    elif change == "bad choice":
        doc["fields"]["film_id"]["type"] = "integer"
    elif change == "below minimum":
        doc["ops"]["list"]["limit"] = 0
    elif change == "two targets":
        doc["ops"]["fetch"]["view"] = "film_list"
    return doc


@pytest.mark.parametrize(("change", "path", "words"), [
    ("wrong type", "$.ops.list.limit", "'ten' is not of type 'integer'"),
    ("unknown key", "$.ops.fetch", "'procedur' was unexpected"),
    ("bad choice", "$.fields.film_id.type", "'integer' is not one of"),
    ("below minimum", "$.ops.list.limit", "0 is less than the minimum of 1"),
    ("two targets", "$.ops.fetch", "is valid under each of"),
])
def test_a_broken_template_fails_at_the_key_that_is_wrong(
    change: str, path: str, words: str, tmp_path: Path,
) -> None:
    found = errors("template", _broken(change))
    assert {p for p, _ in found} == {path}, found
    assert any(words in message for _, message in found), found
    # The loader refuses the same file: the schema says nothing the node would not.
    file = tmp_path / "film.toml"
    file.write_text(tomli_w.dumps(_broken(change)))
    with pytest.raises(TemplateError):
        load_template(file)


def test_a_broken_config_fails_at_the_key_that_is_wrong(tmp_path: Path) -> None:
    override = {"amqp": {"heartbeat": "ten"}, "brokers": {"rBroker": {"kinds": ["reed"]}}}
    found = errors("config", override)
    assert [p for p, _ in found] == ["$.amqp.heartbeat", "$.brokers.rBroker.kinds[0]"], found
    file = tmp_path / "env.toml"
    file.write_text(tomli_w.dumps(override))
    with pytest.raises(ConfigError, match="amqp.heartbeat"):
        load_settings(ROOT / "config/beds.toml", file, environ={"BEDS_MYSQL_PASSWORD": "x"})


def test_config_strings_may_name_environment_variables() -> None:
    # Substituted after the editor sees the file: a pattern-checked key may hold ${VAR}.
    assert errors("config", {"ops": {"http_listen": "${BEDS_HTTP_LISTEN:-127.0.0.1:9464}"}}) == []
    assert [p for p, _ in errors("config", {"ops": {"http_listen": "nine"}})] == [
        "$.ops.http_listen"]


def _properties(schema: dict[str, Any], path: str = "") -> list[tuple[str, dict[str, Any]]]:
    found = []
    for key, sub in schema.get("properties", {}).items():
        here = f"{path}.{key}" if path else key
        found.append((here, sub))
        found += _properties(sub, here)
        if isinstance(sub.get("additionalProperties"), dict):
            found += _properties(sub["additionalProperties"], f"{here}.NAME")
    return found


@pytest.mark.parametrize("name", ["template", "config"])
def test_every_key_the_loader_accepts_has_a_type(name: str) -> None:
    # A key in a loader's allowed list that its sample never read would be untyped: extend the
    # sample in beds/jsonschemas.py so the loader reads it.
    schema = json.loads((SCHEMAS / jsonschemas.FILES[name]).read_text())
    untyped = [path for path, sub in _properties(schema)
               if not {"type", "anyOf"} & set(sub)]
    assert untyped == []
    # Hover text: every key has its description from the reference pages.
    undescribed = [path for path, sub in _properties(schema) if "description" not in sub]
    assert undescribed == []


def test_taplo_maps_templates_and_config_to_the_schemas() -> None:
    taplo = tomllib.loads((ROOT / "taplo.toml").read_text())
    rules = {tuple(rule["include"]): rule["schema"]["path"] for rule in taplo["rule"]}
    assert rules == {("templates/**/*.toml",): "./docs/schemas/template.schema.json",
                     ("config/*.toml",): "./docs/schemas/config.schema.json"}
    for path in rules.values():
        assert (ROOT / path).is_file()
