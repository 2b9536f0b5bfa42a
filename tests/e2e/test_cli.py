"""The `beds` command: against a node running as a subprocess, and as a newcomer meets it (the
real console script, a clean environment with no BEDS_* variables, RabbitMQ on a closed port)."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import aiormq
import pytest
import tomli_w
from pamqp.commands import Basic

from beds import __version__
from tests.support.node_process import NodeProcess
from tests.support.services import AMQP_URL, ROOT, SESSION, private_queue, require_tool
from tests.support.stack import Stack

BEDS = Path(sys.executable).parent / "beds"    # the console script `pip install` made
CONFIG = str(ROOT / "config/beds.toml")


async def beds(*args: str) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "beds", *args, cwd=ROOT,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    return proc.returncode or 0, out.decode(), err.decode()


@pytest.mark.rabbitmq
@pytest.mark.mariadb
async def test_beds_call_answers_from_a_running_node(stack: Stack, node_process: NodeProcess) -> None:
    code, out, err = await beds("call", "film", "in_stock", "--env", str(stack.env_file),
                                "--params", '{"film_id": 1, "store_id": 1}')
    assert code == 0, err
    reply = json.loads(out)
    assert reply["ok"] is True and reply["out"] == {"film_count": 2}
    assert len(node_process.events("request")) == 1
    line = node_process.events("request")[0]
    assert {line["template"], line["op"], line["outcome"], line["broker"]} == {
        "film", "in_stock", "ok", "rBroker"}
    assert line["correlation_id"] and line["elapsed_ms"] > 0 and line["node"]


# One example call per op of the shipped templates: `make run` must answer every one.
EVERY_OP = [
    ("film", "fetch", {"film_id": 1}, []),
    ("film", "in_stock", {"film_id": 1, "store_id": 1}, []),
    ("film", "list", {"category": "Action"}, ["--limit", "3", "--offset", "2"]),
    ("film", "store_report", {"store_id": 1}, []),
    ("customer", "fetch", {"customer_id": 1}, []),
    ("customer", "list", {"store_id": 1}, []),
    ("customer", "balance", {"customer_id": 1, "effective_date": "2030-01-01T00:00:00"}, []),
    ("customer", "create", {"store_id": 1, "first_name": "Cli", "last_name": "Test",
                            "email": "cli-every-op@example.com"}, []),
    ("customer", "update_email", {"customer_id": 2, "email": "cli-update@example.com"}, []),
    ("customer", "add_payment", {"customer_id": 2, "amount": "1.50",
                                 "paid_at": "2030-02-02T00:00:00"}, []),
    ("customer", "pay", {"request_id": "cli-every-op", "customer_id": 2, "amount": "2.50",
                         "paid_at": "2030-03-03T00:00:00"}, []),
    ("customer", "import", {"rows": [{"store_id": 2, "first_name": "Cli", "last_name": "Bulk",
                                      "email": "cli-every-op-bulk@example.com"}]}, []),
]


@pytest.mark.rabbitmq
@pytest.mark.mariadb
async def test_every_op_of_the_example_templates_answers(stack: Stack, node_process: NodeProcess) -> None:
    from beds.templates import load_templates

    shipped = {(t.name, op) for t in load_templates(ROOT / "templates") for op in t.ops}
    assert {(t, o) for t, o, _, _ in EVERY_OP} == shipped, "a shipped op has no example call"
    for template, op, params, extra in EVERY_OP:
        code, out, err = await beds("call", template, op, "--env", str(stack.env_file),
                                    "--params", json.dumps(params), *extra)
        reply = json.loads(out)
        assert code == 0 and reply["ok"] is True, (template, op, reply, err)
        assert reply["meta"]["template"] == template and reply["meta"]["op"] == op
    assert {e["outcome"] for e in node_process.events("request")} == {"ok"}


# -- a newcomer's CLI: the real console script, no BEDS_* variables, nothing running -----------

def closed_port() -> int:
    """A port nothing listens on: bound, then released."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def run(*args: str, cwd: Path, env: dict[str, str] | None = None,
        stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("BEDS_")}
    return subprocess.run([str(BEDS), *args], cwd=cwd, env={**clean, **(env or {})},
                          input=stdin, capture_output=True, text=True, timeout=120, check=False)


