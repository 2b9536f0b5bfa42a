"""Authorisation under attack (scenario 12): forged user_id, missing user_id, a caller calling an
op it is not allowed. Real RabbitMQ users with the least-privilege permission set of
docs/security.md, created for the scenario and deleted after it."""

from __future__ import annotations

import secrets
import shutil
from collections.abc import AsyncIterator

import pytest

from tests.chaos.broker import RabbitCtl
from tests.chaos.lab import Lab
from tests.support.services import AMQP_URL, SESSION, host_port

pytestmark = [pytest.mark.rabbitmq, pytest.mark.mariadb, pytest.mark.chaos,
              pytest.mark.chaos_fast]
BILLING = f"chaos-billing-{SESSION}"
OTHER = f"chaos-other-{SESSION}"


@pytest.fixture
async def users(shared_rabbitmqctl: RabbitCtl) -> AsyncIterator[dict[str, str]]:
    """Callers that may only publish to the test exchanges (and read their direct replies)."""
    urls: dict[str, str] = {}
    host, port = host_port(AMQP_URL, 5672)
    try:
        for user in (BILLING, OTHER):
            password = secrets.token_hex(8)
            await shared_rabbitmqctl("add_user", user, password)
            urls[user] = f"amqp://{user}:{password}@{host}:{port}/"
            await shared_rabbitmqctl("set_permissions", "-p", "/", user, "^$", "^beds-test-.*",
                                     "^$")
        yield urls
    finally:
        for user in urls:
            await shared_rabbitmqctl("delete_user", user)


async def test_12_forged_missing_and_unlisted_callers(lab: Lab, users: dict[str, str]) -> None:
    templates = lab.tmp_path / "templates"
    shutil.copytree(lab.templates, templates)
    customer = (templates / "customer.toml").read_text()
    # Only the billing service may pay; every request must name its caller.
    customer = customer.replace("[ops.pay]\n", f'[ops.pay]\nallow = ["{BILLING}"]\n', 1)
    (templates / "customer.toml").write_text(customer)
    stack = lab.stack("auth", templates=templates,
                      overrides={"security": {"require_user_id": True}})
    await lab.start(stack)
    wl = lab.workload("12 forged / missing / unlisted callers", stack, min_sent=16,
                      retry_codes=frozenset())
    billing = lab.caller(stack, url=users[BILLING], user_id=BILLING)
    other = lab.caller(stack, url=users[OTHER], user_id=OTHER)
    anonymous = lab.caller(stack, url=users[OTHER])
    forger = lab.caller(stack, url=users[OTHER], user_id=BILLING)

    allowed = [wl.pay(customer_id=1 + i % 5) for i in range(5)]
    unlisted = [wl.pay(customer_id=1 + i % 5) for i in range(5)]
    unnamed = [wl.pay(customer_id=1 + i % 5) for i in range(5)]
    unnamed_reads = [wl.read(1 + i) for i in range(3)]
    forged = [wl.pay(customer_id=1 + i % 5, retry=False) for i in range(5)]
    reads = [wl.read(10 + i) for i in range(3)]
    await wl.run(allowed, caller=billing)
    await wl.run(unlisted + reads, caller=other)
    await wl.run(unnamed + unnamed_reads, caller=anonymous)
    await wl.run(forged, caller=forger, concurrency=1)
    row = await wl.finish(settle=False)
    wl.assert_clean(row)

    assert [r.code() for r in allowed + reads] == ["ok"] * 8
    assert [r.effects for r in allowed] == [1] * 5
    for request in unlisted + unnamed + unnamed_reads:
        assert request.code() == "FORBIDDEN", request.final()
        assert request.effects == 0
    assert "may not call customer.pay" in unlisted[0].answer()["error"]["message"]
    assert "requires an authenticated caller" in unnamed[0].answer()["error"]["message"]
    # RabbitMQ itself refuses a user_id that is not the connection's user: never delivered.
    for request in forged:
        assert not request.confirmed and request.refused, request
        assert request.effects == 0 and not request.replies
