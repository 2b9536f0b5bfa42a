"""`beds scaffold --describe`: a spec asked of an OpenAI-compatible chat endpoint, here a stand-in
HTTP server on 127.0.0.1 speaking the chat-completions protocol. A good answer is validated,
printed and written; a malformed answer, an invalid spec, an HTTP error and a timeout each give a
clear error and write nothing."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from beds.cli import main
from beds.scaffold.spec import load_spec
from tests.support.services import ROOT

GOOD_SPEC = """\
name = "customer_card"
description = "Loyalty cards of customers"
primary_key = "email"
soft_delete = true
[fields]
email = { type = "str", max_length = 100, pattern = '^[^@\\s]+@[^@\\s]+$', example = "ann@example.com" }
name = { type = "str", max_length = 80 }
tier = { type = "str", choices = ["bronze", "silver", "gold"] }
[ops]
fetch = true
list = { filters = ["tier"] }
create = true
delete = true
"""


@dataclass
class StandIn:
    """What the stand-in endpoint answers, and what it was asked."""

    url: str
    answer: Callable[[dict[str, Any]], tuple[int, bytes]] = lambda _body: (500, b"unset")
    requests: list[tuple[dict[str, str], dict[str, Any]]] = field(default_factory=list)
    release: threading.Event = field(default_factory=threading.Event)


def chat_answer(content: str) -> Callable[[dict[str, Any]], tuple[int, bytes]]:
    body = {"id": "chatcmpl-1", "object": "chat.completion", "model": "stand-in",
            "choices": [{"index": 0, "finish_reason": "stop",
                         "message": {"role": "assistant", "content": content}}]}
    return lambda _request: (200, json.dumps(body).encode())


@pytest.fixture
def endpoint() -> Iterator[StandIn]:
    state = StandIn(url="")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:    # the name http.server calls
            length = int(self.headers.get("Content-Length", "0"))
            body = json.loads(self.rfile.read(length))
            state.requests.append((dict(self.headers), body))
            if self.path != "/v1/chat/completions":
                status, payload = 404, b'{"error": "not found"}'
            else:
                status, payload = state.answer(body)
            if status == 0:                      # a slow endpoint: hold the answer back
                state.release.wait(10)
                status = 200
            try:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)
            except (BrokenPipeError, ConnectionResetError):
                pass   # the timeout test's client has given up, as it should

        def log_message(self, *_args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}/v1"
    try:
        yield state
    finally:
        state.release.set()
        server.shutdown()
        server.server_close()


@pytest.fixture
def configured(endpoint: StandIn, monkeypatch: pytest.MonkeyPatch) -> StandIn:
    monkeypatch.setenv("BEDS_LLM_URL", endpoint.url)
    monkeypatch.setenv("BEDS_LLM_MODEL", "stand-in-model")
    monkeypatch.setenv("BEDS_LLM_API_KEY", "sk-test-secret")
    monkeypatch.setenv("BEDS_LLM_TIMEOUT", "5")
    return endpoint


def describe(tmp_path: Path, *extra: str) -> int:
    return main(["scaffold", "--describe", "customer cards with email, name and a loyalty "
                 "tier; fetch by email, list by tier", "--out", str(tmp_path), *extra])


def test_a_good_answer_is_validated_printed_and_written(
        configured: StandIn, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    configured.answer = chat_answer(f"Here is the spec:\n```toml\n{GOOD_SPEC}```\nEnjoy.")
    assert describe(tmp_path) == 0
    written = tmp_path / "docs/specs/customer_card.toml"
    out, err = capsys.readouterr()
    assert out == written.read_text()             # what was printed is what was written
    assert f"wrote {written}" in err and "sk-test-secret" not in out + err
    spec = load_spec(written)
    assert spec.primary_key == "email" and spec.fields["tier"].choices == (
        "bronze", "silver", "gold")
    assert "Spec drafted by stand-in-model" in out
    (headers, body), = configured.requests
    assert headers["Authorization"] == "Bearer sk-test-secret"
    assert body["model"] == "stand-in-model"
    assert [m["role"] for m in body["messages"]] == ["system", "user"]
    assert "loyalty tier" in body["messages"][1]["content"]
    assert "[fields]" in body["messages"][0]["content"]
    # Generation then proceeds from the file, deterministically, when the DBA asks for it.
    assert main(["scaffold", str(written), "--engine", "postgres", "--out", str(tmp_path)]) == 0
    assert (tmp_path / "templates/customer_card.toml").exists()


def test_write_names_the_file_and_an_existing_one_needs_force(
        configured: StandIn, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    configured.answer = chat_answer(GOOD_SPEC)
    target = tmp_path / "mine.toml"
    target.write_text("# mine\n")
    assert describe(tmp_path, "--write", str(target)) == 2
    assert "exists with other content; nothing was written" in capsys.readouterr().err
    assert target.read_text() == "# mine\n"
    assert describe(tmp_path, "--write", str(target), "--force") == 0
    assert load_spec(target).name == "customer_card"


@pytest.mark.parametrize(("answer", "message"), [
    (chat_answer("I cannot help with that."), "the answer is not TOML"),
    (chat_answer(GOOD_SPEC.replace('"str", choices', '"string", choices')),
     "the answer is not a valid spec: answer from http://127.0.0.1:"),
    (chat_answer(GOOD_SPEC.replace("fetch = true", "fetch = true\ndrop = true")),
     "ops.drop: unknown key"),
    (lambda _body: (200, b'{"choices": []}'), "not a chat-completions answer"),
    (lambda _body: (200, b"<html>"), "not a chat-completions answer"),
    (lambda _body: (401, b'{"error": "bad key"}'), "HTTP 401"),
], ids=["prose", "bad-type", "unknown-op", "no-choices", "not-json", "http-401"])
def test_a_bad_answer_is_a_clear_error_and_nothing_is_written(
        configured: StandIn, tmp_path: Path, capsys: pytest.CaptureFixture[str],
        answer: Callable[[dict[str, Any]], tuple[int, bytes]], message: str) -> None:
    configured.answer = answer
    assert describe(tmp_path) == 1
    err = capsys.readouterr().err
    assert message in err and "sk-test-secret" not in err
    assert list(tmp_path.iterdir()) == []


def test_a_slow_endpoint_times_out(configured: StandIn, tmp_path: Path,
                                   capsys: pytest.CaptureFixture[str],
                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BEDS_LLM_TIMEOUT", "0.3")
    configured.answer = lambda _body: (0, b"{}")
    assert describe(tmp_path) == 1
    assert "no answer within 0.3s (BEDS_LLM_TIMEOUT)" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_an_unreachable_endpoint_is_a_clear_error(tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str],
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BEDS_LLM_URL", "http://127.0.0.1:1/v1")   # nothing listens on port 1
    monkeypatch.setenv("BEDS_LLM_MODEL", "m")
    assert describe(tmp_path) == 1
    assert "cannot reach the endpoint" in capsys.readouterr().err


def test_off_unless_configured(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("BEDS_LLM_URL", raising=False)
    monkeypatch.setenv("BEDS_LLM_MODEL", "m")
    assert describe(tmp_path) == 2
    assert "needs an OpenAI-compatible chat endpoint that you provide" in capsys.readouterr().err
    monkeypatch.setenv("BEDS_LLM_URL", "file:///etc/passwd")
    assert describe(tmp_path) == 2
    assert "BEDS_LLM_URL: expected an http:// or https:// URL" in capsys.readouterr().err
    assert main(["scaffold", str(ROOT / "docs/specs/supplier.toml"), "--describe", "x"]) == 2
