"""The wire envelope: what a malformed request gets, and how database types are encoded."""

from __future__ import annotations

import json
from datetime import date, datetime, time, timedelta
from decimal import Decimal

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from beds.errors import BadRequest, Conflict, RequestError, TooLarge
from beds.protocol import (
    MAX_DEPTH,
    Result,
    deadline_of,
    decode_request,
    encode_error,
    encode_ok,
)
from beds.table import IDENT_RE

LIMIT = 1024


def test_a_valid_request_decodes() -> None:
    req = decode_request(b'{"template":"film","op":"list","params":{"a":1},"limit":5,"offset":0}',
                         LIMIT)
    assert (req.template, req.op, req.params, req.limit, req.offset) == (
        "film", "list", {"a": 1}, 5, 0)


def test_params_may_be_absent() -> None:
    assert decode_request(b'{"template":"t","op":"o"}', LIMIT).params == {}


@pytest.mark.parametrize(("body", "error", "message"), [
    (b"{not json", BadRequest, "body: not valid JSON"),
    (b"\xff\xfe\x00", BadRequest, "body: not valid UTF-8 at byte 0"),
    (b'{"template": "t", "op": "\xff"}', BadRequest, "body: not valid UTF-8 at byte 25"),
    (b"[1, 2]", BadRequest, "body: expected a JSON object, got list"),
    (b'"str"', BadRequest, "body: expected a JSON object, got str"),
    (b'{"op":"o"}', BadRequest, "template: expected a non-empty string, got nothing (key missing)"),
    (b'{"template":5,"op":"o"}', BadRequest, "template: expected a non-empty string, got 5"),
    (b'{"template":"t"}', BadRequest, "op: expected a non-empty string, got nothing"),
    (b'{"template":"no.such","op":"o"}', BadRequest,
     "template: expected a name matching [A-Za-z_][A-Za-z0-9_]{0,63} (letters, digits, "
     "underscore; at most 64), got 'no.such' (7 chars)"),
    (b'{"template":"t","op":"' + b"x" * 900 + b'"}', BadRequest,
     "op: expected a name matching [A-Za-z_][A-Za-z0-9_]{0,63} (letters, digits, underscore; "
     "at most 64), got 'xxxxx"),
    (b'{"template":"t","op":"9lives"}', BadRequest, "op: expected a name matching"),
    (b'{"template":"' + b"t" * 65 + b'","op":"o"}', BadRequest, "template: expected a name"),
    (b'{"template":"t","op":"o","params":[1]}', BadRequest, "params: expected a JSON object"),
    (b'{"template":"t","op":"o","limit":0}', BadRequest, "limit: expected int >= 1, got 0"),
    (b'{"template":"t","op":"o","offset":-1}', BadRequest,
     "offset: expected int between 0 and 100000, got -1"),
    # L4: a deep OFFSET makes the database read every row before it (MongoDB: OverflowError)
    (b'{"template":"t","op":"o","offset":100001}', BadRequest,
     "offset: expected int between 0 and 100000, got 100001"),
    (b'{"template":"t","op":"o","offset":' + b"9" * 30 + b"}", BadRequest,
     "offset: expected int between 0 and 100000"),
    (b'{"template":"t","op":"o","sql":"DROP"}', BadRequest, "sql: unknown key; expected only"),
    (b"x" * (LIMIT + 1), TooLarge, f"body: {LIMIT + 1} bytes exceeds the limit of {LIMIT} bytes"),
])
def test_malformed_requests_are_refused_with_the_field_at_fault(
        body: bytes, error: type[RequestError], message: str) -> None:
    with pytest.raises(error) as info:
        decode_request(body, LIMIT)
    assert str(info.value).startswith(message)


def test_a_refused_name_is_not_echoed_whole() -> None:
    with pytest.raises(BadRequest) as info:
        decode_request(b'{"template":"' + b"a-" * 400 + b'","op":"o"}', LIMIT)
    assert len(str(info.value)) < 200 and str(info.value).endswith("(800 chars)")


def test_the_longest_declarable_name_passes() -> None:
    name = "t" * 64
    assert decode_request(f'{{"template":"{name}","op":"_o9"}}'.encode(), LIMIT).template == name


def test_nesting_past_the_decoders_own_limit_is_a_bad_request() -> None:
    body = b'{"template":"t","op":"o","params":{"a":' + b"[" * 5000 + b"]" * 5000 + b"}}"
    with pytest.raises(BadRequest, match="nested deeper than"):
        decode_request(body, 100_000)


def test_deep_nesting_is_refused() -> None:
    nested = "[" * (MAX_DEPTH + 2) + "]" * (MAX_DEPTH + 2)
    body = f'{{"template":"t","op":"o","params":{{"a":{nested}}}}}'.encode()
    with pytest.raises(BadRequest, match="nested deeper than"):
        decode_request(body, 10_000)


def test_database_types_encode_as_the_protocol_says() -> None:
    row = {"price": Decimal("12.50"), "day": date(2026, 1, 31),
           "at": datetime(2026, 1, 31, 12, 30, 5), "raw": b"\x00\xff", "none": None,
           "t": time(10, 5), "span": timedelta(hours=1)}
    reply = json.loads(encode_ok(Result(rows=[row], out={"n": 1}), {"rows": 1}))
    data = reply["data"][0]
    assert data["price"] == "12.50"                 # exact, never a float
    assert data["day"] == "2026-01-31"
    assert data["at"] == "2026-01-31T12:30:05"
    assert data["raw"] == "AP8="                    # base64
    assert data["none"] is None
    assert data["t"] == "10:05:00"
    assert reply["ok"] is True and reply["out"] == {"n": 1} and "sets" not in reply


def test_error_reply_shape() -> None:
    reply = json.loads(encode_error(Conflict("duplicate key: x", errno=1062), {"node": "n"}))
    assert reply == {"ok": False, "error": {"code": "CONFLICT", "message": "duplicate key: x",
                                            "retryable": False, "details": {"errno": 1062}},
                     "meta": {"node": "n"}}


@settings(max_examples=300)
@given(st.text(alphabet=st.characters(max_codepoint=0x7F) | st.sampled_from("éß٠ǅ"),
               max_size=70))
def test_a_name_passes_exactly_when_it_matches_the_identifier_pattern(name: str) -> None:
    body = msgspec.json.encode({"template": name, "op": "o"})
    if IDENT_RE.fullmatch(name):
        assert decode_request(body, LIMIT).template == name
    else:
        with pytest.raises(BadRequest, match="^template: expected a"):
            decode_request(body, LIMIT)
@pytest.mark.parametrize("value", ["NaN", "inf", "-Infinity", b"nan", 10**400, "soon", None])
def test_an_x_deadline_must_be_a_finite_number(value: object) -> None:
    # L3: NaN disabled the retry deadline check and ended INTERNAL in the adapters.
    with pytest.raises(BadRequest, match="x-deadline: expected epoch milliseconds"):
        deadline_of({"x-deadline": value})


def test_a_valid_x_deadline_is_epoch_seconds() -> None:
    assert deadline_of({"x-deadline": 1_700_000_000_500}) == 1_700_000_000.5
    assert deadline_of({"x-deadline": b"1000"}) == 1.0
    assert deadline_of({}) is None
