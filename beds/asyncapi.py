"""`beds docs`: the node's catalogue as an AsyncAPI 3.0 document and a Markdown catalogue.

Layer: tooling (CLI only). Reads the config and the templates; never connects. The document
describes the BEDS node: every template op is an operation the node RECEIVES on the topic
exchange (routing key `<template>.<op>`, AMQP bindings) and answers on the caller's `reply_to`.
Params schemas come from the field declarations; reply schemas follow the README's wire
protocol (ok: data, out, sets, meta; error: code, message, retryable).
"""

from __future__ import annotations

import argparse
import hashlib
import json
from dataclasses import replace
from pathlib import Path
from typing import Any
from urllib.parse import SplitResult, unquote, urlsplit

from beds import __version__
from beds.config import Settings
from beds.config.ops import Service
from beds.dispatch import assign_broker
from beds.errors import ERROR_CODES, TemplateError
from beds.scaffold.docs import render_template_doc
from beds.templates.loader import load_templates
from beds.templates.model import Field, FieldType, Op, OpTarget, Template
from beds.tracecontext import TRACEPARENT_PATTERN

AMQP_BINDING = "0.3.0"
_DECIMAL_PATTERN = r"^-?[0-9]+(\.[0-9]+)?$"
_TYPES: dict[FieldType, dict[str, Any]] = {
    FieldType.STR: {"type": "string"},
    FieldType.INT: {"type": "integer"},
    FieldType.FLOAT: {"type": "number"},
    FieldType.DECIMAL: {"type": ["string", "number"], "pattern": _DECIMAL_PATTERN,
                        "description": "exact decimal: a string such as \"12.50\", or a number"},
    FieldType.BOOL: {"type": "boolean"},
    FieldType.DATE: {"type": "string", "format": "date"},
    FieldType.DATETIME: {"type": "string",
                         "description": "ISO 8601 date and time, e.g. 2026-01-31T12:00:00"},
    FieldType.JSON: {},
}


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser],
               common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("docs", parents=[common],
                       help="write the AsyncAPI 3.0 document and the Markdown catalogue")
    p.add_argument("--out", help="folder to write into (default: docs/api under the project)")


def catalogue_templates(settings: Settings) -> list[Template]:
    """Every template some role serves: each role's folder once. Two folders defining the same
    template would bind one routing key to two queues (each request run twice): refused."""
    found: dict[str, Template] = {}
    for folder in dict.fromkeys(settings.templates_dir(role) for role in settings.roles):
        for template in load_templates(folder):
            if template.name in found:
                raise TemplateError(f"{template.path}: template {template.name!r} is also "
                                    f"defined in {found[template.name].path}; a routing key "
                                    "must reach one queue: rename one of them")
            found[template.name] = template
    return sorted(found.values(), key=lambda t: t.name)


def served_catalogue(settings: Settings) -> tuple[list[Template], dict[tuple[str, str], str]]:
    """The templates with only the ops callers may call (a request broker serves them), and the
    broker of each (template, op)."""
    brokers = {}
    templates = []
    for template in catalogue_templates(settings):
        ops = {}
        for op in template.ops.values():
            broker = assign_broker(template, op, settings.brokers)
            if settings.brokers[broker].service is Service.REQUESTS:   # else: internal only
                brokers[(template.name, op.name)] = broker
                ops[op.name] = op
        if ops:
            templates.append(replace(template, ops=ops))
    return templates, brokers


def run_docs(settings: Settings, out: Path) -> int:
    templates, brokers = served_catalogue(settings)
    out.mkdir(parents=True, exist_ok=True)
    document = out / "asyncapi.json"
    document.write_text(json.dumps(build_document(settings, templates, brokers), indent=2,
                                   ensure_ascii=False) + "\n", encoding="utf-8")
    catalogue = out / "catalogue.md"
    catalogue.write_text(render_catalogue(settings, templates, brokers), encoding="utf-8")
    print(f"wrote {document}\nwrote {catalogue}")
    return 0


# -- the AsyncAPI document --------------------------------------------------------------------

