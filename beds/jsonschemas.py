"""JSON Schemas (draft 2020-12) of the TOML files BEDS reads: a template and the config.

Layer: tooling, beside the loaders; pure (it writes only the files it is asked to). Editors use
the schemas to complete and check TOML (taplo / Even Better TOML, see taplo.toml); the loaders
stay the authority: cross-key rules (a param must be a declared field, a role's brokers must
exist) are checked by `beds templates check` and at start-up, not here.

The loaders read TOML imperatively through `beds.table.Table`. Rather than keep a second list
of keys, this module runs the real loaders over a sample document with the reference pages'
`RecordingTable` (beds.reference.recording), which notes each read (key, type, default, minimum,
choices, pattern) and each `reject_unknown` list, so a key added to a loader appears in the schema
at the next `make jsonschema`; the hover texts are the reference pages' descriptions.

    python -m beds.jsonschemas docs/schemas      # writes template.schema.json, config.schema.json
"""

from __future__ import annotations

import json
import re
import sys
import tomllib
from pathlib import Path
from typing import Any

from beds.config import load as config_load
from beds.errors import TemplateError
from beds.reference import config_keys, template_format
from beds.reference.recording import KeyDoc, Recorder, RecordingTable
from beds.templates.loader import template_from_table
from beds.templates.model import OpTarget

DRAFT = "https://json-schema.org/draft/2020-12/schema"
FILES = {"template": "template.schema.json", "config": "config.schema.json"}
# A config string may be `${VAR}` / `${VAR:-default}`, substituted after the editor sees it.
_INTERPOLATED: dict[str, Any] = {"type": "string", "pattern": r"\$\{[A-Za-z_][A-Za-z0-9_]*(:-[^}]*)?\}"}
# Keys the loaders read raw (their own parsing), described here.
_DURATION = {"anyOf": [{"type": "number", "minimum": 0},
                       {"type": "string", "pattern": r"^\s*\d+(\.\d+)?\s*[smhd]?\s*$"}],
             "description": "Seconds, or a number with s, m, h or d, e.g. \"30d\""}
_RAW: dict[str, dict[str, Any]] = {
    "fields.NAME.choices": {"type": "array", "minItems": 1,
                         "description": "The only values a caller may send"},
    "warehouse.older_than": _DURATION,
    "warehouse.every": _DURATION,
    # A list, or one comma-separated string: the form ${BEDS_AMQP_URLS} takes.
    "amqp.urls": {"anyOf": [{"type": "array", "items": {"type": "string"}, "uniqueItems": True},
                            {"type": "string"}]},
    "datasources.NAME.replicas": {"type": "array", "items": {"type": "string"},
                                  "uniqueItems": True},
}

# The sample documents: every branch of the loaders is taken once (each op target, a bulk op, a
# warehouse policy; every config table), so every key they accept is read with its type.
_TEMPLATE_SAMPLE = '''
name = "sample"
datasource = "main"
description = "d"
broker = "b"
allow = ["u"]
[fields]
id = { type = "int", min = 1, max = 9, description = "d", required = true, protected = false }
code = { type = "str", max_length = 5, pattern = "^[a-z]+$", choices = ["a"] }
day = { type = "datetime" }
age_seconds = { type = "int" }
after_key = { type = "int" }
batch_size = { type = "int" }
keys = { type = "json" }
[ops.get]
kind = "read"
procedure = "p"
params = ["id", "code"]
optional = ["code"]
out = ["o"]
idempotency_key = "id"
broker = "b"
allow = ["u"]
description = "d"
[ops.list]
kind = "read"
view = "v"
filters = ["code"]
order_by = ["-id"]
limit = 10
[ops.value]
kind = "read"
function = "f"
params = ["id"]
[ops.extract]
kind = "read"
procedure = "x"
params = ["age_seconds", "after_key", "batch_size"]
optional = ["after_key"]
[ops.purge]
kind = "write"
procedure = "y"
params = ["keys", "age_seconds"]
[ops.many]
kind = "bulk"
of = "purge"
max_rows = 10
[warehouse]
key = "id"
age_field = "day"
older_than = "30d"
batch = 10
every = "60s"
extract = "extract"
purge = "purge"
load = "archive.load"
'''
_CONFIG_SAMPLE = '''
[datasources.main]
engine = "mysql"
dsn = "mysql://u:p@h/db"
[brokers.b]
[roles.r]
brokers = ["b"]
'''

_KINDS = {"string": "string", "integer": "integer", "number": "number", "boolean": "boolean"}
_LINK_RE = re.compile(r"\[([^\]]+)\]\([^)]+\)")


_TABLES = {
    "template": {
        "fields": "Every parameter and filter, declared and validated: [fields] NAME = {...}",
        "ops": "The ops callers name: [ops.NAME]",
        "warehouse": "HOT -> COOL moves run by the segundo role's warehouse broker",
    },
    "config": {
        "node": "This node: name, templates folder, shutdown grace, logging",
        "amqp": "RabbitMQ connection, exchanges and message size caps",
        "datasources": "Databases by name: [datasources.NAME]; templates name one",
        "brokers": "Consumers by name: [brokers.NAME], a queue each",
        "roles": "What `beds --role NAME` starts: [roles.NAME]",
        "security": "Request authentication rules",
        "tracing": "OpenTelemetry spans (extra otel)",
        "ops": "Operations plane: commands, events, metrics, log shipping, /live /ready /metrics",
        "admin": "The admin role: dashboard, log store, syslog",
    },
}


