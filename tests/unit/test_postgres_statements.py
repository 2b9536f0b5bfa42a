"""The PostgreSQL adapter's statements, built once per op from the example templates: quoted
names, bound values only, a time limit of its own only when it differs from the datasource's."""

from __future__ import annotations

from dataclasses import replace

import pytest

from beds.adapters.base import Call
from beds.adapters.postgres.adapter import PostgresAdapter
from beds.adapters.postgres.statements import PostgresStatement, _statement, quote
from beds.config import Engine, load_settings
from beds.errors import ConfigError
from beds.templates import load_templates
from tests.support.services import ROOT

SETTINGS = replace(
    load_settings(ROOT / "config/beds.toml",
                  environ={"BEDS_MYSQL_PASSWORD": "x"}).datasources["main"],
    engine=Engine.POSTGRES, dsn="postgresql://app:secret@127.0.0.1:5432/beds")
TEMPLATES = {t.name: t for t in load_templates(ROOT / "templates")}


def prepared(template: str, op: str) -> PostgresStatement:
    t = TEMPLATES[template]
    return PostgresAdapter(SETTINGS).prepare(t, t.ops[op])


def test_function_selects_from_the_function_so_a_scalar_is_named_value() -> None:
    st = prepared("customer", "balance")
    assert st.sql == 'SELECT * FROM "get_customer_balance"($1, $2) AS "value"'
    assert _statement(st, Call(args=[1, "x"])) == (st.sql, [1, "x"])


def test_procedure_passes_in_values_then_a_null_per_out() -> None:
    st = prepared("film", "in_stock")
    assert st.sql == 'CALL "film_in_stock"'
    assert st.call_args == ("$1", "$2", "NULL")
    assert st.write is False and prepared("customer", "create").write is True


def test_view_filters_present_in_order_then_order_limit_offset() -> None:
    st = prepared("film", "list")
    sql, args = _statement(st, Call(filters=[("category", "Action"), ("rating", "R")],
                                    limit=10, offset=20))
    assert sql == ('SELECT * FROM "film_list" WHERE "category" = $1 AND "rating" = $2 '
                   'ORDER BY "FID" LIMIT $3 OFFSET $4')
    assert args == ["Action", "R", 10, 20]
    sql, args = _statement(st, Call(limit=5))
    assert (sql, args) == ('SELECT * FROM "film_list" ORDER BY "FID" LIMIT $1 OFFSET $2', [5, 0])


def test_quote_doubles_embedded_quotes() -> None:
    assert quote('<unnamed portal 1>') == '"<unnamed portal 1>"'
    assert quote('a"b') == '"a""b"'


def test_a_malformed_dsn_is_a_config_error_before_anything_connects() -> None:
    with pytest.raises(ConfigError, match="datasources.main.dsn"):
        PostgresAdapter(replace(SETTINGS, dsn="not a dsn"))


def test_the_datasource_time_limit_is_a_connection_setting() -> None:
    kwargs = PostgresAdapter(replace(SETTINGS, statement_timeout=2.5)).connect_kwargs()
    assert kwargs["server_settings"]["statement_timeout"] == "2500"
    assert kwargs["timeout"] == SETTINGS.connect_timeout
    unlimited = PostgresAdapter(replace(SETTINGS, statement_timeout=0)).connect_kwargs()
    assert "statement_timeout" not in unlimited["server_settings"]
