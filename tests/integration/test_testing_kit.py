"""The test kit as a service author meets it: the example suite of docs/testing.md is written
out and run by pytest in a subprocess (the plugin loads through its entry point), against real
RabbitMQ and the session's MariaDB database; and FakeBeds refuses a bad request exactly as the
real node does."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from beds import Client, ValidationFailed
from beds.testing import FakeBeds
from tests.support.services import AMQP_URL, ROOT, MysqlDb

pytestmark = [pytest.mark.rabbitmq, pytest.mark.mariadb]
FILE_BLOCK = re.compile(r'^```\w+ title="([^"]+)"\n(.*?)^```$', re.MULTILINE | re.DOTALL)


def example_files() -> dict[str, str]:
    return dict(FILE_BLOCK.findall((ROOT / "docs/testing.md").read_text(encoding="utf-8")))


def test_the_documented_example_suite_passes(rabbitmq: str, mysql_db: MysqlDb,
                                             tmp_path: Path) -> None:
    files = example_files()
    assert set(files) == {"templates/film.toml", "film_service.py", "conftest.py",
                          "test_film_service.py", "pyproject.toml"}
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text, encoding="utf-8")
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-W", "error"],
        cwd=tmp_path, capture_output=True, text=True, timeout=240,
        env={**os.environ, "FILM_TEST_DSN": mysql_db.dsn, "BEDS_TEST_AMQP_URL": AMQP_URL})
    assert result.returncode == 0, result.stdout + result.stderr
    assert "5 passed" in result.stdout, result.stdout


async def test_fake_and_node_refuse_a_bad_param_alike(client: Client) -> None:
    fake = FakeBeds(ROOT / "templates")
    refused = []
    for caller in (client, fake):
        with pytest.raises(ValidationFailed) as info:
            await caller.call("film", "fetch", {"film_id": "x"})
        refused.append(info.value)
    node_error, fake_error = refused
    assert (fake_error.code, fake_error.message, fake_error.retryable) == \
        (node_error.code, node_error.message, node_error.retryable)
    strip = {"reply"}
    assert {k: v for k, v in fake_error.details.items() if k not in strip} == \
        {k: v for k, v in node_error.details.items() if k not in strip}
    assert fake_error.details["reply"]["error"] == node_error.details["reply"]["error"]
    assert set(fake_error.details["reply"]["meta"]) <= set(node_error.details["reply"]["meta"])
