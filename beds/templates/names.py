"""Template names are cluster-wide: a name another role owns is refused, not silently captured.

Layer: domain. Pure apart from listing folders. A request's routing key is `<template>.<op>` on
one exchange for the whole cluster, so a name means one template everywhere. The built-in roles
own theirs (tercero: `users`, `sessions`; admin: `logs`; segundo: `payments`, ...): a user
template of the same name on another role would have its requests answered by the owner's
broker (WRONG_BROKER, or the wrong template) or run twice. Node.build, reload and `beds templates
check` refuse it with the fix in the message.

Owners of a name, for a role R:
- another role whose templates folder (`[roles.X] templates`) holds `<name>.toml` (the loader
  requires the file name to be the template name, so the folder listing is enough);
- a broker R does not run whose `templates = [...]` names it (assign_broker would route there).
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from beds.config import Settings
from beds.errors import TemplateError
from beds.templates.model import Template


def owners(settings: Settings, role: str) -> dict[str, str]:
    """Template name -> who owns it outside `role`, worded for a message."""
    own_folder = settings.templates_dir(role)
    found: dict[str, str] = {}
    for other in settings.roles:
        folder = settings.templates_dir(other)
        if other == role or folder == own_folder or not folder.is_dir():
            continue
        for path in sorted(folder.glob("*.toml")):
            found.setdefault(path.stem, f"a template of the {other} role ({path})")
    runs = set(settings.roles[role].brokers)
    for broker in settings.brokers.values():
        if broker.name in runs:
            continue
        users = [r.name for r in settings.roles.values() if broker.name in r.brokers]
        for name in broker.templates:
            if name != "*":
                found.setdefault(name, f"claimed by broker {broker.name} (role "
                                       f"{', '.join(users) or 'none'}) in the config")
    return found


def clashes(settings: Settings, role: str, templates: Iterable[Template]) -> list[tuple[Path, str]]:
    """(file, message) per template of `role` whose name another role owns."""
    taken = owners(settings, role)
    return [(t.path, f"name: {t.name!r} is {taken[t.name]}; template names are routing keys "
                     f"for the whole cluster, so requests for {t.name}.* would not reach this "
                     f"{role} node: rename this template (file and name), e.g. to 'app_{t.name}'")
            for t in templates if t.name in taken]


def refuse_clashes(settings: Settings, role: str, templates: Iterable[Template]) -> None:
    for path, message in clashes(settings, role, templates):
        raise TemplateError(f"{path}: {message}")
