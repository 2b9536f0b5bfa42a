"""The public API is exactly what `beds.__all__` says, and every name in it is documented
(modelled on httpx's test_exported_members)."""

from __future__ import annotations

import inspect

import beds
from beds import errors

EXPORTED = {
    "BadRequest", "BedsError", "CallTimeout", "CallerError", "Client", "Conflict", "DbError",
    "DbUnavailable", "DeadlineExceeded", "Disconnected", "Forbidden", "Internal", "NoRoute",
    "OpNotFound", "Reply", "ReplyTooLarge", "RequestError", "SyncClient", "TemplateNotFound",
    "TooLarge", "ValidationFailed", "WrongBroker",
}


def test_exported_members() -> None:
    assert set(beds.__all__) == EXPORTED
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
