"""Only authenticated callers: the AMQP user_id property (validated by RabbitMQ) against a
template's or op's allow list, and `security.require_user_id`. Real RabbitMQ users with the
least-privilege permission set from docs/security.md."""

from __future__ import annotations

import secrets
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from beds.client import Client
from beds.errors import Forbidden
from tests.support.services import (
    AMQP_URL,
    ROOT,
    SESSION,
    host_port,
    require_tool,
)
from tests.support.stack import NodeFactory, RunningNode

pytestmark = [pytest.mark.rabbitmq, pytest.mark.mariadb]
BILLING = f"billing-svc-{SESSION}"
OTHER = f"other-svc-{SESSION}"


def rabbitmqctl(*args: str) -> None:
    ctl = require_tool("rabbitmqctl", "creating test users")
    subprocess.run([ctl, *args], check=True, capture_output=True, timeout=60)


@pytest.fixture(scope="module")
def callers(rabbitmq: str) -> Iterator[dict[str, str]]:
    """Two RabbitMQ users that may only publish to BEDS exchanges and read their replies."""
    passwords = {}
    for user in (BILLING, OTHER):
        passwords[user] = secrets.token_hex(8)
        rabbitmqctl("add_user", user, passwords[user])
        rabbitmqctl("set_permissions", "-p", "/", user, "^$", "^beds-test-.*", "^$")
    yield passwords
    for user in (BILLING, OTHER):
        rabbitmqctl("delete_user", user)


def url_for(user: str, password: str) -> str:
    host, port = host_port(AMQP_URL, 5672)
    return f"amqp://{user}:{password}@{host}:{port}/"


def guarded_templates(tmp_path: Path) -> Path:
    """film and customer, where only the billing service may create customers."""
    templates = tmp_path / "templates"
    templates.mkdir(exist_ok=True)
    shutil.copy(ROOT / "templates/film.toml", templates / "film.toml")
    customer = (ROOT / "templates/customer.toml").read_text()
    customer = customer.replace("[ops.create]\n", f'[ops.create]\nallow = ["{BILLING}"]\n', 1)
    (templates / "customer.toml").write_text(customer)
    return templates


@pytest.fixture
async def open_node(node_factory: NodeFactory, tmp_path: Path) -> RunningNode:
    return await node_factory(templates=guarded_templates(tmp_path),
                              security={"require_user_id": False})


def customer(email: str) -> dict[str, object]:
    return {"store_id": 1, "first_name": "A", "last_name": "B", "email": email}


async def test_allow_list_admits_the_listed_caller_only(callers: dict[str, str],
                                                        open_node: RunningNode) -> None:
    exchange = open_node.stack.exchange
    async with Client(url_for(BILLING, callers[BILLING]), exchange, user_id=BILLING) as billing:
        created = await billing.call("customer", "create", customer(f"b{SESSION}@example.com"))
        assert (created.out or {})["customer_id"] > 0
    async with Client(url_for(OTHER, callers[OTHER]), exchange, user_id=OTHER) as other:
        with pytest.raises(Forbidden, match=f"user_id: '{OTHER}' may not call customer.create"):
            await other.call("customer", "create", customer(f"o{SESSION}@example.com"))
        assert (await other.call("film", "fetch", {"film_id": 1})).data   # reads stay open
    async with Client(url_for(OTHER, callers[OTHER]), exchange) as anonymous:
        with pytest.raises(Forbidden, match="requires an authenticated caller"):
            await anonymous.call("customer", "create", customer(f"a{SESSION}@example.com"))


async def test_a_forged_user_id_never_reaches_the_node(callers: dict[str, str],
                                                       open_node: RunningNode) -> None:
    async with Client(url_for(OTHER, callers[OTHER]), open_node.stack.exchange,
                      user_id=BILLING) as forger:
        with pytest.raises(Forbidden, match="user_id: RabbitMQ refused"):
            await forger.call("customer", "create", customer(f"f{SESSION}@example.com"))


async def test_require_user_id_refuses_anonymous_requests(callers: dict[str, str],
                                                          node_factory: NodeFactory,
                                                          tmp_path: Path) -> None:
    node = await node_factory(templates=guarded_templates(tmp_path),
                              security={"require_user_id": True})
    async with Client(url_for(OTHER, callers[OTHER]), node.stack.exchange) as anonymous:
        with pytest.raises(Forbidden):
            await anonymous.call("film", "fetch", {"film_id": 1})
    async with Client(url_for(OTHER, callers[OTHER]), node.stack.exchange,
                      user_id=OTHER) as known:
        assert (await known.call("film", "fetch", {"film_id": 1})).data
