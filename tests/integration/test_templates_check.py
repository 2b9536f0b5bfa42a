"""`beds templates check` against the live database: it catches a template that names a missing
procedure or passes the wrong number of parameters, and passes the shipped templates."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from beds.cli import main
from tests.support.services import ROOT, SAMPLES, MysqlDb
from tests.support.stack import copy_templates, write_env_file

pytestmark = [pytest.mark.mariadb]


def env_file(tmp_path: Path, db: MysqlDb, templates: Path) -> Path:
    return write_env_file(db.datasource(), tmp_path / "env.toml", templates=templates)


def test_shipped_templates_match_the_schema(mysql_db: MysqlDb, tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str],
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    assert main(["templates", "check", "--env",
                 str(env_file(tmp_path, mysql_db, ROOT / "templates"))]) == 0
    assert "0 errors" in capsys.readouterr().err


def test_missing_procedure_and_wrong_parameter_count_are_reported(
        mysql_db: MysqlDb, tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    templates = copy_templates(tmp_path / "templates", "film.toml")
    shutil.copy(SAMPLES / "broken_template.toml", templates / "broken.toml")
    assert main(["templates", "check", "--env", str(env_file(tmp_path, mysql_db, templates))]) == 1
    out = capsys.readouterr().out
    where = f"{templates / 'broken.toml'}: ops."
    assert f"{where}no_procedure: error: procedure 'no_such_procedure' does not exist" in out
    assert (f"{where}procedure_args: error: procedure 'film_fetch' takes 1 IN and 0 OUT parameters; "
            "the template declares 2 params and 0 out") in out
    assert (f"{where}no_out: error: procedure 'film_in_stock' takes 2 IN and 1 OUT parameters; "
            "the template declares 2 params and 0 out") in out
    assert f"{where}bad_filter: error: filter column 'store_id' is not a column of view" in out
    assert f"{where}no_function: error: function 'no_such_function' does not exist" in out
    assert "film.toml" not in out   # the good template has no finding


async def _admin(db: MysqlDb, *statements: str) -> None:
    import aiomysql

    from tests.support.services import host_port

    host, port = host_port(db.admin_dsn, 3306)
    conn = await aiomysql.connect(host=host, port=port, user="root", db=db.database,
                                  autocommit=True)
    async with conn.cursor() as cur:
        for statement in statements:
            await cur.execute(statement)
    conn.close()


def test_table_grants_and_dynamic_sql_are_warned_about(
        mysql_db: MysqlDb, tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    import asyncio

    monkeypatch.chdir(ROOT)
    account = f"'{mysql_db.user}'@'%'"
    asyncio.run(_admin(
        mysql_db,
        f"GRANT SELECT, UPDATE ON film TO {account}",
        "CREATE OR REPLACE PROCEDURE film_search(IN p_title VARCHAR(50)) SQL SECURITY DEFINER "
        "BEGIN SET @q = CONCAT('SELECT film_id FROM film WHERE title = ''', p_title, ''''); "
        "PREPARE s FROM @q; EXECUTE s; DEALLOCATE PREPARE s; END",
        f"GRANT EXECUTE ON PROCEDURE film_search TO {account}"))
    templates = tmp_path / "templates"
    templates.mkdir()
    (templates / "search.toml").write_text(
        'name = "search"\ndatasource = "main"\n[fields]\ntitle = { type = "str" }\n'
        '[ops.by_title]\nkind = "read"\nprocedure = "film_search"\nparams = ["title"]\n')
    try:
        assert main(["templates", "check", "--env",
                     str(env_file(tmp_path, mysql_db, templates))]) == 0   # warnings only
    finally:
        asyncio.run(_admin(mysql_db, f"REVOKE SELECT, UPDATE ON film FROM {account}",
                           "DROP PROCEDURE film_search"))
    out = capsys.readouterr().out
    assert ("datasources.main: warning: the configured account has SELECT,UPDATE on base "
            "table 'film'") in out
    assert (f"{templates / 'search.toml'}: ops.by_title: warning: procedure 'film_search' "
            "builds SQL text (CONCAT + PREPARE)") in out
