"""What `beds scaffold` writes, without a database: a template the real loader accepts and that
names what the schema file creates; schema files numbered after the project's; nothing
overwritten without --force; spec text never escapes into SQL. (Applying the files to real
MariaDB and PostgreSQL, and serving them, is tests/integration/test_scaffold.py.)"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from beds.adapters.mysql.schema import split_statements
from beds.cli import main
from beds.config import OpKind
from beds.scaffold.command import scaffold, schema_number
from beds.scaffold.engines import Existing, generator_for
from beds.scaffold.generate import build
from beds.scaffold.spec import load_spec
from beds.templates.loader import load_template
from beds.templates.model import OpTarget
from tests.support.services import ROOT

EXAMPLE = ROOT / "docs/specs/supplier.toml"


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A copy of the project's schema layout."""
    for engine in ("mysql", "postgres"):
        shutil.copytree(ROOT / "schema" / engine, tmp_path / "schema" / engine)
    return tmp_path


def test_template_is_wired_to_the_generated_routines(project: Path) -> None:
    written = scaffold(EXAMPLE, "mysql", project)
    assert [(p.relative_to(project).as_posix(), s) for p, s in written] == [
        ("schema/mysql/100_supplier.sql", "wrote"), ("templates/supplier.toml", "wrote"),
        ("docs/templates/supplier.md", "wrote")]
    template = load_template(project / "templates/supplier.toml")
    ops = template.ops
    assert list(ops) == ["fetch", "list", "create", "update", "delete"]
    assert ops["list"].target is OpTarget.VIEW and ops["list"].filters == ("active",)
    create = ops["create"]
    assert create.kind is OpKind.WRITE and create.idempotency_key == "request_id"
    assert create.params == ("request_id", "name", "email", "credit_limit", "active")
    assert create.optional == {"credit_limit"} and create.out == ("supplier_id",)
    assert ops["update"].optional == {"name", "email", "credit_limit", "active"}
    sql = (project / "schema/mysql/100_supplier.sql").read_text()
    for op in ops.values():
        kind = "VIEW" if op.target is OpTarget.VIEW else "PROCEDURE"
        assert re.search(rf"CREATE OR REPLACE\s+(ALGORITHM = MERGE\s+SQL SECURITY DEFINER\s+)?"
                         rf"{kind} {op.object_name}\b", sql), op.name
        assert re.search(rf"GRANT (EXECUTE|SELECT) +ON (PROCEDURE )?{op.object_name} +TO "
                         r"\$\{app_user\};", sql), op.name
    doc = (project / "docs/templates/supplier.md").read_text()
    for name in ops:
        assert f"## supplier.{name}" in doc and f'"op": "{name}"' in doc


def test_schema_files_are_numbered_after_the_projects(tmp_path: Path, project: Path) -> None:
    assert schema_number(project / "schema/mysql", "supplier") == "100"
    assert schema_number(tmp_path / "nowhere", "supplier") == "010"
    (project / "schema/mysql/100_parcel.sql").write_text("-- x\n")
    assert schema_number(project / "schema/mysql", "supplier") == "110"
    (project / "schema/mysql/070_supplier.sql").write_text("-- x\n")
    assert schema_number(project / "schema/mysql", "supplier") == "070"   # keeps its number


def test_reruns_are_unchanged_and_differences_need_force(project: Path) -> None:
    scaffold(EXAMPLE, "mysql", project)
    assert {s for _, s in scaffold(EXAMPLE, "mysql", project)} == {"unchanged"}
    # Same template and docs for the other engine: only its schema file is new.
    assert [s for _, s in scaffold(EXAMPLE, "postgres", project)] == \
        ["wrote", "unchanged", "unchanged"]
    template = project / "templates/supplier.toml"
    template.write_text(template.read_text() + "# the DBA's edit\n")
    doc = project / "docs/templates/supplier.md"
    doc.unlink()
    with pytest.raises(Exception, match=r"supplier.toml: exists with other content; nothing "
                                        r"was written"):
        scaffold(EXAMPLE, "mysql", project)
    assert not doc.exists()                      # all or nothing
    assert "the DBA's edit" in template.read_text()
    states = dict(scaffold(EXAMPLE, "mysql", project, force=True))
    assert states[template] == "wrote" and "the DBA's edit" not in template.read_text()


