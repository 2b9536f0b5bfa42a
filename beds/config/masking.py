"""Secrets hidden from the merged config before it is shown (`beds config show`).

Layer: foundation. Pure.
"""

from __future__ import annotations

import re
from typing import Any

_SECRET_KEYS = ("password", "dsn", "url", "secret", "token", "key", "replicas")
_SECRET_QUERY = re.compile(r"([?&;][^=&#]*(?:pass|pwd|secret|token|key)[^=&#]*)=[^&#]*", re.I)
_NEXT_URL = re.compile(r",(?=\s*[A-Za-z][A-Za-z0-9+.-]*://)")


def masked(data: Any, key: str = "") -> Any:
    """The merged config with secrets hidden (`beds config show`)."""
    if isinstance(data, dict):
        return {k: masked(v, k) for k, v in data.items()}
    if isinstance(data, list):
        return [masked(v, key) for v in data]
    if isinstance(data, str) and any(word in key.lower() for word in _SECRET_KEYS):
        if "://" not in data:
            return "***"
        # the $BEDS_AMQP_URLS form: URLs joined by commas (a mongodb:// host list has commas too)
        return ",".join(mask_url(part) for part in _NEXT_URL.split(data))
    return data


def mask_url(url: str) -> str:
    """scheme://user:password@host -> scheme://user:***@host, whatever the password holds
    (an '@' too) and however many hosts follow; and ?password=... style query values."""
    scheme, sep, rest = url.partition("://")
    end = min((i for i in (rest.find(c) for c in "/?#") if i >= 0), default=len(rest))
    netloc, tail = rest[:end], rest[end:]
    if "@" in netloc:
        userinfo, _, hosts = netloc.rpartition("@")
        user = userinfo.split(":", 1)[0]
        netloc = f"{user}:***@{hosts}" if ":" in userinfo else f"{user}@{hosts}"
    tail = _SECRET_QUERY.sub(lambda m: f"{m.group(1)}=***", tail)
    return f"{scheme}{sep}{netloc}{tail}"
