"""Whether a node traces, and the OpenTelemetry set-up when it does (docs/tracing.md).

Layer: operations, start-up only: nothing here runs per message. Tracing is on when
`[tracing] enabled = true` or OTEL_TRACES_EXPORTER names an exporter, and off whatever else says
when OTEL_SDK_DISABLED=true or OTEL_TRACES_EXPORTER=none. Off, the node builds the plain
Consumer and never imports OpenTelemetry; on, it builds beds.brokers.traced.TracedConsumer.

The spans go to, in this order: a TracerProvider handed to the node (tests, an application that
embeds a node), the global one an application installed, or one this module builds from the
standard OTEL_* variables (OTLP over HTTP/protobuf, the exporter the `otel` extra installs).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from beds.brokers.consumer import Consumer, Shared
from beds.config import BrokerSettings, Engine, Settings
from beds.errors import ConfigError
from beds.log import get_logger

log = get_logger("beds.tracing")
INSTALL = "pip install 'beds[otel]'"
_DB_SYSTEMS = {Engine.MYSQL: "mysql", Engine.POSTGRES: "postgresql", Engine.MONGODB: "mongodb",
               Engine.DYNAMODB: "aws.dynamodb"}   # OpenTelemetry's db.system.name values
_EXPORTERS = ("otlp", "console", "none")


def tracing_wanted(enabled: bool, environ: Mapping[str, str]) -> bool:
    """The switch: the config key, overridden by the standard OpenTelemetry variables."""
    if environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    exporters = _exporters(environ)
    if exporters == ["none"]:
        return False
    return enabled or bool(exporters)


def check_tracing(settings: Settings, environ: Mapping[str, str] | None = None) -> None:
    """Before anything connects: tracing asked for in the config needs the `otel` extra, and
    the exporter variables must name what is installed. Raises ConfigError."""
    env = os.environ if environ is None else environ
    if not tracing_wanted(settings.tracing.enabled, env):
        return
    for name in _exporters(env):
        if name not in _EXPORTERS:
            raise ConfigError(f"OTEL_TRACES_EXPORTER: {name!r} is not supported; expected one "
                              f"of {', '.join(_EXPORTERS)}")
    protocol = (env.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
                or env.get("OTEL_EXPORTER_OTLP_PROTOCOL") or "http/protobuf").strip()
    if protocol != "http/protobuf":
        raise ConfigError(f"OTEL_EXPORTER_OTLP_PROTOCOL: {protocol!r} is not supported; BEDS "
                          "exports OTLP over HTTP, expected 'http/protobuf'")
    if settings.tracing.enabled and not _installed():
        raise ConfigError(f"tracing.enabled: OpenTelemetry is not installed: {INSTALL}")


@dataclass
class Tracing:
    """A running node's tracing: builds its consumers, flushes its spans at the end."""

    tracer: Any
    provider: Any
    owned: bool                    # built here, so shut down here
    db_systems: dict[str, str]     # datasource -> db.system.name

    def consumer(self, broker: BrokerSettings, instance: int, shared: Shared) -> Consumer:
        from beds.brokers.traced import TracedConsumer
        return TracedConsumer(broker, instance, shared, self.tracer, self.db_systems)

    async def close(self) -> None:
        """Export what is still buffered (the batch processor's thread blocks: not on the loop)."""
        if self.owned:
            await asyncio.to_thread(self.provider.shutdown)


def start_tracing(settings: Settings, role: str, provider: Any = None,
                  environ: Mapping[str, str] | None = None) -> Tracing | None:
    """A Tracing when tracing is on (a given `provider` turns it on), else None."""
    env = os.environ if environ is None else environ
    if provider is None and not tracing_wanted(settings.tracing.enabled, env):
        return None
    if provider is None and not _installed():   # enabled by the environment: serve untraced
        log.warning("tracing.unavailable", reason=f"OpenTelemetry is not installed: {INSTALL}")
        return None
    from opentelemetry import trace

    owned = False
    if provider is None:
        provider = trace.get_tracer_provider()
        if isinstance(provider, trace.ProxyTracerProvider):   # nobody installed one: ours
            provider, owned = _sdk_provider(settings.node.name, role, env), True
    tracer = provider.get_tracer("beds")
    systems = {name: _DB_SYSTEMS.get(ds.engine, "other_sql")
               for name, ds in settings.datasources.items()}
    log.info("tracing.on", exporters=_exporters(env) or ["otlp"], own_provider=owned)
    return Tracing(tracer, provider, owned, systems)


def _sdk_provider(node: str, role: str, env: Mapping[str, str]) -> Any:
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter

    # OTEL_SERVICE_NAME / OTEL_RESOURCE_ATTRIBUTES are read by Resource.create; "beds" only
    # replaces the SDK's "unknown_service" default.
    resource = Resource.create({"service.instance.id": node, "beds.role": role})
    if str(resource.attributes.get("service.name", "")).startswith("unknown_service"):
        resource = resource.merge(Resource({"service.name": "beds"}))
    provider = TracerProvider(resource=resource)   # reads OTEL_TRACES_SAMPLER(_ARG)
    for name in _exporters(env) or ["otlp"]:
        if name == "otlp":   # OTEL_EXPORTER_OTLP_(TRACES_)ENDPOINT, _HEADERS, _TIMEOUT, ...
            provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
        elif name == "console":
            provider.add_span_processor(BatchSpanProcessor(ConsoleSpanExporter()))
    return provider


def _exporters(env: Mapping[str, str]) -> list[str]:
    raw = env.get("OTEL_TRACES_EXPORTER", "")
    return [name.strip().lower() for name in raw.split(",") if name.strip()]


def _installed() -> bool:
    try:
        import opentelemetry.sdk.trace  # noqa: F401 - presence check
    except ImportError:
        return False
    return True
