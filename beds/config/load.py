"""Layered TOML config -> the settings of `beds.config.settings`.

Layer: foundation. Pure: reads files, never opens a socket. Everything is validated here, before
anything connects; every error names the file and the key.

Layers, later wins (tables are deep-merged, other values replaced):
  1. `config/beds.toml`             committed base
  2. the environment override file  `--env PATH`, else $BEDS_ENV_FILE, else `config/env.toml`
                                    when it exists
Strings may use `${VAR}` or `${VAR:-default}`: secrets come from the environment, never the repo.
"""

from __future__ import annotations

import os
import re
import tomllib
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from beds.config.masking import mask_url
from beds.config.ops import Service, admin_settings, ops_settings, tracing_settings
from beds.config.settings import (
    DELIVERY_LIMIT,
    LEADER_LOCATORS,
    AmqpSettings,
    BrokerSettings,
    DatasourceSettings,
    Engine,
    NodeSettings,
    OpKind,
    QueueType,
    RoleSettings,
    SecuritySettings,
    Settings,
)
from beds.errors import ConfigError
from beds.table import IDENT_RE, Table, describe

DEFAULT_CONFIG = Path("config/beds.toml")
DEFAULT_ENV_FILE = Path("config/env.toml")
_VAR_RE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
_QUEUE_RE = re.compile(r"[A-Za-z0-9_.:-]{1,200}")


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError(f"{path}: file not found (relative paths start at {Path.cwd()}: run "
                          "beds in the project folder, or give the path)") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None


def _merge(base: dict[str, Any], over: dict[str, Any], file: str, origin: dict[str, str],
           prefix: str = "") -> dict[str, Any]:
    out = dict(base)
    for key, value in over.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value, file, origin, path + ".")
        else:
            out[key] = value
            _mark(value, path, file, origin)
    return out


def _mark(value: Any, path: str, file: str, origin: dict[str, str]) -> None:
    origin[path] = file
    if isinstance(value, dict):
        for key, sub in value.items():
            _mark(sub, f"{path}.{key}", file, origin)


def _substitute(value: Any, path: str, env: dict[str, str],
                missing: list[tuple[str, str]]) -> Any:
    if isinstance(value, dict):
        return {k: _substitute(v, f"{path}.{k}" if path else k, env, missing)
                for k, v in value.items()}
    if isinstance(value, list):
        return [_substitute(v, path, env, missing) for v in value]
    if not isinstance(value, str):
        return value

    def repl(match: re.Match[str]) -> str:
        name, default = match.group(1), match.group(2)
        if name in env:
            return env[name]
        if default is not None:
            return default
        missing.append((path, name))
        return ""

    return _VAR_RE.sub(repl, value)


def _origin_of(path: str, origin: dict[str, str]) -> str:
    while path:
        if path in origin:
            return origin[path]
        path = path.rpartition(".")[0]
    return next(iter(origin.values()), "config")


def env_file_path(explicit: str | None, env: dict[str, str]) -> Path | None:
    if explicit:
        return Path(explicit)
    if env.get("BEDS_ENV_FILE"):
        return Path(env["BEDS_ENV_FILE"])
    return DEFAULT_ENV_FILE if DEFAULT_ENV_FILE.exists() else None


def load_settings(
    config: str | Path | None = None,
    env_file: str | Path | None = None,
    environ: dict[str, str] | None = None,
    sections: tuple[str, ...] | None = None,
) -> Settings:
    """Read, merge, substitute and validate. Raises ConfigError naming file and key.

    `sections`: the tables the caller will use, top-level (`amqp`) or deeper
    (`datasources.main`); an unset ${VAR} elsewhere is not an error but an empty string (`beds
    call` needs no database password). Default: all of them.
    """
    env = dict(os.environ if environ is None else environ)
    base_path = Path(config) if config else DEFAULT_CONFIG
    origin: dict[str, str] = {}
    merged = _merge({}, _read_toml(base_path), str(base_path), origin)
    files = [str(base_path)]
    over_path = env_file_path(str(env_file) if env_file else None, env)
    if over_path is not None:
        merged = _merge(merged, _read_toml(over_path), str(over_path), origin)
        files.append(str(over_path))
    missing: list[tuple[str, str]] = []
    merged = _substitute(merged, "", env, missing)
    for path, name in missing:
        if sections is None or any(path == s or path.startswith(f"{s}.") for s in sections):
            raise ConfigError(
                f"{_origin_of(path, origin)}: {path}: environment variable {name} is not set: "
                f"export it, or add a line {name}=... to ./.env (in the config, "
                f"${{{name}:-default}} makes it optional)"
            )
    root = Table(merged, lambda path: _origin_of(path, origin))
    settings = _validate(root, base_path.parent)
    return Settings(
        node=settings.node, amqp=settings.amqp, datasources=settings.datasources,
        brokers=settings.brokers, roles=settings.roles, security=settings.security,
        ops=settings.ops, admin=settings.admin, tracing=settings.tracing, files=tuple(files),
        merged=merged,
        unset={name: tuple(p for p, n in missing if n == name) for _, name in missing},
    )