@pytest.mark.parametrize("engine", ["mysql", "postgres"])
def test_spec_text_never_escapes_into_sql(tmp_path: Path, engine: str) -> None:
    spec_text = EXAMPLE.read_text().replace(
        'description = "Suppliers the store buys from"',
        "description = \"x\\nDROP TABLE customer; -- ' \\\\\"").replace(
        'description = "Company name"', 'description = "it\'s\\r\\nGRANT ALL"').replace(
        'active       = { type = "bool"',
        'grade = { type = "str", choices = ["a\'b", "c\\\\d"] }\n'
        'active       = { type = "bool"')
    path = tmp_path / "supplier.toml"
    path.write_text(spec_text)
    sql = generator_for(engine).render(load_spec(path), Existing())
    assert "\nDROP TABLE" not in sql and "\nGRANT ALL" not in sql
    if engine == "mysql":
        assert "CHECK (grade IN ('a''b', 'c\\\\d'))" in sql
        statements = split_statements(sql)
        assert not any(s.lstrip().upper().startswith("DROP") for s in statements)
    else:
        assert "CHECK (grade IN ('a''b', 'c\\d'))" in sql


def test_mysql_file_splits_into_the_expected_statements() -> None:
    sql = generator_for("mysql").render(load_spec(EXAMPLE), Existing())
    heads = [" ".join(s.split()[:4]) for s in split_statements(sql)]
    # request_log (and its params_hash column on a table made before it), the table, its audit
    assert heads[:4] == ["CREATE TABLE IF NOT", "ALTER TABLE request_log ADD",
                         "CREATE TABLE IF NOT", "CREATE TABLE IF NOT"]
    assert heads[4] == "CREATE OR REPLACE ALGORITHM"
    assert heads[5:9] == ["CREATE OR REPLACE PROCEDURE"] * 4
    assert heads[9:] == ["GRANT EXECUTE ON PROCEDURE", "GRANT SELECT ON supplier_list"] + \
        ["GRANT EXECUTE ON PROCEDURE"] * 3


def test_postgres_routines_are_definer_with_a_pinned_search_path() -> None:
    sql = generator_for("postgres").render(load_spec(EXAMPLE), Existing())
    routines = sql.count("CREATE OR REPLACE PROCEDURE")
    assert routines == 4
    assert sql.count("SECURITY DEFINER\n    SET search_path = pg_catalog, pg_temp") == routines
    assert sql.count("FROM PUBLIC;") == routines + 1
    assert "REVOKE EXECUTE ON PROCEDURE public.supplier_update(varchar, integer, varchar, " \
           "varchar, numeric, boolean, integer) FROM PUBLIC;" in sql
    assert "INOUT c_rows" in sql and "ON CONFLICT (request_id) DO NOTHING" in sql


def test_build_is_deterministic() -> None:
    spec = load_spec(EXAMPLE)
    assert build(spec, "postgres") == build(spec, "postgres")


def test_cli_usage_errors_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                 monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("BEDS_LLM_URL", "BEDS_LLM_MODEL"):
        monkeypatch.delenv(name, raising=False)
    out = str(tmp_path)
    assert main(["scaffold", str(EXAMPLE), "--out", out]) == 2
    assert "usage: beds scaffold SPEC.toml --engine" in capsys.readouterr().err
    assert main(["scaffold", str(EXAMPLE), "--engine", "oracle", "--out", out]) == 2
    assert "--engine: no scaffold for 'oracle'; engines: mysql, postgres, mongodb, dynamodb" in \
        capsys.readouterr().err
    assert main(["scaffold", "--describe", "customers", "--out", out]) == 2
    assert "needs an OpenAI-compatible chat endpoint that you provide" in capsys.readouterr().err
    assert main(["scaffold", str(tmp_path / "missing.toml"), "--engine", "mysql"]) == 2
    assert "missing.toml: file not found" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_cli_scaffold_writes_and_says_what_next(tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["scaffold", str(EXAMPLE), "--engine", "postgres", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert f"wrote {tmp_path / 'schema/postgres/010_supplier.sql'}" in out
    assert "beds schema apply" in out and "beds templates check" in out
