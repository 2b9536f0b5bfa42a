"""`.env` in the working directory: KEY=VALUE lines the CLI adds to the environment it reads.

Layer: interface (CLI). Pure apart from reading the one file. Precedence, first wins: a variable
already set in the process environment, then `.env`, then the `${VAR:-default}` of the config.

The format is the one `make` writes and includes: `KEY=VALUE` per line, `#` comments and blank
lines ignored, an optional `export ` prefix, a value optionally in matching single or double
quotes (taken literally: no escapes, no `$VAR` expansion). Anything else is a ConfigError naming
the line.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path

from beds.errors import ConfigError

DOTENV = Path(".env")
_LINE_RE = re.compile(r"(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*)")


def parse_dotenv(text: str, source: str = ".env") -> dict[str, str]:
    values: dict[str, str] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        match = _LINE_RE.fullmatch(line)
        if match is None:
            raise ConfigError(f"{source}:{number}: expected KEY=VALUE, got {line[:40]!r}")
        key, value = match.groups()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        elif value[:1] in ("'", '"'):
            raise ConfigError(f"{source}:{number}: {key}: the opening {value[0]} is never closed")
        else:
            value = value.split(" #", 1)[0].rstrip()   # an unquoted value may end in a comment
        values[key] = value
    return values


def environment(path: Path = DOTENV, environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The process environment with `path`'s variables added where not already set."""
    env = dict(os.environ if environ is None else environ)
    if not path.is_file():
        return env
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read: {exc}") from None
    return {**parse_dotenv(text, str(path)), **env}
