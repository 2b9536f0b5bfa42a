"""Where a DynamoDB datasource lives: its DSN checked and taken apart, before anything connects.

Layer: infrastructure. Pure apart from reading the AWS SDK's region variables.

    dsn = "dynamodb://KEY:SECRET@HOST:PORT/TABLE_PREFIX?region=eu-west-1&tls=true"
"""

from __future__ import annotations

import ipaddress
import os
import re
from dataclasses import dataclass

from beds.adapters.base import parse_dsn
from beds.config import DatasourceSettings
from beds.errors import ConfigError

_PREFIX_RE = re.compile(r"[A-Za-z0-9_.-]{0,64}")


@dataclass(frozen=True)
class Endpoint:
    url: str | None              # None: AWS's endpoint for the region
    region: str
    access_key: str | None
    secret_key: str | None
    prefix: str


def endpoint_of(settings: DatasourceSettings, dsn: str | None = None) -> Endpoint:
    """The DSN checked and taken apart, before anything connects."""
    key = f"datasources.{settings.name}.{'dsn' if dsn is None else 'admin_dsn'}"
    parts = parse_dsn(settings, dsn)
    if parts.scheme != "dynamodb":
        raise ConfigError(f"{key}: expected dynamodb://host:port/table_prefix, "
                          f"got scheme {parts.scheme!r}")
    if not _PREFIX_RE.fullmatch(parts.database):
        raise ConfigError(f"{key}: the table prefix may hold only A-Z a-z 0-9 _ . - "
                          f"(at most 64), got {parts.database!r}")
    unknown = set(parts.options) - {"region", "tls"}
    if unknown:
        raise ConfigError(f"{key}: unknown option {sorted(unknown)[0]!r}; expected region, tls")
    tls = parts.options.get("tls", "false")
    if tls not in ("true", "false"):
        raise ConfigError(f"{key}: tls: expected true or false, got {tls!r}")
    region = (parts.options.get("region") or os.environ.get("AWS_REGION")
              or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1")
    user, password = parts.user, parts.password
    url = None
    if parts.host != "aws":
        host = f"[{parts.host}]" if ":" in parts.host else parts.host
        scheme = "https" if tls == "true" else "http"
        url = f"{scheme}://{host}:{parts.port or (443 if tls == 'true' else 8000)}"
        if user is None and _loopback(parts.host):
            user, password = "local", "local"
    return Endpoint(url, region, user, password, parts.database)


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