def one_line(result: subprocess.CompletedProcess[str]) -> str:
    """The failure's stderr: exactly one line, no traceback."""
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    return lines[0]


def test_beds_alone_prints_usage_and_exits_2(tmp_path: Path) -> None:
    result = run(cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.startswith("usage: beds") and "call" in result.stderr
    assert "BEDS_MYSQL_PASSWORD" not in result.stderr


def test_help_lists_every_command_and_exits_0(tmp_path: Path) -> None:
    result = run("--help", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    for command in ("call", "templates", "config", "schema", "docs", "status", "completion"):
        assert f"    {command} " in result.stdout
    assert "--debug" in result.stdout and "exit codes:" in result.stdout


def test_version_is_the_package_version(tmp_path: Path) -> None:
    result = run("--version", cwd=tmp_path)
    assert (result.returncode, result.stdout) == (0, f"beds {__version__}\n")


def test_offline_commands_need_no_secrets(tmp_path: Path) -> None:
    shown = run("config", "show", "--json", "--config", CONFIG, cwd=tmp_path)
    assert shown.returncode == 0, shown.stderr
    config = json.loads(shown.stdout)["config"]
    assert config["node"]["name"] == "n1"
    assert json.loads(shown.stdout)["unset"] == {
        "BEDS_MYSQL_PASSWORD": ["datasources.main.dsn", "datasources.cool.dsn"]}
    assert config["datasources"]["main"]["dsn"].startswith("mysql://beds_app:***@")
    listed = run("templates", "list", "--config", CONFIG, cwd=tmp_path)
    assert listed.returncode == 0, listed.stderr
    assert "film.fetch\tread\tprocedure film_fetch\trBroker\tmain" in listed.stdout
    checked = run("templates", "check", "--offline", "--config", CONFIG, cwd=tmp_path)
    assert checked.returncode == 0, checked.stderr
    assert checked.stderr.endswith("(offline): 0 errors, 0 warnings\n")
    docs = run("docs", "--out", str(tmp_path / "api"), "--config", CONFIG, cwd=tmp_path)
    assert docs.returncode == 0, docs.stderr
    assert (tmp_path / "api/asyncapi.json").is_file()


def test_a_command_that_connects_names_the_missing_secret_and_the_fix(tmp_path: Path) -> None:
    result = run("schema", "apply", "--datasource", "main", "--config", CONFIG, cwd=tmp_path)
    assert result.returncode == 2
    line = one_line(result)
    assert "datasources.main.dsn: environment variable BEDS_MYSQL_PASSWORD is not set" in line
    assert "./.env" in line


@pytest.mark.parametrize("command", [["call", "film", "fetch", "--params", '{"film_id": 1}',
                                      "--timeout", "1"],
                                     ["call", "film", "fetch", "--json", "--timeout", "1"],
                                     ["status"], ["ping", "--json"], ["reload", "--all"]])
def test_rabbitmq_unreachable_is_one_line_and_exit_1(tmp_path: Path, command: list[str]) -> None:
    url = f"amqp://guest:guest@127.0.0.1:{closed_port()}/"
    result = run(*command, "--config", CONFIG, cwd=tmp_path, env={"BEDS_AMQP_URL": url})
    assert result.returncode == 1 and result.stdout == ""
    line = one_line(result)
    assert line.startswith(f"beds {command[0]}: cannot connect to RabbitMQ (127.0.0.1:")
    assert "guest:guest" not in line and line.endswith(
        "check that RabbitMQ runs there, or point [amqp] url (BEDS_AMQP_URL) at one that does")


def test_debug_shows_the_traceback_then_the_line(tmp_path: Path) -> None:
    url = f"amqp://guest:guest@127.0.0.1:{closed_port()}/"
    result = run("--debug", "call", "film", "fetch", "--timeout", "1", "--config", CONFIG,
                 cwd=tmp_path, env={"BEDS_AMQP_URL": url})
    assert result.returncode == 1
    assert "Traceback (most recent call last)" in result.stderr
    assert "beds.errors.Disconnected" in result.stderr
    assert result.stderr.splitlines()[-1].startswith("beds call: cannot connect to RabbitMQ")


def test_database_unreachable_is_one_line_and_exit_1(tmp_path: Path) -> None:
    dead = f"mysql://beds_app:x@127.0.0.1:{closed_port()}/beds"
    env_file = tmp_path / "env.toml"
    env_file.write_text(tomli_w.dumps({"datasources": {"main": {"dsn": dead, "admin_dsn": dead}}}))
    args = ["--config", CONFIG, "--env", str(env_file)]
    applied = run("schema", "apply", "--datasource", "main", *args, cwd=tmp_path,
                  env={"BEDS_MYSQL_PASSWORD": "x"})
    assert applied.returncode == 1
    assert "cannot connect to 127.0.0.1:" in one_line(applied)
    checked = run("templates", "check", *args, cwd=tmp_path, env={"BEDS_MYSQL_PASSWORD": "x"})
    assert checked.returncode == 1
    assert checked.stdout.startswith("datasource main: error: cannot check: cannot connect")


def test_unwritable_out_is_one_line_and_exit_1(tmp_path: Path) -> None:
    result = run("docs", "--out", "/proc/x", "--config", CONFIG, cwd=tmp_path)
    assert result.returncode == 1
    assert one_line(result).startswith("beds docs: /proc/x: No such file or directory; give a path")


def test_bad_params_json_is_one_line_and_a_usage_error(tmp_path: Path) -> None:
    result = run("call", "film", "fetch", "--params", "{film_id: 1}", "--config", CONFIG,
                 cwd=tmp_path)
    assert result.returncode == 2
    line = one_line(result)
    assert line.startswith("beds call: argument --params: not valid JSON")
    assert "--params '{\"film_id\": 1}'" in line
    listed = run("call", "film", "fetch", "--params", "[1]", "--config", CONFIG, cwd=tmp_path)
    assert "expected a JSON object, got list" in one_line(listed)


def test_missing_config_file_is_one_line(tmp_path: Path) -> None:
    result = run("config", "show", cwd=tmp_path)     # no config/ under tmp_path
    assert result.returncode == 2
    line = one_line(result)
    assert "config/beds.toml: file not found" in line and "run beds in the project folder" in line


def test_dotenv_fills_what_the_environment_does_not_set(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("# written by make\nexport BEDS_NODE_NAME=from-dotenv\n"
                                   "BEDS_MYSQL_PASSWORD='s3cret'\n")
    shown = run("config", "show", "--json", "--config", CONFIG, cwd=tmp_path)
    assert json.loads(shown.stdout)["config"]["node"]["name"] == "from-dotenv"
    shown = run("config", "show", "--json", "--config", CONFIG, cwd=tmp_path,
                env={"BEDS_NODE_NAME": "from-environment"})
    assert json.loads(shown.stdout)["config"]["node"]["name"] == "from-environment"
    # the secret from .env satisfies a command that needs it (it then fails on the database)
    dead = f"mysql://root@127.0.0.1:{closed_port()}/"
    applied = run("schema", "apply", "--datasource", "main", "--config", CONFIG, cwd=tmp_path,
                  env={"BEDS_MYSQL_ADMIN_DSN": dead})
    assert "cannot connect" in one_line(applied)
    (tmp_path / ".env").write_text("BEDS_NODE_NAME=ok\nthis is not a variable\n")
    broken = run("config", "show", "--config", CONFIG, cwd=tmp_path)
    assert broken.returncode == 2
    assert ".env:2: expected KEY=VALUE" in one_line(broken)


def test_templates_check_reports_every_problem(tmp_path: Path) -> None:
    folder = tmp_path / "templates"
    (folder / "tercero").mkdir(parents=True)
    shutil.copy(ROOT / "templates/film.toml", folder)
    shutil.copy(ROOT / "templates/tercero/users.toml", folder / "tercero")
    shutil.copy(ROOT / "templates/tercero/users.toml", folder)     # a user template `users`
    (folder / "broken.toml").write_text("name = 'broken'\n[ops.x\n")
    (folder / "misnamed.toml").write_text("name = 'other'\n")
    env_file = tmp_path / "env.toml"
    env_file.write_text(tomli_w.dumps({"node": {"templates_dir": str(folder)}}))
    result = run("templates", "check", "--offline", "--config", CONFIG, "--env", str(env_file),
                 cwd=tmp_path)
    assert result.returncode == 1
    lines = result.stdout.splitlines()
    assert len(lines) == 3, result.stdout
    assert lines[0].startswith(f"{folder / 'broken.toml'}: error: not valid TOML")
    assert lines[1].startswith(f"{folder / 'misnamed.toml'}: error: name: must equal the file")
    assert lines[2].startswith(f"{folder / 'users.toml'}: error: name: 'users' is a template "
                               f"of the tercero role ({folder / 'tercero/users.toml'})")
    assert "rename this template (file and name), e.g. to 'app_users'" in lines[2]
    as_json = run("templates", "check", "--offline", "--json", "--config", CONFIG, "--env",
                  str(env_file), cwd=tmp_path)
    report = json.loads(as_json.stdout)
    assert report["ok"] is False and len(report["problems"]) == 3
    assert {p["level"] for p in report["problems"]} == {"error"}


def test_a_node_refuses_a_template_named_like_a_built_in(tmp_path: Path) -> None:
    folder = tmp_path / "templates"
    shutil.copytree(ROOT / "templates", folder)
    shutil.copy(ROOT / "templates/tercero/users.toml", folder / "users.toml")
    env_file = tmp_path / "env.toml"
    env_file.write_text(tomli_w.dumps({"node": {"templates_dir": str(folder)}}))
    result = run("--role", "appServer", "--config", CONFIG, "--env", str(env_file), cwd=tmp_path,
                 env={"BEDS_MYSQL_PASSWORD": "x"})
    assert result.returncode == 2
    line = one_line(result)
    assert line.startswith(f"beds: {folder / 'users.toml'}: name: 'users' is a template of the "
                           "tercero role")
    assert "e.g. to 'app_users'" in line


def test_json_output_of_templates_list(tmp_path: Path) -> None:
    result = run("templates", "list", "--json", "--config", CONFIG, cwd=tmp_path)
    rows = json.loads(result.stdout)
    assert {"template": "film", "op": "fetch", "kind": "read", "target": "procedure",
            "object": "film_fetch", "broker": "rBroker", "datasource": "main"} in rows


def complete(words: list[str]) -> list[str]:
    """What bash offers after `words` (the last one is being typed)."""
    script = run("completion", "bash", cwd=ROOT).stdout
    line = " ".join(f"'{w}'" for w in words)
    result = subprocess.run(
        ["bash", "-c", f'eval "$BEDS_COMPLETION"; COMP_WORDS=({line}); '
                       f'COMP_CWORD={len(words) - 1}; _beds; printf "%s\\n" "${{COMPREPLY[@]}}"'],
        env={"PATH": os.environ["PATH"], "BEDS_COMPLETION": script}, capture_output=True,
        text=True, timeout=30, check=True)
    return result.stdout.split()


def test_bash_completion_follows_the_command_tree() -> None:
    assert {"call", "templates", "status", "completion"} <= set(complete(["beds", ""]))
    assert complete(["beds", "templates", ""]) == ["check", "list"]
    assert "--offline" in complete(["beds", "templates", "check", "--"])
    assert {"--message-id", "--user-id", "--cursor", "--deadline", "--json"} <= set(
        complete(["beds", "call", "film", "fetch", "--"]))
    assert complete(["beds", "--role", "ter"]) == ["tercero"]
    assert complete(["beds", "completion", ""]) == ["bash", "zsh"]


def test_zsh_completion_defines_the_function(tmp_path: Path) -> None:
    # .ci/services installs it; like a missing service, a failure under CI
    zsh = require_tool("zsh", "the completion check (apt-get install zsh)")
    script = run("completion", "zsh", cwd=tmp_path).stdout
    result = subprocess.run(
        [zsh, "-c", 'eval "$BEDS_COMPLETION"; whence -w _beds'], capture_output=True, text=True,
        env={"PATH": os.environ["PATH"], "HOME": str(tmp_path), "BEDS_COMPLETION": script},
        timeout=30, check=False)
    assert result.stdout.strip() == "_beds: function", result.stderr


@pytest.mark.rabbitmq
async def test_call_options_reach_the_wire(rabbitmq: str, tmp_path: Path) -> None:
    """--message-id, --user-id, --cursor, --deadline on the request; --json prints one line."""
    exchange = f"beds-test-{SESSION}-cli-wire"
    env_file = tmp_path / "env.toml"
    env_file.write_text(tomli_w.dumps({"amqp": {"url": AMQP_URL, "exchange": exchange}}))
    conn = await aiormq.connect(AMQP_URL)
    try:
        channel = await conn.channel()
        await channel.exchange_declare(exchange, exchange_type="topic", auto_delete=True)
        queue = await private_queue(channel)
        await channel.queue_bind(queue, exchange, routing_key="film.list")
        got: asyncio.Future[aiormq.abc.DeliveredMessage] = asyncio.get_running_loop().create_future()

        async def answer(message: aiormq.abc.DeliveredMessage) -> None:
            got.set_result(message)
            props = message.header.properties
            await channel.basic_publish(b'{"ok": true, "data": [{"film_id": 7}]}', routing_key=props.reply_to or "",
                                        properties=Basic.Properties(correlation_id=props.correlation_id))

        await channel.basic_consume(queue, answer, no_ack=True)
        user = AMQP_URL.split("://", 1)[1].split(":", 1)[0]
        before = time.time() * 1000
        proc = await asyncio.create_subprocess_exec(
            str(BEDS), "call", "film", "list", "--cursor", "abc", "--message-id", "req-42",
            "--user-id", user, "--deadline", "7", "--timeout", "60", "--json", "--config", CONFIG,
            "--env", str(env_file), cwd=tmp_path, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env={k: v for k, v in os.environ.items() if not k.startswith("BEDS_")})
        out, err = await asyncio.wait_for(proc.communicate(), 60)
        after = time.time() * 1000
        # a user_id that is not the connection's user: RabbitMQ refuses it, in one line
        forged = await asyncio.to_thread(
            run, "call", "film", "list", "--user-id", f"not-{user}", "--timeout", "30",
            "--config", CONFIG, "--env", str(env_file), cwd=tmp_path)
    finally:
        await conn.close()
    assert forged.returncode == 1
    assert one_line(forged) == (f"beds call: FORBIDDEN: user_id: RabbitMQ refused 'not-{user}': "
                                "it is not the user this connection logged in as")
    assert proc.returncode == 0, err
    assert out.decode() == '{"ok": true, "data": [{"film_id": 7}]}\n'
    request = got.result()
    props = request.header.properties
    assert (props.message_id, props.user_id, props.expiration) == ("req-42", user, "7000")
    deadline = (props.headers or {})["x-deadline"]
    assert isinstance(deadline, int) and before + 7000 <= deadline <= after + 7000
    assert json.loads(request.body)["cursor"] == "abc"
