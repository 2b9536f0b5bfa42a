"""`beds client-gen --python OUT`: the module is byte-stable, passes mypy --strict, and mypy
catches a wrong param type in code that uses it."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from types import ModuleType

import pytest

from beds import ValidationFailed
from beds.cli import main
from beds.clientgen import render_module
from beds.templates.loader import load_templates
from beds.testing import FakeBeds, FakeCall
from tests.support.services import ROOT

GOOD = """
    from beds import Client, Reply, SyncClient
    from beds.testing import FakeBeds
    from api import Catalogue, SyncCatalogue, CustomerImportRow


    async def uses(client: Client) -> Reply:
        api = Catalogue(client)
        await api.film.fetch({"film_id": 1}, timeout=5)
        await api.film.list({"rating": "PG-13"}, limit=3, offset=1)
        await api.film.list()
        await api.customer.create({"store_id": 1, "first_name": "A", "last_name": "B",
                                   "email": "a@example.com"})
        await api.customer.create({"store_id": 1, "first_name": "A", "last_name": "B",
                                   "email": "a@example.com", "pin": None})
        row: CustomerImportRow = {"store_id": 1, "first_name": "A", "last_name": "B",
                                  "email": "b@example.com"}
        await api.customer.import_({"rows": [row]})
        return await api.customer.add_payment({"customer_id": 1, "amount": "9.99",
                                               "paid_at": "2026-01-31T12:00:00"})


    def uses_sync(client: SyncClient) -> int:
        return len(SyncCatalogue(client).film.fetch({"film_id": 1}).data)


    async def uses_a_fake() -> int:
        fake = FakeBeds()
        SyncCatalogue(fake.sync).film.list()
        return len((await Catalogue(fake).film.fetch({"film_id": 1})).data)
"""

BAD = """
    from beds import Client
    from api import Catalogue


    async def uses(client: Client) -> None:
        api = Catalogue(client)
        await api.film.fetch({"film_id": "1"})
        await api.film.list({"rating": "X"})
        await api.customer.fetch({})
        await api.film.fetch({"film_id": 1, "flim_id": 2})
"""


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("client-gen") / "api.py"
    assert main(["--config", str(ROOT / "config/beds.toml"), "client-gen",
                 "--python", str(out)]) == 0
    return out


def test_regenerating_writes_the_same_bytes(generated: Path, tmp_path: Path) -> None:
    again = tmp_path / "nested/api.py"
    assert main(["--config", str(ROOT / "config/beds.toml"), "client-gen",
                 "--python", str(again)]) == 0
    assert again.read_bytes() == generated.read_bytes()


def test_an_unwritable_output_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--config", str(ROOT / "config/beds.toml"), "client-gen",
                 "--python", "/proc/beds_api.py"]) == 2
    assert "beds client-gen: --python: cannot write /proc/beds_api.py" in capsys.readouterr().err


def test_one_method_per_op_with_params_from_the_fields(generated: Path) -> None:
    api = load(generated)
    assert [name for name in vars(api.FilmCalls) if not name.startswith("_")] == \
        ["fetch", "in_stock", "list", "store_report"]
    assert "import_" in vars(api.CustomerSyncCalls)   # `import` is a Python keyword
    assert api.FilmFetchParams.__required_keys__ == {"film_id"}
    assert api.CustomerCreateParams.__required_keys__ == {"store_id", "first_name", "last_name",
                                                          "email"}
    assert api.CustomerCreateParams.__optional_keys__ == {"pin"}   # optional = ["pin"]
    assert api.CustomerPayParams.__optional_keys__ == {"request_id"}   # the idempotency key
    assert api.FilmListParams.__optional_keys__ == {"category", "rating"}   # view filters
    assert "Film id (film_list.FID) (>= 1)" in generated.read_text()
    assert api.FilmCalls.fetch.__doc__.startswith("One film by id")


def test_mypy_strict_passes_the_module_and_flags_a_wrong_param(generated: Path) -> None:
    folder = generated.parent
    (folder / "good.py").write_text(textwrap.dedent(GOOD))
    (folder / "bad.py").write_text(textwrap.dedent(BAD))
    result = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-error-summary",
         "--cache-dir", str(ROOT / ".mypy_cache/client-gen"), "api.py", "good.py", "bad.py"],
        cwd=folder, capture_output=True, text=True, timeout=240,
        env={**os.environ, "MYPYPATH": str(ROOT)})
    lines = [line for line in result.stdout.splitlines() if ": error:" in line]
    assert not [line for line in lines if not line.startswith("bad.py")], result.stdout
    flagged = {int(line.split(":")[1]) for line in lines}
    assert flagged == {8, 9, 10, 11}, result.stdout
    assert 'TypedDict item "film_id" has type "int"' in result.stdout
    assert 'Missing key "customer_id"' in result.stdout
    assert '"flim_id"' in result.stdout


def test_names_that_are_python_keywords_and_odd_descriptions(tmp_path: Path) -> None:
    (tmp_path / "lots.toml").write_text(textwrap.dedent('''
        name = "lots"
        datasource = "main"
        description = 'Ends with a quote "'
        [fields]
        from = { type = "date", description = 'Back\\\\slash and """triple""" quotes' }
        amount = { type = "decimal", required = false }
        [ops.import]
        kind = "write"
        procedure = "lots_import"
        params = ["from", "amount"]
        description = 'Back\\slash and """triple""" quotes'
    '''))
    source = render_module(load_templates(tmp_path))
    module = ModuleType("lots_api")
    exec(compile(source, "lots_api.py", "exec"), module.__dict__)
    assert module.LotsImportParams.__required_keys__ == {"from"}
    assert module.LotsImportParams.__optional_keys__ == {"amount"}
    assert module.LotsCalls.__doc__ == 'The ops of template lots: Ends with a quote "'
    assert "import_" in vars(module.LotsSyncCalls)
    assert module.LotsSyncCalls.import_.__doc__.startswith('Back\\slash and """triple""" quotes')


async def test_the_generated_methods_take_a_fake(generated: Path) -> None:
    api = load(generated)
    fake = FakeBeds(ROOT / "templates").on("film", "list", data=[{"FID": 3}])
    reply = await api.Catalogue(fake).film.list({"rating": "PG"}, limit=1)
    assert reply.data == [{"FID": 3}]
    assert fake.calls == [FakeCall("film", "list", {"rating": "PG"}, limit=1)]
    with pytest.raises(ValidationFailed, match="params.rating: expected one of"):
        api.SyncCatalogue(fake.sync).film.list({"rating": "X"})


def load(path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"generated_{path.stem}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
