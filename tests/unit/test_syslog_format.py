"""RFC 5424 formatting of shipped lines: header fields, severity and facility, structured-data
escaping, and a MSG that is the whole line as JSON."""

from __future__ import annotations

import re
from pathlib import Path

import msgspec

from beds.admin.syslog import BOM, facility_code, format_rfc5424

RFC5424 = re.compile(
    rb"<(?P<pri>\d{1,3})>1 (?P<ts>\S+) (?P<host>\S+) (?P<app>\S+) (?P<procid>\S+) "
    rb"(?P<msgid>\S+) (?P<sd>-|\[.*?(?<!\\)\]) (?P<msg>.*)", re.S)

LINE = {"at": "2026-01-31T12:00:00.123456Z", "node": "app1", "role": "appServer", "pid": 4242,
        "host": "box-1", "level": "warning", "event": "command.refused", "code": "BAD_COMMAND"}


def parse(datagram: bytes) -> dict[str, bytes]:
    match = RFC5424.fullmatch(datagram)
    assert match, datagram
    return match.groupdict()


def test_header_fields() -> None:
    parts = parse(format_rfc5424(LINE, "beds"))
    assert int(parts["pri"]) == 16 * 8 + 4            # local0, warning
    assert parts["ts"] == b"2026-01-31T12:00:00.123456Z"
    assert parts["host"] == b"box-1" and parts["app"] == b"beds"
    assert parts["procid"] == b"4242" and parts["msgid"] == b"command.refused"


def test_msg_is_the_line_as_utf8_json_after_a_bom() -> None:
    line = {**LINE, "error": "naïve ✓"}
    msg = parse(format_rfc5424(line, "beds"))["msg"]
    assert msg.startswith(BOM)
    assert msgspec.json.decode(msg[len(BOM):]) == line


def test_severity_per_level_and_facility() -> None:
    for level, severity in (("critical", 2), ("error", 3), ("warning", 4), ("audit", 5)):
        pri = int(parse(format_rfc5424({**LINE, "level": level}, "beds", 23))["pri"])
        assert pri == 23 * 8 + severity
    assert facility_code("local0") == 16 and facility_code("local7") == 23
    assert facility_code("auth") == 4 and facility_code("user") == 1


def test_structured_data_is_escaped() -> None:
    line = {**LINE, "correlation_id": 'a"b\\c]d', "template": "customer", "op": "create",
            "user": "bob"}
    sd = parse(format_rfc5424(line, "beds"))["sd"].decode()
    assert sd.startswith("[beds@32473 ")
    assert 'correlation_id="a\\"b\\\\c\\]d"' in sd
    assert 'node="app1"' in sd and 'role="appServer"' in sd and 'user="bob"' in sd
    assert 'template="customer"' in sd and 'op="create"' in sd


def test_header_fields_are_printable_ascii_and_bounded() -> None:
    line = {**LINE, "event": "an event with spaces and ümlauts that is long", "host": None,
            "pid": None}
    parts = parse(format_rfc5424(line, "beds"))
    assert parts["msgid"] == b"an_event_with_spaces_and__mlauts"   # 32 characters at most
    assert parts["host"] == b"app1"                                 # no host: the node name
    assert parts["procid"] == b"-"                                  # NILVALUE


def test_a_line_without_context_has_no_structured_data() -> None:
    parts = parse(format_rfc5424({"at": "bad", "event": "x"}, "beds"))
    assert parts["sd"] == b"-" and parts["host"] == b"-"
    assert int(parts["pri"]) == 16 * 8 + 5   # no level: a notice
    assert parts["ts"].endswith(b"Z")          # an unreadable time: when it was forwarded


async def test_the_unix_socket_transport_delivers_a_datagram(tmp_path: Path) -> None:
    """`[admin] syslog = "unix:///path"` (e.g. /dev/log) over a real unix datagram socket."""
    import socket

    import tomli_w

    from beds.admin.syslog import SyslogForwarder
    from beds.config import load_settings
    from beds.ops.context import NodeContext
    from tests.support.services import ROOT

    path = tmp_path / "log.sock"
    receiver = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    receiver.bind(str(path))
    receiver.settimeout(5)
    env = tmp_path / "env.toml"
    env.write_text(tomli_w.dumps({"admin": {"syslog": f"unix://{path}"}}))
    settings = load_settings(ROOT / "config/beds.toml", env, environ={"BEDS_MYSQL_PASSWORD": "x"})
    ctx = NodeContext(settings, settings.role("admin"), None, None, None, None, None)  # type: ignore[arg-type]
    forwarder = SyslogForwarder(ctx, settings.brokers["adminSyslogBroker"], 0)
    try:
        await forwarder._send(format_rfc5424(LINE, "beds"))
        fields = parse(receiver.recv(65536))
        assert fields["msgid"] == b"command.refused" and fields["pri"] == b"132"
    finally:
        forwarder._close()
        receiver.close()
