"""Layered config: merge, ${VAR} substitution, errors naming file and key, exit status 2."""

from __future__ import annotations

from pathlib import Path

import pytest

from beds.cli import main
from beds.config import OpKind, QueueType, load_settings, masked
from beds.errors import ConfigError
from tests.support.services import ROOT

BASE = ROOT / "config/beds.toml"
ENV = {"BEDS_MYSQL_PASSWORD": "s3cret"}


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "env.toml"
    path.write_text(text)
    return path


def test_base_config_ships_the_four_roles() -> None:
    s = load_settings(BASE, environ=ENV)
    assert set(s.roles) == {"appServer", "admin", "segundo", "tercero"}
    assert s.roles["appServer"].brokers == ("rBroker", "wBroker", "mBroker")
    assert s.roles["tercero"].brokers == ("uBroker", "sBroker")
    assert s.brokers["rBroker"].kinds == (OpKind.READ,)
    assert s.brokers["mBroker"].instances == 0
    assert s.brokers["rBroker"].queue_type is QueueType.QUORUM
    assert "s3cret" in s.datasources["main"].dsn


def test_env_file_deep_merges_over_base(tmp_path: Path) -> None:
    env = write(tmp_path, '[brokers.rBroker]\ninstances = 5\n[node]\nname = "n9"\n')
    s = load_settings(BASE, env, environ=ENV)
    assert s.brokers["rBroker"].instances == 5
    assert s.brokers["rBroker"].prefetch == 32          # untouched key survives the merge
    assert s.node.name == "n9"
    assert s.files == (str(BASE), str(env))


def test_env_file_from_environment_variable(tmp_path: Path) -> None:
    env = write(tmp_path, '[node]\nname = "from-env-var"\n')
    s = load_settings(BASE, environ={**ENV, "BEDS_ENV_FILE": str(env)})
    assert s.node.name == "from-env-var"


def test_variable_default_and_missing_variable() -> None:
    s = load_settings(BASE, environ=ENV)
    assert s.node.name == "n1"                            # ${BEDS_NODE_NAME:-n1}
    with pytest.raises(ConfigError, match=r"config/beds.toml: datasources.main.dsn: "
                                          r"environment variable BEDS_MYSQL_PASSWORD is not set"):
        load_settings(BASE, environ={})


def test_amqp_only_commands_do_not_need_database_secrets() -> None:
    s = load_settings(BASE, environ={}, sections=("node", "amqp"))
    assert s.amqp.exchange == "beds"


@pytest.mark.parametrize(("text", "message"), [
    ('[brokers.rBroker]\nprefetch = "ten"\n', "brokers.rBroker.prefetch: expected int >= 1, got 'ten'"),
    ('[brokers.rBroker]\nkinds = ["reed"]\n', "brokers.rBroker.kinds: expected items from 'read', 'write', 'bulk', got 'reed'"),
    ('[roles.x]\nbrokers = ["nope"]\n', "roles.x.brokers: unknown broker 'nope'"),
    ('[amqp]\nurll = "x"\n', "amqp.urll: unknown key; expected one of:"),
    ('[datasources.main]\nengine = "oracle"\n', "datasources.main.engine: expected one of 'mysql'"),
    ('[datasources.main]\npool_min = 5\npool_max = 2\n', "datasources.main.pool_max: expected int >= pool_min (5), got 2"),
    ("[node\n", "not valid TOML"),
])
def test_errors_name_the_file_and_the_key(tmp_path: Path, text: str, message: str) -> None:
    env = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_settings(BASE, env, environ=ENV)
    assert str(info.value).startswith(str(env))
    assert message in str(info.value)


def test_cli_exits_2_on_a_config_error(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    monkeypatch.setenv("BEDS_MYSQL_PASSWORD", "x")
    env = write(tmp_path, '[brokers.rBroker]\nprefetch = "ten"\n')
    assert main(["--role", "appServer", "--env", str(env)]) == 2
    assert "brokers.rBroker.prefetch: expected int >= 1, got 'ten'" in capsys.readouterr().err


def test_cli_exits_2_on_an_unknown_role(capsys: pytest.CaptureFixture[str],
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    monkeypatch.setenv("BEDS_MYSQL_PASSWORD", "x")
    assert main(["--role", "appservr"]) == 2
    assert "roles.appservr: no such role; expected one of: admin, appServer" in capsys.readouterr().err


def test_config_show_masks_secrets(capsys: pytest.CaptureFixture[str],
                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    monkeypatch.setenv("BEDS_MYSQL_PASSWORD", "hunter2")
    assert main(["config", "show", "--role", "appServer"]) == 0
    out = capsys.readouterr().out
    assert "hunter2" not in out and "beds_app:***@" in out
    assert "[brokers.rBroker]" in out and "adminBrokerIn" not in out


def test_masked_hides_passwords_in_urls() -> None:
    data = {"amqp": {"url": "amqp://u:p@h/"}, "x": {"password": "p", "name": "n"}}
    assert masked(data) == {"amqp": {"url": "amqp://u:***@h/"},
                            "x": {"password": "***", "name": "n"}}


@pytest.mark.parametrize(("url", "shown"), [
    ("mysql://u:p@h:3306/db", "mysql://u:***@h:3306/db"),
    # L9: each of these used to show a secret
    ("mysql://u@h/db?password=s3cret&ssl=1", "mysql://u@h/db?password=***&ssl=1"),
    ("postgresql://h/db?user=u&PGPASSWORD=s3cret", "postgresql://h/db?user=u&PGPASSWORD=***"),
    ("mongodb://a:s3cret@h1,b:s3cret@h2/db", "mongodb://a:***@h2/db"),
    ("amqp://u:p@ss@s3cret@h/", "amqp://u:***@h/"),
    ("dynamodb://h/?aws_secret_access_key=s3cret", "dynamodb://h/?aws_secret_access_key=***"),
])
def test_masked_urls_show_no_secret(url: str, shown: str) -> None:
    out = masked({"datasources": {"main": {"dsn": url}}})["datasources"]["main"]["dsn"]
    assert out == shown and "s3cret" not in out
