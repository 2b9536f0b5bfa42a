"""`beds scaffold --describe "..."`: a spec from a plain-language description, asked of an
OpenAI-compatible chat-completions endpoint the user provides. Off unless configured:

    BEDS_LLM_URL      base URL, e.g. http://127.0.0.1:8080/v1 (".../chat/completions" is added)
    BEDS_LLM_MODEL    the model name the endpoint expects
    BEDS_LLM_API_KEY  sent as "Authorization: Bearer ..." when set
    BEDS_LLM_TIMEOUT  seconds to wait for the answer (default 60)

Layer: tooling. The answer is only ever parsed as TOML and validated as a spec; nothing it says
is executed or applied. The file written is the validated spec re-rendered (`spectext`), and it
is the DBA's input to `beds scaffold SPEC --engine ...`, which is deterministic.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import sys
import tomllib
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from beds.errors import BedsError, ConfigError
from beds.scaffold.spec import Spec, parse_spec
from beds.scaffold.spectext import dump_spec

MAX_ANSWER_BYTES = 1 << 20
_FENCE_RE = re.compile(r"```[A-Za-z]*\s*\n(.*?)```", re.DOTALL)
SYSTEM_PROMPT = """\
You turn a description of a data domain into a BEDS domain spec. Answer with ONE TOML document
and nothing else. Keys:
name = "lower_snake_case entity name"   description = "one line"   primary_key = "a field name"
unique = ["field", ["field_a", "field_b"]]   (optional)   soft_delete = true|false   audit = true|false
[fields]  one inline table per field, names lower_snake_case (not SQL reserved words, not
created_at, updated_at, deleted_at, request_id, updated, deleted): type is one of str, int,
decimal, bool, date, datetime; optional keys: required (default true), min, max (int, decimal),
max_length (str, <= 4000; key and unique columns <= 255), pattern (str, a full-match regex),
choices (list; str and int), precision and scale (decimal), description, example (a value a
caller would send, matching every constraint).
[ops]  any of: fetch = true (by the primary key) or { by = "a single-column unique field" };
list = { filters = ["field"], order_by = ["field" or "-field"], limit = 50 }; create = true;
update = { fields = ["field", ...] } (fields it may change); delete = true.
Example:
name = "customer"
primary_key = "customer_id"
unique = ["email"]
[fields]
customer_id = { type = "int", min = 1, description = "Customer id" }
email = { type = "str", max_length = 100, pattern = '^[^@\\s]+@[^@\\s]+$', example = "ann@example.com" }
tier = { type = "str", choices = ["bronze", "silver", "gold"], description = "Loyalty tier" }
[ops]
fetch = { by = "email" }
list = { filters = ["tier"], order_by = ["email"], limit = 50 }
create = true
"""


class EndpointError(BedsError):
    """The chat endpoint failed or answered something that is not a valid spec."""


@dataclass(frozen=True)
class Endpoint:
    url: str
    model: str
    api_key: str | None
    timeout: float


def endpoint_from_env(environ: Mapping[str, str] | None = None) -> Endpoint:
    env = os.environ if environ is None else environ
    url, model = env.get("BEDS_LLM_URL", ""), env.get("BEDS_LLM_MODEL", "")
    if not url or not model:
        raise ConfigError("scaffold --describe needs an OpenAI-compatible chat endpoint that you "
                          "provide: set BEDS_LLM_URL (e.g. http://127.0.0.1:8080/v1) and "
                          "BEDS_LLM_MODEL (and BEDS_LLM_API_KEY if it needs one)")
    if not url.startswith(("http://", "https://")):
        raise ConfigError(f"BEDS_LLM_URL: expected an http:// or https:// URL, got {url!r}")
    try:
        timeout = float(env.get("BEDS_LLM_TIMEOUT", "60"))
    except ValueError:
        raise ConfigError("BEDS_LLM_TIMEOUT: expected seconds, e.g. 60") from None
    if not url.rstrip("/").endswith("/chat/completions"):
        url = url.rstrip("/") + "/chat/completions"
    return Endpoint(url, model, env.get("BEDS_LLM_API_KEY") or None, timeout)


def ask(endpoint: Endpoint, description: str) -> str:
    """The text of the endpoint's first choice."""
    body = {"model": endpoint.model, "temperature": 0,
            "messages": [{"role": "system", "content": SYSTEM_PROMPT},
                         {"role": "user", "content": description}]}
    headers = {"Content-Type": "application/json", "Accept": "application/json"}
    if endpoint.api_key:
        headers["Authorization"] = f"Bearer {endpoint.api_key}"
    # The scheme was checked in endpoint_from_env: only http(s), never file: or ftp:.
    request = urllib.request.Request(endpoint.url, json.dumps(body).encode(),  # noqa: S310
                                     headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=endpoint.timeout) as reply:  # noqa: S310
            raw = reply.read(MAX_ANSWER_BYTES + 1)
    except urllib.error.HTTPError as exc:
        excerpt = exc.read(300).decode(errors="replace").strip()
        raise EndpointError(f"{endpoint.url}: HTTP {exc.code} {exc.reason}: {excerpt}") from None
    except (TimeoutError, urllib.error.URLError, OSError, http.client.HTTPException) as exc:
        reason = getattr(exc, "reason", exc)
        if isinstance(reason, TimeoutError) or isinstance(exc, TimeoutError):
            raise EndpointError(f"{endpoint.url}: no answer within {endpoint.timeout:g}s "
                                "(BEDS_LLM_TIMEOUT)") from None
        raise EndpointError(f"{endpoint.url}: cannot reach the endpoint: {reason}; "
                            "start it, or set BEDS_LLM_URL to one that runs") from None
    if len(raw) > MAX_ANSWER_BYTES:
        raise EndpointError(f"{endpoint.url}: answer larger than {MAX_ANSWER_BYTES} bytes")
    return _content(endpoint.url, raw)