# -- validation -------------------------------------------------------------------------------

def _validate(root: Table, config_dir: Path) -> Settings:
    root.reject_unknown(["node", "amqp", "datasources", "brokers", "roles", "security", "ops",
                         "admin", "tracing"])
    project = config_dir.parent
    node_t = root.table("node")
    node_t.reject_unknown(["name", "templates_dir", "grace_seconds", "log_level", "log_requests"])
    node = NodeSettings(
        name=node_t.text("name", "beds"),
        templates_dir=project / node_t.text("templates_dir", "templates"),
        grace_seconds=node_t.number("grace_seconds", 20.0, minimum=0),
        log_level=node_t.text("log_level", "info",
                             choices=("debug", "info", "warning", "error")),
        log_requests=node_t.flag("log_requests", True),
    )
    amqp_t = root.table("amqp")
    amqp_t.reject_unknown(["url", "exchange", "dlx", "dlq", "max_message_bytes", "max_reply_bytes",
                           "heartbeat", "reconnect_max_seconds", "urls",
                           "quorum_initial_group_size", "queue_leader_locator"])
    urls = _amqp_urls(amqp_t)
    amqp = AmqpSettings(
        url=urls[0] if urls else amqp_t.text("url", "amqp://guest:guest@127.0.0.1:5672/"),
        urls=urls,
        quorum_group_size=amqp_t.integer("quorum_initial_group_size", None, minimum=1),
        leader_locator=amqp_t.text("queue_leader_locator", None, choices=LEADER_LOCATORS),
        exchange=amqp_t.text("exchange", "beds", pattern=_QUEUE_RE),
        dlx=amqp_t.text("dlx", "beds.dlx", pattern=_QUEUE_RE),
        dlq=amqp_t.text("dlq", "beds.dead", pattern=_QUEUE_RE),
        max_message_bytes=amqp_t.integer("max_message_bytes", 1_048_576, minimum=64),
        max_reply_bytes=amqp_t.integer("max_reply_bytes", 16 * 1_048_576, minimum=256),
        heartbeat=amqp_t.integer("heartbeat", 30, minimum=0),
        reconnect_max_seconds=amqp_t.number("reconnect_max_seconds", 5.0, minimum=0.1),
    )
    datasources = {
        name: _datasource(name, t, project) for name, t in root.tables("datasources").items()
    }
    brokers = {name: _broker(name, t) for name, t in root.tables("brokers").items()}
    roles = {name: _role(name, t, brokers) for name, t in root.tables("roles").items()}
    if not roles:
        raise root.fail("roles", "at least one role is required")
    security_t = root.table("security")
    security_t.reject_unknown(["require_user_id"])
    security = SecuritySettings(require_user_id=security_t.flag("require_user_id", False))
    return Settings(node=node, amqp=amqp, datasources=datasources, brokers=brokers, roles=roles,
                    security=security, ops=ops_settings(root.table("ops")),
                    admin=admin_settings(root.table("admin")),
                    tracing=tracing_settings(root.table("tracing")))


def _amqp_urls(t: Table) -> tuple[str, ...]:
    """`urls`: a TOML list, or one comma-separated string (the env form, $BEDS_AMQP_URLS).
    Empty means unset: then `url` names the one endpoint."""
    value = t.raw("urls", [])
    if isinstance(value, str):
        value = [part.strip() for part in value.split(",") if part.strip()]
    expected = "expected a list of amqp:// or amqps:// URLs (or one comma-separated string)"
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise t.fail("urls", f"{expected}, got {describe(value)}")
    for url in value:
        if not url.startswith(("amqp://", "amqps://")):
            raise t.fail("urls", f"{expected}, got an entry {describe(mask_url(url))}")
    if len(set(value)) != len(value):
        raise t.fail("urls", "the same endpoint is listed twice")
    return tuple(value)


