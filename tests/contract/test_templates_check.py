"""`beds templates check` on every engine: the shipped templates match each engine's schema, and
a template naming a missing routine or passing the wrong number of arguments is reported."""

from __future__ import annotations

from pathlib import Path

import pytest

from beds.cli import main
from tests.contract.conftest import EngineDb
from tests.support.services import ROOT, SAMPLES
from tests.support.stack import copy_templates

BROKEN = (SAMPLES / "broken_template.toml").read_text()


def check(db: EngineDb, tmp_path: Path, templates: Path,
          capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(["templates", "check", "--config", str(ROOT / "config/beds.toml"),
                 "--env", str(db.env_file(tmp_path, templates))])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_shipped_templates_match_the_schema(engine_db: EngineDb, tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = check(engine_db, tmp_path, ROOT / "templates", capsys)
    assert (code, out) == (0, "")
    assert "2 templates, 12 ops checked: 0 errors, 0 warnings" in err


def test_broken_template_is_reported(engine_db: EngineDb, tmp_path: Path,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    templates = copy_templates(tmp_path / "templates", "film.toml")
    (templates / "broken.toml").write_text(BROKEN)
    code, out, err = check(engine_db, tmp_path, templates, capsys)
    assert code == 1
    where = f"{templates / 'broken.toml'}: ops."
    lines = {line.split(": error: ")[0].removeprefix(where): line.split(": error: ")[1]
             for line in out.splitlines()}
    assert set(lines) == {"no_function", "function_args", "no_procedure", "procedure_args",
                          "no_out", "bad_filter", "no_view"}, out
    assert lines["no_function"].startswith("function 'no_such_function' does not exist")
    assert lines["no_procedure"].startswith("procedure 'no_such_procedure' does not exist")
    assert lines["no_view"].startswith("view 'no_such_view' does not exist")
    # The wording of a signature mismatch is the engine's; the numbers are the contract.
    assert lines["function_args"].startswith("function 'get_customer_balance' takes 2 ")
    assert "declares 1 params" in lines["function_args"]
    assert lines["procedure_args"].startswith("procedure 'film_fetch' takes 1 IN")
    assert "declares 2 params and 0 out" in lines["procedure_args"]
    assert "declares 2 params and 0 out" in lines["no_out"]
    assert lines["bad_filter"] == "filter column 'store_id' is not a column of view 'film_list'"
    assert "7 errors" in err
