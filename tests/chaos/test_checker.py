"""The checker itself (tests/chaos/checker.py, Workload.assert_clean): it must fail a scenario
for the right reasons - a non-idempotent write run twice, a copy nobody answered, too few
requests, an undeclared indeterminate outcome - and not for a caller that left."""

from __future__ import annotations

from typing import Any

import pytest

from tests.chaos.checker import Request, tally
from tests.chaos.workload import Workload

pytestmark = [pytest.mark.chaos, pytest.mark.chaos_fast]
OK = {"ok": True, "out": {"payment_id": 7}}


def sent(rid: str, *cids: str, **fields: Any) -> Request:
    request = Request(rid, "chaos.count_pay", b"{}", confirmed=True, **fields)
    request.sent_cids.extend(cids)
    return request


def workload(min_sent: int, allow: dict[str, str] | None = None) -> Workload:
    return Workload("t", None, None, "", None, None, min_sent=min_sent,  # type: ignore[arg-type]
                    allow=allow)


def test_a_second_run_of_a_non_idempotent_write_is_re_executed_not_duplicated() -> None:
    twice = sent("a", "c1", counted=True, effects=2)
    twice.replies.append(("c1", OK))
    pay = sent("b", "c2", paid_at="2400-01-01T00:00:00", effects=2, row_id=7)
    pay.replies.append(("c2", OK))
    row, problems = tally("t", [twice, pay], 1.0)
    assert (row.reexecuted, row.duplicated) == (1, 1)
    assert "a: ran 2 times" in problems and "b: 2 effects" in problems


def test_an_unanswered_copy_is_dropped_unless_its_caller_left_or_it_was_dead_lettered() -> None:
    dropped = sent("a", "c1", counted=True, effects=1)
    left = sent("b", "c2", counted=True, effects=1)
    left.closed_cids.append("c2")
    dead = sent("c", "c3", counted=True)
    dead.dead.append("rejected")
    dead.dead_cids.append("c3")
    answered_once = sent("d", "c4", "c5", counted=True, effects=1)
    answered_once.replies.append(("c5", OK))
    row, _ = tally("t", [dropped, left, dead, answered_once], 1.0)
    assert (row.dropped, row.indeterminate, row.lost) == (2, 1, 0)
    assert "1 unanswered on a caller channel that closed" in row.notes


def test_a_silent_request_without_an_effect_is_lost() -> None:
    row, _ = tally("t", [sent("a", "c1", counted=True)], 1.0)
    assert (row.lost, row.indeterminate) == (1, 1)


def test_assert_clean_fails_below_the_minimum_and_on_undeclared_columns() -> None:
    request = sent("a", "c1", counted=True, effects=1)
    strict = workload(min_sent=1)
    row = strict.tally()   # no requests: below the minimum
    with pytest.raises(AssertionError, match="only 0 requests confirmed"):
        strict.assert_clean(row)
    strict.requests.append(request)
    with pytest.raises(AssertionError, match="dropped 1, and the scenario does not"):
        strict.assert_clean(strict.tally())
    lenient = workload(min_sent=1, allow={"indeterminate": "why", "dropped": "why"})
    lenient.requests.append(request)
    row = lenient.tally()
    lenient.assert_clean(row)
    assert "dropped and indeterminate expected: why" in row.notes or \
        "indeterminate and dropped expected: why" in row.notes
