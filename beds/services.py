"""Built-in services: the broker `service` names of config and the classes that run them.

Layer: application. Imported lazily, so an appServer never loads the dashboard or the syslog
code. Each class is built as `Class(ctx, broker, instance)` and is a brokers.pool.Worker.
"""

from __future__ import annotations

import importlib
from typing import cast

from beds.config.ops import Service
from beds.errors import ConfigError
from beds.ops.context import ServiceFactory

_CLASSES = {
    Service.ADMIN_IN: "beds.admin.inbox:AdminInbox",
    Service.ADMIN_OUT: "beds.admin.relay:EventRelay",
    Service.ADMIN_LOGS: "beds.admin.logstore:LogStore",
    Service.ADMIN_SYSLOG: "beds.admin.syslog:SyslogForwarder",
    Service.ADMIN_GRAPH: "beds.admin.graph:GraphCollector",
    Service.WAREHOUSE: "beds.warehouse.mover:WarehouseMover",
}


def service_factory(service: Service) -> ServiceFactory:
    """The class that runs `service`. Raises ConfigError when it cannot be loaded."""
    if service not in _CLASSES:
        raise ConfigError(f"service {service.value!r} is not a built-in service")
    module_name, _, class_name = _CLASSES[service].partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ConfigError(f"service {service.value!r}: cannot load {module_name}: {exc}") from None
    return cast(ServiceFactory, getattr(module, class_name))
