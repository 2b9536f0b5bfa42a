"""The set of templates a node serves: refuses duplicates, frozen once the node starts.

Layer: domain. Pure.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from beds.errors import TemplateError
from beds.templates.model import Template


class TemplateRegistry:
    def __init__(self, templates: Iterable[Template] = ()) -> None:
        self._templates: dict[str, Template] = {}
        self._frozen = False
        for template in templates:
            self.add(template)

    def add(self, template: Template) -> None:
        if self._frozen:
            raise TemplateError(f"{template.path}: the registry is frozen; reload instead")
        if template.name in self._templates:
            first = self._templates[template.name].path
            raise TemplateError(f"{template.path}: name: {template.name!r} already defined in {first}")
        self._templates[template.name] = template

    def freeze(self) -> None:
        self._frozen = True

    def get(self, name: str) -> Template | None:
        return self._templates.get(name)

    def names(self) -> list[str]:
        return sorted(self._templates)

    def __iter__(self) -> Iterator[Template]:
        return iter(self._templates.values())

    def __len__(self) -> int:
        return len(self._templates)
