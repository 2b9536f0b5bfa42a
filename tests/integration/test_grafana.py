"""docs/grafana/beds.json asks only for metrics a node exports: every PromQL expression in the
dashboard is checked against the /metrics of a real node (RabbitMQ + MariaDB) in this process."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import aiohttp
import pytest

from beds.client import Client
from tests.support.services import AMQP_URL, ROOT
from tests.support.stack import NodeFactory

DASHBOARD = ROOT / "docs/grafana/beds.json"
# PromQL words that are not metric names (functions, aggregations, keywords) used or likely.
PROMQL_WORDS = frozenset(["sum", "min", "max", "avg", "count", "stddev", "stdvar", "topk", "bottomk", "quantile", "count_values", "group", "rate", "irate", "increase", "delta", "idelta", "deriv", "histogram_quantile", "label_replace", "label_join", "abs", "ceil", "floor", "round", "clamp", "clamp_min", "clamp_max", "vector", "scalar", "time", "timestamp", "avg_over_time", "max_over_time", "min_over_time", "sum_over_time", "count_over_time", "last_over_time", "by", "without", "on", "ignoring", "group_left", "group_right", "bool", "and", "or", "unless", "offset", "inf", "nan"])


@pytest.fixture
async def metrics_text(node_factory: NodeFactory) -> str:
    running = await node_factory(ops={"http_listen": "127.0.0.1:0"})
    async with Client(AMQP_URL, running.stack.exchange) as client:
        await client.call("film", "fetch", {"film_id": 1})
    async with aiohttp.ClientSession() as session, \
            session.get(f"{running.http_url}/metrics") as response:
        return await response.text()


def exported_names(text: str) -> set[str]:
    """Every series name the exposition declares, whether or not it has samples yet."""
    names: set[str] = set()
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split()
            names.add(name)
            if kind == "histogram":
                names |= {f"{name}_bucket", f"{name}_sum", f"{name}_count"}
        elif line and not line.startswith("#"):
            names.add(re.split(r"[{ ]", line, maxsplit=1)[0])
    return names


def expressions(node: Any) -> Iterator[str]:
    """Every `expr` of a panel target and every templating query, anywhere in the JSON."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key in ("expr", "definition") and isinstance(value, str):
                yield value
            else:
                yield from expressions(value)
    elif isinstance(node, list):
        for item in node:
            yield from expressions(item)


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression selects (label_values(m, l) names m)."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)              # string literals
    text = re.sub(r"\{[^}]*\}", "", text)                         # label matchers
    text = re.sub(r"\[[^\]]*\]", "", text)                        # range selectors
    text = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", text)
    text = re.sub(r"label_values\(\s*([A-Za-z_:][\w:]*)\s*,[^)]*\)", r"\1", text)
    names = set(re.findall(r"(?<![\w$.])[A-Za-z_:][\w:]*", text))
    return {n for n in names if n not in PROMQL_WORDS and not n.startswith("__")}


def test_the_name_extraction_finds_what_an_expression_selects() -> None:
    assert metric_names('histogram_quantile(0.95, sum by (le, op) '
                        '(rate(beds_request_seconds_bucket{job=~"$job"}[$__rate_interval])))') \
        == {"beds_request_seconds_bucket"}
    assert metric_names('label_values(beds_build_info{job=~"$job"}, instance)') == \
        {"beds_build_info"}
    assert metric_names("sum(rate(a_total[5m])) / sum(b)") == {"a_total", "b"}


async def test_every_dashboard_expression_names_only_exported_metrics(metrics_text: str) -> None:
    exported = exported_names(metrics_text)
    dashboard = json.loads(DASHBOARD.read_text())
    exprs = list(expressions(dashboard))
    assert len(exprs) >= 20
    used: set[str] = set()
    for expr in exprs:
        names = metric_names(expr)
        assert names, f"no metric in {expr!r}"
        missing = names - exported
        assert not missing, f"{expr!r} names {sorted(missing)}, which the node does not export"
        used |= names
    # The dashboard shows what issue 16 asks a node to export.
    assert {"beds_build_info", "process_resident_memory_bytes", "beds_request_retries_total",
            "beds_requests_dead_lettered_total", "beds_redeliveries_total",
            "beds_requests_requeued_total", "beds_pool_connections_in_use",
            "beds_pool_waiting_requests", "beds_queue_messages"} <= used