def build_document(settings: Settings, templates: list[Template],
                   brokers: dict[tuple[str, str], str]) -> dict[str, Any]:
    amqp = settings.amqp
    url = urlsplit(amqp.url)
    vhost = unquote(url.path[1:]) if len(url.path) > 1 else "/"
    secure = url.scheme == "amqps"
    exchange = {"name": amqp.exchange, "type": "topic", "durable": True, "autoDelete": False,
                "vhost": vhost}
    channels: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    messages: dict[str, Any] = {}
    replies: dict[str, Any] = {}
    for template in templates:
        for op in template.ops.values():
            key = f"{template.name}.{op.name}"
            messages[f"{key}.request"] = _request_message(template, op)
            messages[f"{key}.reply"] = _reply_message(template, op)
            replies[f"{key}.reply"] = {"$ref": f"#/components/messages/{key}.reply"}
            channels[key] = {
                "address": key, "title": key, "description": op.description or key,
                "servers": [{"$ref": "#/servers/rabbitmq"}],
                "messages": {"request": {"$ref": f"#/components/messages/{key}.request"}},
                "bindings": {"amqp": {"is": "routingKey", "exchange": exchange,
                                      "bindingVersion": AMQP_BINDING}}}
            operations[key] = _operation(template, op, key, brokers[(template.name, op.name)])
    channels["reply"] = {
        "address": None,
        "description": "The caller's reply queue, named by the request's reply_to property: "
                       "direct reply-to (amq.rabbitmq.reply-to) or any queue of the caller's.",
        "messages": replies}
    return {
        "asyncapi": "3.0.0",
        "info": {"title": f"BEDS catalogue of node {settings.node.name}",
                 "version": f"{__version__}+{_digest(templates)}",
                 "description": "Template RPC over RabbitMQ: publish a JSON request to the "
                                f"`{amqp.exchange}` topic exchange with routing key "
                                "`<template>.<op>`; the node replies on `reply_to` with the same "
                                "`correlation_id`. Generated by `beds docs`."},
        "defaultContentType": "application/json",
        "servers": {"rabbitmq": {"host": _host(url, secure),
                                 "protocol": "amqps" if secure else "amqp",
                                 "protocolVersion": "0.9.1",
                                 "description": f"RabbitMQ, virtual host {vhost!r}"}},
        "channels": channels,
        "operations": operations,
        "components": {"messages": messages, "schemas": _shared_schemas()},
    }


def _host(url: SplitResult, secure: bool) -> str:
    """host:port, without the credentials the URL may carry."""
    try:
        port = url.port
    except ValueError:     # not a number: the node would fail to connect and say so
        port = None
    host = url.hostname or "127.0.0.1"
    host = f"[{host}]" if ":" in host else host
    return f"{host}:{port or (5671 if secure else 5672)}"


def _digest(templates: list[Template]) -> str:
    h = hashlib.sha256()
    for t in templates:
        h.update(t.path.read_bytes())
    return h.hexdigest()[:8]


def _operation(template: Template, op: Op, key: str, broker: str) -> dict[str, Any]:
    return {
        "action": "receive",
        "channel": {"$ref": f"#/channels/{key}"},
        "title": key,
        "summary": op.description or f"{op.kind.value} op of template {template.name}",
        "description": f"Kind `{op.kind.value}`, served by broker `{broker}`; runs "
                       f"{op.target.value} `{op.object_name}` on datasource "
                       f"`{template.datasource}`.",
        "messages": [{"$ref": f"#/channels/{key}/messages/request"}],
        "reply": {"address": {"location": "$message.header#/reply_to",
                              "description": "the request's reply_to property"},
                  "channel": {"$ref": "#/channels/reply"},
                  "messages": [{"$ref": f"#/channels/reply/messages/{key}.reply"}]},
        "bindings": {"amqp": {"deliveryMode": 2, "mandatory": True,
                              "bindingVersion": AMQP_BINDING}},
        "x-beds": {"kind": op.kind.value, "broker": broker, "target": op.target.value,
                   "object": op.object_name, "datasource": template.datasource},
    }


def _request_message(template: Template, op: Op) -> dict[str, Any]:
    props: dict[str, Any] = {"template": {"const": template.name},
                             "op": {"const": op.name},
                             "params": params_schema(template, op)}
    if op.target is OpTarget.VIEW:
        props["limit"] = {"type": "integer", "minimum": 1, "maximum": op.limit,
                          "default": op.limit}
        props["offset"] = {"type": "integer", "minimum": 0, "default": 0}
    params = props["params"]
    return {
        "name": f"{template.name}.{op.name}.request",
        "title": f"{template.name}.{op.name} request",
        "contentType": "application/json",
        "correlationId": {"location": "$message.header#/correlation_id"},
        "headers": {"type": "object", "properties": {
            "x-deadline": {"type": "integer",
                           "description": "absolute deadline, epoch milliseconds"},
            "traceparent": {"type": "string", "pattern": TRACEPARENT_PATTERN,
                            "description": "W3C Trace Context: the caller's span (optional)"},
            "tracestate": {"type": "string", "description": "W3C Trace Context (optional)"}}},
        "payload": {"type": "object", "properties": props, "additionalProperties": False,
                    "required": ["template", "op", *(["params"] if "required" in params else [])]},
        "bindings": {"amqp": {"contentEncoding": "utf-8", "messageType": "beds.request",
                              "bindingVersion": AMQP_BINDING}},
    }


