"""The `.env` reader of the CLI: the KEY=VALUE lines `make` writes, and no surprises."""

from __future__ import annotations

from pathlib import Path

import pytest

from beds.cli.dotenv import environment, parse_dotenv
from beds.errors import ConfigError


def test_plain_quoted_exported_and_commented_lines() -> None:
    text = ("# local secrets\n\nBEDS_MYSQL_PASSWORD=abc123\nexport BEDS_NODE_NAME = app1\n"
            "QUOTED='two words # kept'\nDOUBLE=\"x=y\"\nTRAILING=value # a comment\nEMPTY=\n")
    assert parse_dotenv(text) == {"BEDS_MYSQL_PASSWORD": "abc123", "BEDS_NODE_NAME": "app1",
                                  "QUOTED": "two words # kept", "DOUBLE": "x=y",
                                  "TRAILING": "value", "EMPTY": ""}


def test_values_are_taken_literally() -> None:
    assert parse_dotenv("A=${HOME}\\n") == {"A": "${HOME}\\n"}


@pytest.mark.parametrize(("text", "message"), [
    ("GOOD=1\nnot a line\n", ".env:2: expected KEY=VALUE, got 'not a line'"),
    ("1BAD=x\n", ".env:1: expected KEY=VALUE"),
    ("OPEN='no end\n", ".env:1: OPEN: the opening ' is never closed"),
])
def test_a_bad_line_is_named(text: str, message: str) -> None:
    with pytest.raises(ConfigError, match="^" + message.replace(".", r"\.").replace("'", "'")):
        parse_dotenv(text)


def test_the_environment_wins_over_the_file(tmp_path: Path) -> None:
    path = tmp_path / ".env"
    path.write_text("A=from-file\nB=from-file\n")
    assert environment(path, {"A": "from-env"}) == {"A": "from-env", "B": "from-file"}
    assert environment(tmp_path / "absent", {"A": "x"}) == {"A": "x"}
