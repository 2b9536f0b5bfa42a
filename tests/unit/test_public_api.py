"""The public API is exactly what `beds.__all__` says, and every name in it is documented
(modelled on httpx's test_exported_members)."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import re

import beds
from beds import errors

EXPORTED = {
    "BadRequest", "BedsError", "CallTimeout", "CallerError", "Client", "Conflict", "DbError",
    "DbUnavailable", "DeadlineExceeded", "Disconnected", "Forbidden", "Internal", "NoRoute",
    "OpNotFound", "Reply", "ReplyTooLarge", "RequestError", "ServerError", "SyncClient",
    "TemplateNotFound", "TooLarge", "ValidationFailed", "WrongBroker",
}


def test_exported_members() -> None:
    assert set(beds.__all__) == EXPORTED
    # httpx's rule: every public name at the top level is in __all__ (submodules aside)
    public = {name for name, member in vars(beds).items()
              if not name.startswith("_") and not inspect.ismodule(member)}
    assert public == EXPORTED
    assert len(beds.__all__) == len(EXPORTED)   # no name listed twice
    for name in beds.__all__:
        member = getattr(beds, name)
        assert member.__module__.startswith("beds."), name
        assert inspect.getdoc(member), f"beds.{name} has no docstring"


def test_every_error_a_call_can_raise_is_exported() -> None:
    wire = {cls.__name__ for cls in errors.ERROR_CODES.values()}
    client_side = {"CallTimeout", "NoRoute", "Disconnected"}
    assert wire | client_side <= set(beds.__all__)


def test_error_groups_answer_whose_fault_it_is() -> None:
    assert issubclass(beds.CallTimeout, TimeoutError) and issubclass(beds.CallTimeout, beds.BedsError)
    assert issubclass(beds.Disconnected, ConnectionError)
    assert issubclass(beds.Disconnected, beds.BedsError)
    callers = {cls.__name__ for cls in errors.ERROR_CODES.values()
               if issubclass(cls, beds.CallerError)}
    assert callers == {"BadRequest", "TooLarge", "TemplateNotFound", "OpNotFound",
                       "ValidationFailed", "WrongBroker", "Forbidden"}
    assert not any(cls.retryable for cls in errors.ERROR_CODES.values()
                   if issubclass(cls, beds.CallerError))
    servers = {cls.__name__ for cls in errors.ERROR_CODES.values()
               if issubclass(cls, beds.ServerError)}
    assert servers == {"DbUnavailable", "DbError", "DeadlineExceeded", "Internal"}
    assert not issubclass(beds.ServerError, beds.CallerError)


def drawn_tree(doc: str) -> dict[str, str | None]:
    """The tree in a module docstring (`├──` / `└──` lines under a root line) as child ->
    parent, read from the indentation alone."""
    parents: dict[str, str | None] = {}
    stack: list[tuple[int, str]] = []
    for line in doc.splitlines():
        match = re.match(r"^(\s*)(?:[│ ]   )*(?:├── |└── )?([A-Z]\w*)(?:\s|$)", line)
        if match is None or not line.startswith("    "):
            continue
        mark = max(line.find("├── "), line.find("└── "))
        depth = -1 if mark < 0 else mark
        if depth < 0 and stack:
            continue            # prose below the tree
        name = match.group(2)
        while stack and stack[-1][0] >= depth:
            stack.pop()
        parents[name] = stack[-1][1] if stack else None
        stack.append((depth, name))
    return parents


def real_tree() -> dict[str, str | None]:
    """Every subclass of BedsError in any module of beds, as child -> parent in the tree."""
    for module in pkgutil.walk_packages(beds.__path__, "beds."):
        if not module.name.endswith(".__main__"):     # running it is `python -m`
            importlib.import_module(module.name)
    parents: dict[str, str | None] = {"BedsError": None}
    todo = [errors.BedsError]
    while todo:
        cls = todo.pop()
        for sub in cls.__subclasses__():
            if sub.__module__.startswith("beds."):   # not a test's own subclass
                parents[sub.__name__] = cls.__name__
                todo.append(sub)
    return parents


def test_the_drawn_error_tree_is_the_class_hierarchy() -> None:
    assert drawn_tree(errors.__doc__ or "") == real_tree()


def test_the_tree_reader_sees_a_misplaced_class() -> None:
    doc = """
    BedsError      base
    ├── A          first
    │   └── B      under A
    └── C          last
"""
    assert drawn_tree(doc) == {"BedsError": None, "A": "BedsError", "B": "A", "C": "BedsError"}
    assert drawn_tree(doc.replace("│   └── B", "└── B")) != drawn_tree(doc)


def test_public_methods_are_documented() -> None:
    for cls in (beds.Client, beds.SyncClient):
        for name, member in inspect.getmembers(cls, inspect.isfunction):
            if not name.startswith("_"):
                assert inspect.getdoc(member), f"{cls.__name__}.{name} has no docstring"


def test_the_test_kit_exports_documented_names() -> None:
    import beds.testing

    assert set(beds.testing.__all__) == {"BedsNode", "FakeBeds", "FakeCall", "FakeSyncBeds",
                                         "running_node"}
    for name in beds.testing.__all__:
        assert inspect.getdoc(getattr(beds.testing, name)), f"beds.testing.{name}"
