"""The checker of the chaos suite, in the style of Jepsen's total-queue.

A workload publishes requests with publisher confirms: idempotent `customer.pay` writes, each with
a unique request id (the AMQP message_id, the op's idempotency key) and a unique `paid_at`, so that
`COUNT(*) FROM payment WHERE payment_date = paid_at` is that request's number of effects;
NON-idempotent `chaos.count_pay` writes, whose procedure records every run that committed in
`chaos_exec` (tests/chaos/schema/mysql/010_chaos.sql), so the number of times BEDS ran one request
is counted whatever the caller saw; and reads whose answers are checked. A caller never resends a
count_pay. After the fault heals, every idempotent request without a final answer is sent again
with the SAME message_id (the caller's retry path) until it is answered or a bounded deadline
passes. Then the checker waits for the queues and the database to go quiet, reads the dead-letter
queue, counts effects and classifies each request:

  sent           the broker confirmed at least one copy
  ok / error     its final reply (an ok reply wins over an error of another attempt)
  dead-lettered  a copy of it is in `<exchange>.dead`, with the x-death reason
  indeterminate  confirmed, yet no reply and no dead-letter after the retries, while the caller's
                 channel stayed open (a caller whose channel closed knows why it heard nothing)
  duplicated     an idempotent write with more than one effect
  re-executed    a non-idempotent write (count_pay) that ran more than once
  lost           an ok reply without an effect, or a confirmed request with no reply, no
                 dead-letter and no effect after healing
  dropped        copies (one publish each) neither answered, nor dead-lettered, nor sent on a
                 caller channel that closed before the answer: a reply BEDS never sent
  mismatched     ok replies of one request that disagree (payment ids), or disagree with the row
                 in the database, or a read answered with the wrong row, or a read-your-writes
                 read (x-read-after) that returned a version older than the write it follows
  phantom        an effect although every copy was answered with an error that says nothing ran

Every scenario states the least number of requests it must send (`min_sent`) and asserts
lost == duplicated == mismatched == phantom == 0; re-executed, dropped and indeterminate must be
0 too unless the scenario declares why it expects them (`Workload(allow={column: reason})`), and
the reason goes into the table.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

NOTHING_RAN = frozenset({"BAD_REQUEST", "TOO_LARGE", "TEMPLATE_NOT_FOUND", "OP_NOT_FOUND",
                         "VALIDATION_FAILED", "WRONG_BROKER", "FORBIDDEN"})
"""Error codes a node answers before anything reaches the database."""


@dataclass(frozen=True)
class Row:
    scenario: str
    requests: int
    sent: int
    ok: int
    error: int
    dead: int
    indeterminate: int
    duplicated: int
    reexecuted: int
    lost: int
    dropped: int
    mismatched: int
    phantom: int
    seconds: float
    notes: str = ""


RESULTS: list[Row] = []
"""Every scenario's row, in run order; printed and written by tests/chaos/conftest.py."""


