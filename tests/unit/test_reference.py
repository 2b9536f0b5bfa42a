"""The docs site's generated reference pages say what the code does (beds/reference/)."""

from __future__ import annotations

import argparse
import importlib.util
import tomllib
from pathlib import Path
from types import ModuleType

import pytest

from beds.cli.parser import build_parser
from beds.config import load as config_load
from beds.errors import ERROR_CODES
from beds.reference import config_keys as config_ref
from beds.reference import render
from beds.reference.recording import Recorder, RecordingTable
from beds.table import Table
from beds.templates import loader

ROOT = Path(__file__).resolve().parents[2]
BASE = ROOT / "config/beds.toml"


def _row(block: str, key: str) -> str:
    rows = [line for line in block.splitlines() if line.startswith(f"| `{key}` |")]
    assert rows, f"no row for {key}"
    return rows[0]


def _hooks() -> ModuleType:
    spec = importlib.util.spec_from_file_location("docs_hooks", ROOT / "docs/_hooks.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_recording_reads_the_config_exactly_as_the_loader_does() -> None:
    data = config_load._substitute(tomllib.loads(BASE.read_text()), "", {}, [])
    plain = config_load._validate(Table(data, lambda _p: "x"), BASE.parent)
    recorded = config_load._validate(RecordingTable(data, Recorder()), BASE.parent)
    assert recorded == plain


def test_every_config_key_the_loader_accepts_is_documented_with_its_default() -> None:
    recorder = config_ref.record(BASE)
    block = render("config-keys", ROOT)
    for table, allowed in recorder.allowed.items():
        if table:   # the root's keys are the tables themselves
            assert allowed == {doc.key for doc in recorder.in_table(table)}, table
    for doc in recorder.keys.values():
        assert f"### `[{doc.table}]`" in block
    # Defaults as the code applies them, not as config/beds.toml overrides them.
    data = {"datasources": {"d": {"engine": "mysql", "dsn": "mysql://u@h/db"}},
            "brokers": {"b": {"kinds": ["read"]}}, "roles": {"r": {"brokers": ["b"]}}}
    settings = config_load._validate(Table(data, lambda _p: "x"), BASE.parent)
    assert f"`{settings.brokers['b'].prefetch}`" in _row(block, "prefetch")
    assert f"`{settings.datasources['d'].pool_max}`" in _row(block, "pool_max")
    assert "`\"\"`" in _row(block, "http_listen")          # off unless configured
    assert "**required**" in _row(block, "engine")


def test_a_config_key_without_a_description_fails_the_build(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    bare = tmp_path / "beds.toml"   # no trailing comments to fall back on
    bare.write_text("\n".join(line.split("#")[0] for line in BASE.read_text().splitlines()))
    monkeypatch.delitem(config_ref.DESCRIPTIONS, "brokers.NAME.prefetch")
    with pytest.raises(ValueError, match=r"brokers\.NAME\.prefetch"):
        config_ref.config_reference(bare)


def test_every_template_key_is_documented() -> None:
    block = render("template-keys", ROOT)
    for key in (*loader._FIELD_KEYS, *loader._OP_KEYS, *loader._BULK_KEYS):
        assert f"| `{key}` |" in block, key
    assert "`100`" in _row(block, "limit")                  # the loader's default page size


def test_every_cli_command_and_flag_is_documented() -> None:
    block = render("cli", ROOT)
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    for name, command in sub.choices.items():
        assert f"### `beds {name}`" in block, name
        for action in command._actions:
            for option in action.option_strings:
                assert f"`{option}" in block or option in ("-h", "--help"), (name, option)


def test_every_error_code_with_its_retryability_and_fate() -> None:
    block = render("error-codes", ROOT)
    for code, cls in ERROR_CODES.items():
        row = _row(block, code)
        assert ("**yes**" in row) == cls.retryable, code
        assert ("dead-lettered" in row) == (cls.disposition == "dead_letter"), code


def test_readme_sections_show_with_links_that_work_from_the_page() -> None:
    hooks = _hooks()
    text = hooks.readme_section(ROOT / "README.md", "Guarantees", "operations/guarantees.md")
    assert "| # | guarantee |" in text
    assert "](../security.md)" in text and "](docs/" not in text
    with pytest.raises(ValueError, match="no '## Nope' section"):
        hooks.readme_section(ROOT / "README.md", "Nope", "index.md")


def test_an_unknown_block_names_the_known_ones() -> None:
    with pytest.raises(KeyError, match="known: cli, config-env"):
        render("nope", ROOT)


def test_json_schemas_are_linked_only_when_they_exist(tmp_path: Path) -> None:
    assert render("json-schemas", tmp_path) == ""
    (tmp_path / "docs/schemas").mkdir(parents=True)
    (tmp_path / "docs/schemas/template.schema.json").write_text("{}")
    assert "](../schemas/template.schema.json)" in render("json-schemas", tmp_path)