def _datasource(name: str, t: Table, project: Path) -> DatasourceSettings:
    t.reject_unknown(["engine", "dsn", "admin_dsn", "pool_min", "pool_max", "connect_timeout",
                      "statement_timeout", "schema_dir", "replicas", "max_lag_seconds",
                      "ryw_wait_ms"])
    engine = Engine(t.text("engine", choices=[e.value for e in Engine]))
    pool_min = t.integer("pool_min", 1, minimum=0)
    pool_max = t.integer("pool_max", 10, minimum=1)
    if pool_max < pool_min:
        raise t.fail("pool_max", f"expected int >= pool_min ({pool_min}), got {pool_max}")
    return DatasourceSettings(
        name=name,
        engine=engine,
        dsn=t.text("dsn"),
        admin_dsn=t.text("admin_dsn", None),
        pool_min=pool_min,
        pool_max=pool_max,
        connect_timeout=t.number("connect_timeout", 5.0, minimum=0.1),
        statement_timeout=t.number("statement_timeout", 30.0, minimum=0),
        schema_dir=project / t.text("schema_dir", f"schema/{engine.value}"),
        replicas=_replicas(t, engine),
        max_lag_seconds=t.number("max_lag_seconds", 5.0, minimum=0.1),
        ryw_wait_ms=t.integer("ryw_wait_ms", 200, minimum=0),
    )


def _replicas(t: Table, engine: Engine) -> tuple[str, ...]:
    """Read replicas' DSNs: SQL engines only, each a URL of the primary's scheme."""
    value = t.raw("replicas", [])
    if not value:
        return ()
    if engine not in (Engine.MYSQL, Engine.POSTGRES):
        raise t.fail("replicas", f"read replicas are supported for engines mysql and postgres, "
                                 f"not {engine.value} (its own driver routes reads: see "
                                 "docs/replicas.md)")
    # Errors name the item, never echo it: a DSN holds a password.
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise t.fail("replicas", "expected a list of DSN strings")
    for index, dsn in enumerate(value):
        parts = urlsplit(dsn)
        if not parts.scheme or (parts.hostname is None and "unix_socket" not in parts.query):
            raise t.fail("replicas", f"item {index}: expected "
                                     "scheme://user:password@host:port/database")
        if value.index(dsn) != index:
            raise t.fail("replicas", f"item {index} repeats item {value.index(dsn)}")
    return tuple(value)


def _broker(name: str, t: Table) -> BrokerSettings:
    if not IDENT_RE.fullmatch(name):
        raise t.fail("", f"broker name must match {IDENT_RE.pattern}")
    t.reject_unknown(["queue", "kinds", "templates", "instances", "prefetch", "queue_type",
                      "retries", "service"])
    retries = t.integer("retries", 3, minimum=0)
    if retries >= DELIVERY_LIMIT:
        raise t.fail("retries", f"expected int < {DELIVERY_LIMIT} (the queue's delivery limit), "
                                f"got {retries}")
    return BrokerSettings(
        name=name,
        queue=t.text("queue", f"beds.{name}", pattern=_QUEUE_RE),
        kinds=tuple(OpKind(k) for k in t.names("kinds", (),
                                                 choices=[k.value for k in OpKind])),
        templates=t.names("templates", ()),
        instances=t.integer("instances", 1, minimum=0),
        prefetch=t.integer("prefetch", 32, minimum=1),
        queue_type=QueueType(t.text("queue_type", "quorum", choices=[q.value for q in QueueType])),
        retries=retries,
        service=Service(t.text("service", "requests", choices=[s.value for s in Service])),
    )


def _role(name: str, t: Table, brokers: dict[str, BrokerSettings]) -> RoleSettings:
    t.reject_unknown(["brokers", "templates"])
    names = t.names("brokers")
    for broker in names:
        if broker not in brokers:
            known = ", ".join(sorted(brokers)) or "(none declared)"
            raise t.fail("brokers", f"unknown broker {broker!r}; declared brokers: {known}")
    templates = t.text("templates", "", pattern=re.compile(r"[A-Za-z0-9_-]*"))
    return RoleSettings(name=name, brokers=names, templates=templates)
