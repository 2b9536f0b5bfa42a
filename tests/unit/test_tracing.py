"""W3C traceparent parsing, the tracing switch, and its start-up checks (no network)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from beds.config import Settings, load_settings
from beds.errors import ConfigError
from beds.tracecontext import inject_context, parse_traceparent, trace_fields
from beds.tracing import check_tracing, start_tracing, tracing_wanted

ROOT = Path(__file__).resolve().parents[2]
TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
SPAN = "00f067aa0ba902b7"


def settings(tmp_path: Path, enabled: bool) -> Settings:
    env = tmp_path / "env.toml"
    env.write_text(f"[tracing]\nenabled = {'true' if enabled else 'false'}\n")
    return load_settings(ROOT / "config/beds.toml", env, environ={"BEDS_MYSQL_PASSWORD": "x"})


def test_a_valid_traceparent_is_read() -> None:
    parent = parse_traceparent(f"00-{TRACE}-{SPAN}-01")
    assert parent is not None and (parent.trace_id, parent.parent_id) == (TRACE, SPAN)
    assert parent.sampled
    unsampled = parse_traceparent(f"00-{TRACE}-{SPAN}-00".encode())
    assert unsampled is not None and not unsampled.sampled
    # A later version may add fields; what this version knows is still read.
    later = parse_traceparent(f"cc-{TRACE}-{SPAN}-01-what-comes-next")
    assert later is not None and later.trace_id == TRACE


@pytest.mark.parametrize("value", [
    None, 17, "", "00", f"00-{TRACE}-{SPAN}", f"00-{TRACE}-{SPAN}-01-x",
    f"00-{TRACE.upper()}-{SPAN}-01", f"00-{TRACE}-{SPAN.upper()}-01", f"ff-{TRACE}-{SPAN}-01",
    f"00-{'0' * 32}-{SPAN}-01", f"00-{TRACE}-{'0' * 16}-01", f"00-{TRACE}x-{SPAN}-01",
    f" 00-{TRACE}-{SPAN}-01", f"00-{TRACE}-{SPAN}-1", b"\xff" * 55,
    f"cc-{TRACE}-{SPAN}-01-" + "x" * 600,
])
def test_a_malformed_traceparent_is_ignored(value: object) -> None:
    assert parse_traceparent(value) is None


def test_log_fields_come_only_from_a_valid_header() -> None:
    assert trace_fields({"traceparent": f"00-{TRACE}-{SPAN}-01"}) == {"trace_id": TRACE,
                                                                      "span_id": SPAN}
    assert trace_fields({"traceparent": "00-nope"}) == {}
    assert trace_fields({"x-deadline": 1}) == {} and trace_fields(None) == {}


@pytest.mark.parametrize(("enabled", "env", "wanted"), [
    (False, {}, False),
    (True, {}, True),
    (False, {"OTEL_TRACES_EXPORTER": "otlp"}, True),
    (True, {"OTEL_TRACES_EXPORTER": "none"}, False),
    (True, {"OTEL_SDK_DISABLED": "true"}, False),
    (False, {"OTEL_SDK_DISABLED": "TRUE", "OTEL_TRACES_EXPORTER": "otlp"}, False),
    (True, {"OTEL_SDK_DISABLED": "false"}, True),
])
def test_the_switch_follows_config_then_the_standard_variables(
        enabled: bool, env: dict[str, str], wanted: bool) -> None:
    assert tracing_wanted(enabled, env) is wanted


def test_off_means_no_tracing_object(tmp_path: Path) -> None:
    assert start_tracing(settings(tmp_path, False), "appServer", environ={}) is None


def test_unsupported_exporters_are_config_errors_before_anything_connects(tmp_path: Path) -> None:
    s = settings(tmp_path, True)
    check_tracing(s, {})
    with pytest.raises(ConfigError, match="OTEL_TRACES_EXPORTER: 'zipkin' is not supported"):
        check_tracing(s, {"OTEL_TRACES_EXPORTER": "zipkin"})
    with pytest.raises(ConfigError, match="OTEL_EXPORTER_OTLP_PROTOCOL: 'grpc' is not supported"):
        check_tracing(s, {"OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"})
    check_tracing(settings(tmp_path, False), {"OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"})   # off


def test_the_config_key_is_validated(tmp_path: Path) -> None:
    env = tmp_path / "env.toml"
    env.write_text("[tracing]\nenabled = 'yes'\n")
    with pytest.raises(ConfigError, match="tracing.enabled"):
        load_settings(ROOT / "config/beds.toml", env, environ={"BEDS_MYSQL_PASSWORD": "x"})
    env.write_text("[tracing]\nexporter = 'otlp'\n")
    with pytest.raises(ConfigError, match="exporter"):
        load_settings(ROOT / "config/beds.toml", env, environ={"BEDS_MYSQL_PASSWORD": "x"})


def test_inject_writes_the_current_span_and_nothing_outside_one() -> None:
    pytest.importorskip("opentelemetry.sdk")
    from opentelemetry.sdk.trace import TracerProvider

    headers: dict[str, object] = {}
    inject_context(headers)
    assert "traceparent" not in headers
    with TracerProvider().get_tracer("t").start_as_current_span("s") as span:
        inject_context(headers)
    parent = parse_traceparent(headers["traceparent"])
    assert parent is not None and parent.trace_id == f"{span.get_span_context().trace_id:032x}"


@pytest.mark.slow   # a fresh interpreter imports the node
def test_a_node_without_tracing_never_imports_opentelemetry(tmp_path: Path) -> None:
    """The hot path with tracing off runs no OpenTelemetry code: it is not even loaded."""
    env = tmp_path / "env.toml"
    env.write_text("[node]\nname = 'n'\n")
    script = (
        "import sys\n"
        "from beds.config import load_settings\n"
        "from beds.node import Node\n"
        "from beds.client import Client\n"
        "from beds.tracecontext import trace_fields\n"
        f"s = load_settings({str(ROOT / 'config/beds.toml')!r}, {str(env)!r}, "
        "environ={'BEDS_MYSQL_PASSWORD': 'x'})\n"
        "Node.build(s, 'appServer')\n"
        "trace_fields({'traceparent': '00-" + TRACE + "-" + SPAN + "-01'})\n"
        "print(sorted(m for m in sys.modules if m.startswith('opentelemetry')))\n"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         check=True, cwd=ROOT, env={"PATH": "/usr/bin:/bin"})
    assert out.stdout.strip() == "[]", out.stdout
