"""What every schema generator offers (`SchemaGenerator`) and what it is told about the files
already in the schema directory (`Existing`).

Layer: tooling. Pure data and a protocol; the engines import this module, the registry in
`beds.scaffold.engines` imports the engines, never the reverse.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from beds.config import Engine
from beds.scaffold.spec import Spec


@dataclass(frozen=True)
class Existing:
    """What the other files of the schema directory already define, by section (JSON engines:
    `request_log`, `counters`, grants). A JSON schema may not define a name twice, so a
    generated file leaves out what the project already has, as SQL's IF NOT EXISTS would."""

    names: dict[str, frozenset[str]] = field(default_factory=dict)

    def has(self, section: str, name: str) -> bool:
        return name in self.names.get(section, frozenset())


class SchemaGenerator(Protocol):
    engine: Engine
    suffix: str          # ".sql" or ".json"; the file is schema/<engine>/NNN_<name><suffix>

    def adapt(self, spec: Spec) -> Spec:
        """The spec as this engine can serve it (a ConfigError naming the spec's key when it
        cannot); the template and docs are written from what this returns."""

    def doc_note(self, spec: Spec) -> str:
        """What a caller of this engine should know beyond the template ("" for none)."""

    def render(self, spec: Spec, existing: Existing) -> str:
        """The whole schema file: idempotent objects, operations, grants for ${app_user}."""