@dataclass(eq=False)
class Request:
    rid: str                          # the AMQP message_id: the idempotency key of a pay
    routing_key: str
    body: bytes
    paid_at: str | None = None        # a pay: its unique payment_date
    counted: bool = False             # a count_pay: effects are runs recorded in chaos_exec
    expect: dict[str, Any] | None = None   # a read: columns its first row must have
    exchange: str | None = None       # None: the workload's exchange; "": the default exchange
    deadline_ms: int | None = None    # a fixed x-deadline (epoch ms) instead of now + budget
    budget: float | None = None       # seconds the caller gives the node (default: its timeout)
    retry: bool = True                # the caller sends it again while it has no final answer
    reply_to: str | None = None       # a named reply queue instead of direct reply-to
    headers: dict[str, Any] | None = None   # more AMQP headers (x-read-after)
    min_version: int | None = None    # a read-your-writes read: its row's version is at least
    confirmed: bool = False
    attempts: int = 0
    sent_cids: list[str] = field(default_factory=list)
    published: dict[str, float] = field(default_factory=dict)   # cid -> epoch s of its publish
    reply_times: list[float] = field(default_factory=list)      # epoch s of each reply, in order
    closed_cids: list[str] = field(default_factory=list)  # the caller's channel closed first
    dead_cids: list[str] = field(default_factory=list)    # copies found in the dead-letter queue
    refused: list[str] = field(default_factory=list)      # why a publish was not confirmed
    replies: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    dead: list[str] = field(default_factory=list)          # x-death reasons of dead copies
    effects: int = 0
    row_id: int | None = None

    def final(self) -> dict[str, Any] | None:
        for _, reply in self.replies:
            if reply.get("ok"):
                return reply
        return self.replies[-1][1] if self.replies else None

    def answer(self) -> dict[str, Any]:
        """The final reply of a request the scenario knows was answered."""
        reply = self.final()
        assert reply is not None, f"request {self.rid} got no reply"
        return reply

    def lateness(self) -> list[tuple[str, float]]:
        """(code, seconds past the copy's deadline when its reply arrived) for every reply of a
        request with a `budget`; negative when it came in time."""
        if self.budget is None:
            return []
        return [(error_code(reply), at - self.published[cid] - self.budget)
                for (cid, reply), at in zip(self.replies, self.reply_times, strict=True)
                if cid in self.published]

    def code(self) -> str | None:
        """"ok", the final error code, or None without a reply."""
        reply = self.final()
        return None if reply is None else error_code(reply)

    def codes(self) -> list[str]:
        """The code of every reply received, in order."""
        return [error_code(reply) for _, reply in self.replies]


def error_code(reply: dict[str, Any]) -> str:
    """"ok", or the reply's error code."""
    return "ok" if reply.get("ok") else str((reply.get("error") or {}).get("code"))


def tally(scenario: str, requests: Sequence[Request], seconds: float,
          foreign_dead: int = 0) -> tuple[Row, list[str]]:
    """Classify every request of a scenario; the row and the problems found, one line each."""
    sent = ok = error = dead = indeterminate = duplicated = reexecuted = lost = dropped = 0
    mismatched = phantom = caller_gone = 0
    codes: Counter[str] = Counter()
    reasons: Counter[str] = Counter()
    problems: list[str] = []
    for r in requests:
        final = r.final()
        sent += r.confirmed
        if final is not None:
            if final.get("ok"):
                ok += 1
            else:
                error += 1
                codes[error_code(final)] += 1
        if r.dead:
            dead += 1
            reasons.update(set(r.dead))
        silent = r.confirmed and final is None and not r.dead
        unheard = dropped_copies(r)
        if silent and not unheard:
            caller_gone += 1
        elif silent:
            indeterminate += 1
            problems.append(f"{r.rid}: indeterminate ({len(r.sent_cids)} copies, "
                            f"{r.effects} effects)")
        if unheard:
            dropped += len(unheard)
            problems.append(f"{r.rid}: {len(unheard)} copies dropped (codes {r.codes()})")
        if r.effects > 1 and r.counted:
            reexecuted += 1
            problems.append(f"{r.rid}: ran {r.effects} times")
        elif r.effects > 1:
            duplicated += 1
            problems.append(f"{r.rid}: {r.effects} effects")
        if ((r.paid_at or r.counted) and final is not None and final.get("ok")
                and r.effects == 0) or (silent and r.effects == 0):
            lost += 1
            problems.append(f"{r.rid}: lost (codes {r.codes()}, dead {r.dead})")
        wrong = _mismatched(r)
        if wrong:
            mismatched += 1
            problems.append(wrong)
        if _phantom(r):
            phantom += 1
            problems.append(f"{r.rid}: effect although {r.codes()}")
    notes = []
    if codes:
        notes.append("errors: " + ", ".join(f"{c} {n}" for c, n in codes.most_common()))
    if reasons:
        notes.append("dead: " + ", ".join(f"{c} {n}" for c, n in reasons.most_common()))
    unsent = sum(1 for r in requests if not r.confirmed)
    if unsent:
        notes.append(f"{unsent} never confirmed")
    retried = sum(1 for r in requests if r.attempts > 1)
    if retried:
        notes.append(f"{retried} sent more than once")
    if caller_gone:
        notes.append(f"{caller_gone} unanswered on a caller channel that closed")
    counted = [r for r in requests if r.counted and r.confirmed]
    if counted:
        notes.append(f"{len(counted)} non-idempotent writes")
    if foreign_dead:
        notes.append(f"{foreign_dead} foreign dead-letters")
    row = Row(scenario, len(requests), sent, ok, error, dead, indeterminate, duplicated,
              reexecuted, lost, dropped, mismatched, phantom, round(seconds, 1),
              "; ".join(notes))
    return row, problems