def _content(url: str, raw: bytes) -> str:
    try:
        data: Any = json.loads(raw)
        content = data["choices"][0]["message"]["content"]
    except (ValueError, KeyError, IndexError, TypeError):
        raise EndpointError(f"{url}: not a chat-completions answer (expected "
                            f"choices[0].message.content): {raw[:200]!r}") from None
    if not isinstance(content, str):
        raise EndpointError(f"{url}: choices[0].message.content is not text")
    return content


def spec_from_answer(answer: str, origin: str) -> Spec:
    """Parse and validate; the error names what was wrong, with the start of the answer."""
    fenced = _FENCE_RE.search(answer)
    text = fenced.group(1) if fenced else answer
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise EndpointError(f"{origin}: the answer is not TOML ({exc}); it began: "
                            f"{answer[:200]!r}") from None
    try:
        return parse_spec(data, origin)
    except ConfigError as exc:
        raise EndpointError(f"the answer is not a valid spec: {exc}") from None


def describe_to_file(description: str, target: Path | None, project: Path, force: bool,
                     environ: Mapping[str, str] | None = None) -> int:
    endpoint = endpoint_from_env(environ)
    spec = spec_from_answer(ask(endpoint, description), f"answer from {endpoint.url}")
    path = target or project / "docs" / "specs" / f"{spec.name}.toml"
    note = (f"Spec drafted by {endpoint.model} via `beds scaffold --describe` from:\n"
            f"  {' '.join(description.split())}\nReview it before `beds scaffold {path} "
            "--engine ...`.")
    text = dump_spec(spec, note)
    parse_spec(tomllib.loads(text), str(path))     # what is written reads back the same
    if path.exists() and path.read_text(encoding="utf-8") != text and not force:
        raise ConfigError(f"{path}: exists with other content; nothing was written (rerun with "
                          "--force, or name another file with --write)")
    print(text, end="")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    print(f"wrote {path}: review it, then `beds scaffold {path} --engine mysql|postgres`",
          file=sys.stderr)
    return 0