def _descriptions(doc: str) -> dict[str, str]:
    """Hover text: the meanings the reference pages show (kept complete by the docs build)."""
    if doc == "config":
        texts = dict(config_keys.DESCRIPTIONS)
    else:
        texts = {path: meaning for path, (_ops, meaning) in template_format.DESCRIPTIONS.items()}
    texts.update(_TABLES[doc])
    return {path: _LINK_RE.sub(r"\1", text) for path, text in texts.items()}


def _scalar(key: KeyDoc, path: str) -> dict[str, Any]:
    if path in _RAW:
        return dict(_RAW[path])
    if key.kind == "list of strings":
        schema: dict[str, Any] = {"type": "array", "items": _string(key), "uniqueItems": True}
    elif key.kind == "string":
        schema = _string(key)
    elif key.kind in _KINDS:
        schema = {"type": _KINDS[key.kind]}
        if key.minimum is not None:
            schema["minimum"] = key.minimum
    else:
        return {}
    if not key.required and key.default is not None:
        schema["default"] = list(key.default) if isinstance(key.default, tuple) else key.default
    return schema


def _string(key: KeyDoc) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "string"}
    if key.choices is not None:
        schema["enum"] = list(key.choices)
    if key.pattern is not None:   # the loader uses fullmatch; JSON Schema patterns search
        schema["pattern"] = f"^(?:{key.pattern})$"
    return schema


def _object(recorder: Recorder, table: str, texts: dict[str, str], interpolate: bool,
            required: bool) -> dict[str, Any]:
    """The schema of one kind of table (`ops.NAME`), from what the loader read of it."""
    read = {doc.key: doc for doc in recorder.in_table(table)}
    allowed = recorder.allowed.get(table)
    props: dict[str, Any] = {}
    for key in [*read, *sorted((allowed or set()) - set(read))]:
        path = f"{table}.{key}" if table else key
        schema: dict[str, Any]
        if f"{path}.NAME" in recorder.reads:     # [key.NAME] tables
            schema = {"type": "object", "additionalProperties":
                      _object(recorder, f"{path}.NAME", texts, interpolate, required)}
        elif path in recorder.reads:             # [key]
            schema = _object(recorder, path, texts, interpolate, required)
        else:
            schema = _scalar(read[key], path) if key in read else {}
            if interpolate and schema.get("type") == "string" and {"enum", "pattern"} & set(schema):
                default = schema.pop("default", None)
                schema = {"anyOf": [schema, _INTERPOLATED]}
                if default is not None:
                    schema["default"] = default
        text = texts.get(path)
        props[key] = {"description": text, **schema} if text else schema
    out: dict[str, Any] = {"type": "object", "properties": props}
    if allowed is not None:
        out["additionalProperties"] = False
    needed = [key for key, doc in read.items() if doc.required and recorder.required_everywhere(doc)]
    if required and needed:
        out["required"] = needed
    return out


def template_schema() -> dict[str, Any]:
    """The schema of `templates/NAME.toml`, recorded from beds.templates.loader."""
    recorder = Recorder()
    sample = RecordingTable(tomllib.loads(_TEMPLATE_SAMPLE), recorder, error=TemplateError,
                            source="sample")
    template_from_table(sample, Path("sample.toml"))
    schema = _object(recorder, "", _descriptions("template"), interpolate=False, required=True)
    # Rules the loader applies in code rather than by reading a key: at least one op; every op
    # has a kind (a bulk op's is read only to tell it is bulk); exactly one target per op that
    # is not bulk, and `of` on one that is.
    schema["required"] = [*schema.get("required", []), "ops"]
    schema["properties"]["ops"]["minProperties"] = 1
    op = schema["properties"]["ops"]["additionalProperties"]
    op["required"] = ["kind", *op.get("required", [])]
    op["if"] = {"properties": {"kind": {"const": "bulk"}}, "required": ["kind"]}
    op["then"] = {"required": ["of"]}
    op["else"] = {"oneOf": [{"required": [t.value]} for t in OpTarget]}
    return _document("BEDS template", "A template file: templates/NAME.toml", schema)


def config_schema() -> dict[str, Any]:
    """The schema of `config/*.toml`, recorded from beds.config. No key is required: a file
    may be one layer (an override) of the config; the loader checks the merged result."""
    recorder = Recorder()
    sample = RecordingTable(tomllib.loads(_CONFIG_SAMPLE), recorder, source="sample")
    config_load._validate(sample, Path("config"))   # the loader's own checks, as config_keys runs them
    schema = _object(recorder, "", _descriptions("config"), interpolate=True, required=False)
    return _document("BEDS config", "config/beds.toml or an override file (--env)", schema)


def _document(title: str, description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"$schema": DRAFT, "title": title, "description": description, **schema}


def render(schema: dict[str, Any]) -> str:
    return json.dumps(schema, indent=2, ensure_ascii=False) + "\n"


def write(folder: Path) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for name, build in (("template", template_schema), ("config", config_schema)):
        path = folder / FILES[name]
        path.write_text(render(build()), encoding="utf-8")
        written.append(path)
    return written


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m beds.jsonschemas OUTDIR", file=sys.stderr)
        return 2
    for path in write(Path(argv[0])):
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