def dropped_copies(r: Request) -> list[str]:
    """The copies of `r` nobody can account for: not answered, not dead-lettered, and sent on a
    caller channel that stayed open while the caller waited."""
    answered = {cid for cid, _ in r.replies}
    explained = answered | set(r.dead_cids) | set(r.closed_cids)
    # A dead-letter without a correlation id (published by hand) explains one copy of its own.
    spare = len(r.dead) - len(r.dead_cids)
    unheard = [cid for cid in r.sent_cids if cid not in explained]
    return unheard[max(0, spare):]


def _mismatched(r: Request) -> str | None:
    oks = [reply for _, reply in r.replies if reply.get("ok")]
    if not oks:
        return None
    if r.counted:
        return None   # each run makes its own payment: runs are counted, not matched
    if r.paid_at:
        ids = {(reply.get("out") or {}).get("payment_id") for reply in oks}
        if len(ids) > 1 or (r.row_id is not None and ids != {r.row_id}):
            return f"{r.rid}: replies {ids}, row {r.row_id}"
        return None
    if r.min_version is not None:
        for reply in oks:
            version = (reply.get("data") or [{}])[0].get("version")
            if version is None or version < r.min_version:
                return (f"{r.rid}: stale read-your-writes read: version {version}, the write "
                        f"it follows made {r.min_version} (served by "
                        f"{(reply.get('meta') or {}).get('served_by')})")
    if r.expect is not None:
        for reply in oks:
            data = reply.get("data") or [{}]
            if any(data[0].get(k) != v for k, v in r.expect.items()):
                return f"{r.rid}: expected {r.expect}, got {data[:1]}"
    return None


def _phantom(r: Request) -> bool:
    if not r.effects or not r.sent_cids:
        return False
    answered = {cid for cid, _ in r.replies}
    if not set(r.sent_cids) <= answered:
        return False   # a copy went unanswered: it may have run
    return all(_nothing_ran(reply) for _, reply in r.replies)


def _nothing_ran(reply: dict[str, Any]) -> bool:
    if reply.get("ok"):
        return False
    error = reply.get("error") or {}
    if error.get("code") in NOTHING_RAN:
        return True
    return error.get("code") == "DEADLINE_EXCEEDED" and (error.get("details") or {}).get(
        "ran") is False


COLUMNS = ("sent", "ok", "error", "dead-lettered", "indeterminate", "duplicated", "re-executed",
           "lost", "dropped")
"""The numeric columns of the table, spelled as a scenario names them in `allow`."""


def table(rows: Sequence[Row]) -> str:
    """The results as a Markdown table."""
    head = ("| scenario | " + " | ".join(COLUMNS) + " | s | notes |\n|---|"
            + "---:|" * (len(COLUMNS) + 1) + "---|")
    lines = [head]
    for r in rows:
        extra = []
        if r.mismatched:
            extra.append(f"MISMATCHED {r.mismatched}")
        if r.phantom:
            extra.append(f"PHANTOM EFFECTS {r.phantom}")
        notes = "; ".join([*extra, r.notes] if r.notes else extra)
        values = (r.sent, r.ok, r.error, r.dead, r.indeterminate, r.duplicated, r.reexecuted,
                  r.lost, r.dropped)
        lines.append(f"| {r.scenario} | " + " | ".join(str(v) for v in values)
                     + f" | {r.seconds} | {notes} |")
    return "\n".join(lines)