def params_schema(template: Template, op: Op) -> dict[str, Any]:
    """The `params` object: declared fields only; view filters are all optional and non-null."""
    view = op.target is OpTarget.VIEW
    names = op.filters if view else op.params
    required = [] if view else [n for n in names if n not in op.optional
                                and template.fields[n].required and n != op.idempotency_key]
    properties = {}
    for name in names:
        nullable = not view and name not in required
        properties[name] = field_schema(template.fields[name], nullable)
        if name == op.idempotency_key:
            properties[name]["description"] = ("idempotency key; defaults to the AMQP "
                                               "message_id")
    schema: dict[str, Any] = {"type": "object", "properties": properties,
                              "additionalProperties": False}
    if required:
        schema["required"] = required
    if op.of is not None:
        # A bulk op: {"rows": [...]}, each row the params of the write op it batches.
        rows = {"type": "array", "minItems": 1, "maxItems": op.max_rows, "items": schema,
                "description": f"one call of {template.name}.{op.of} per row, in one request"}
        return {"type": "object", "properties": {"rows": rows}, "required": ["rows"],
                "additionalProperties": False}
    return schema


def field_schema(field: Field, nullable: bool = False) -> dict[str, Any]:
    schema = dict(_TYPES[field.type])
    if field.min is not None:
        schema["minimum"] = int(field.min) if field.type is FieldType.INT else field.min
    if field.max is not None:
        schema["maximum"] = int(field.max) if field.type is FieldType.INT else field.max
    if field.max_length is not None:
        schema["maxLength"] = field.max_length
    if field.pattern is not None:
        schema["pattern"] = field.pattern
    if field.choices is not None:
        schema["enum"] = list(field.choices)
    if field.description:
        schema["description"] = field.description
    if field.protected:
        schema["writeOnly"] = True
    if nullable and "type" in schema:
        kinds = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
        schema["type"] = [*kinds, "null"]
        if "enum" in schema:
            schema["enum"] = [*schema["enum"], None]
    return schema


def _reply_message(template: Template, op: Op) -> dict[str, Any]:
    row: dict[str, Any] = {"type": "object", "description": "a row: column name -> value"}
    if op.target is OpTarget.FUNCTION:
        row = {"type": "object", "properties": {"value": {}},
               "description": "a scalar function's value (set-returning: its own columns)"}
    ok: dict[str, Any] = {
        "type": "object", "required": ["ok", "data", "meta"],
        "properties": {"ok": {"const": True},
                       "data": {"type": "array", "items": row,
                                "description": "rows of the first result set or the view"},
                       "meta": {"$ref": "#/components/schemas/ReplyMeta"}}}
    if op.out:
        ok["required"].append("out")
        ok["properties"]["out"] = {"type": "object", "required": list(op.out),
                                   "properties": {n: {} for n in op.out},
                                   "description": "OUT parameters by name"}
    if op.target is OpTarget.PROCEDURE:
        ok["properties"]["sets"] = {"type": "array", "items": {"type": "array", "items": row},
                                    "description": "every result set, when there are two "
                                                   "or more"}
    return {
        "name": f"{template.name}.{op.name}.reply",
        "title": f"{template.name}.{op.name} reply",
        "contentType": "application/json",
        "correlationId": {"location": "$message.header#/correlation_id"},
        "payload": {"oneOf": [ok, {"$ref": "#/components/schemas/Failure"}]},
    }


def _shared_schemas() -> dict[str, Any]:
    return {
        "ReplyMeta": {"type": "object", "required": ["template", "op", "node", "broker"],
                      "properties": {"template": {"type": ["string", "null"]},
                                     "op": {"type": ["string", "null"]},
                                     "node": {"type": "string"}, "broker": {"type": "string"},
                                     "rows": {"type": "integer", "minimum": 0},
                                     "elapsed_ms": {"type": "number", "minimum": 0}}},
        "ReplyError": {"type": "object", "required": ["code", "message", "retryable"],
                       "properties": {"code": {"type": "string", "enum": sorted(ERROR_CODES)},
                                      "message": {"type": "string"},
                                      "retryable": {"type": "boolean"},
                                      "details": {"type": "object"}}},
        "Failure": {"type": "object", "required": ["ok", "error", "meta"],
                    "properties": {"ok": {"const": False},
                                   "error": {"$ref": "#/components/schemas/ReplyError"},
                                   "meta": {"$ref": "#/components/schemas/ReplyMeta"}}},
    }


# -- the Markdown catalogue -------------------------------------------------------------------

def render_catalogue(settings: Settings, templates: list[Template],
                     brokers: dict[tuple[str, str], str]) -> str:
    exchange = settings.amqp.exchange
    lines = [f"# BEDS catalogue: node {settings.node.name}", "",
             f"Every op is a request published to the `{exchange}` topic exchange with routing "
             "key `<template>.<op>` and answered on `reply_to` (see the README's wire protocol; "
             "the machine-readable form is `asyncapi.json` beside this file). Written by "
             "`beds docs`.", "", "| template | ops | description |", "|---|---|---|"]
    for t in templates:
        ops = ", ".join(f"[{o}](#{t.name}{o})" for o in t.ops)
        lines.append(f"| [{t.name}](#{t.name}) | {ops} | {t.description} |")
    for t in templates:
        served_by = {o.name: brokers[(t.name, o.name)] for o in t.ops.values()}
        lines += ["", f'<a id="{t.name}"></a>',
                  render_template_doc(t, exchange=exchange, level=2, brokers=served_by).rstrip()]
    return "\n".join(lines) + "\n"
