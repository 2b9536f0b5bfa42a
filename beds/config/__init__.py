"""Configuration: the node settings (`settings`, loaded and validated by `load`), the settings of
the operations plane (`ops`) and the secret masking of `beds config show` (`masking`).

Layer: foundation. Pure: reads files, never opens a socket. `from beds.config import X` is the
way in for the names below; the submodules never import this package back.
"""

from __future__ import annotations

from beds.config.load import DEFAULT_CONFIG, DEFAULT_ENV_FILE, env_file_path, load_settings
from beds.config.masking import masked
from beds.config.ops import AdminSettings, OpsSettings, Service, TracingSettings
from beds.config.settings import (
    DELIVERY_LIMIT,
    LEADER_LOCATORS,
    AmqpSettings,
    BrokerSettings,
    DatasourceSettings,
    Engine,
    NodeSettings,
    OpKind,
    QueueType,
    RoleSettings,
    SecuritySettings,
    Settings,
)

__all__ = [
    "DEFAULT_CONFIG", "DEFAULT_ENV_FILE", "DELIVERY_LIMIT", "LEADER_LOCATORS", "AdminSettings",
    "AmqpSettings", "BrokerSettings", "DatasourceSettings", "Engine", "NodeSettings", "OpKind",
    "OpsSettings", "QueueType", "RoleSettings", "SecuritySettings", "Service", "Settings",
    "TracingSettings", "env_file_path", "load_settings", "masked",
]
