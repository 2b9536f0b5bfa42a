"""The warehouse's HOT side on every SQL engine: templates/segundo/payments.toml matches each
engine's schema (080_warehouse.sql) and its routines answer alike. Read-only against the shared
contract database: nothing is purged that the contract script counts on."""

from __future__ import annotations

from pathlib import Path

from beds.adapters import schema_tool
from beds.dispatch import Dispatcher, adapters_for
from beds.protocol import Request, Result
from beds.templates import TemplateRegistry, load_template
from tests.contract.conftest import EngineDb
from tests.support.services import ROOT
from tests.support.stack import make_stack

TEN_YEARS = 10 * 365 * 86400


async def test_the_hot_routines_match_and_answer_alike(engine_db: EngineDb,
                                                       tmp_path: Path) -> None:
    settings = make_stack(engine_db.datasource(), tmp_path, f"wh-{engine_db.engine}").settings
    payments = load_template(ROOT / "templates/segundo/payments.toml")
    registry = TemplateRegistry([payments])
    registry.freeze()
    adapters = adapters_for(settings, registry)
    adapter = adapters["main"]
    await adapter.open()
    try:
        assert [p for p in await schema_tool(adapter).check([payments]) if not p.warning] == []
        dispatcher = Dispatcher.build(settings, registry, adapters)

        async def call(op: str, params: dict[str, object]) -> Result:
            _route, result = await dispatcher.dispatch(Request("payments", op, params),
                                                       broker="whBroker")
            return result

        # The seed's 2024 payments (1-7) are aged; payment 8 (2031) is not.
        aged = await call("wh_extract", {"age_seconds": 86400, "batch_size": 5})
        assert [r["payment_id"] for r in aged.rows] == [1, 2, 3, 4, 5]
        assert set(aged.rows[0]) == {"payment_id", "customer_id", "rental_id", "amount",
                                     "payment_date", "last_update"}
        after = await call("wh_extract", {"age_seconds": 86400, "after_key": 5,
                                          "batch_size": 5})
        assert [r["payment_id"] for r in after.rows if r["payment_id"] <= 8] == [6, 7]
        none = await call("wh_extract", {"age_seconds": TEN_YEARS, "batch_size": 5})
        assert none.rows == []
        # Purge deletes only keys that are still aged: payment 8 is not, so nothing goes.
        purged = await call("wh_purge", {"keys": [8], "age_seconds": 86400})
        assert purged.out == {"purged": 0}
    finally:
        await adapter.close()
