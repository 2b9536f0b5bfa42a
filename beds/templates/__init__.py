"""Templates: what a DBA exposes. model (types), loader (TOML -> model), params (validators),
registry (the frozen set a node serves), names (the names another role owns), repeats, warehouse.

Layer: domain.
"""

from beds.templates.loader import load_template, load_templates
from beds.templates.model import Field, FieldType, Op, OpTarget, Template
from beds.templates.registry import TemplateRegistry

__all__ = [
    "Field", "FieldType", "Op", "OpTarget", "Template", "TemplateRegistry",
    "load_template", "load_templates",
]
