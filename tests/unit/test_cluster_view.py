"""ClusterView: node snapshots -> rates, percentiles, liveness and chart series (no network)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from beds.admin.cluster import ClusterView
from beds.admin.counters import quantile

BOUNDS = [0.001, 0.01, 0.1, 1.0]   # seconds; buckets have one more entry: +Inf


def op(ok: int = 0, errors: int = 0, buckets: list[int] | None = None) -> dict[str, Any]:
    """One op's cumulative counters; by default every answer took 1..10 ms (bucket 1)."""
    total = ok + errors
    return {"outcomes": {"ok": ok, **({"VALIDATION_FAILED": errors} if errors else {})},
            "buckets": buckets if buckets is not None else [0, total, 0, 0, 0],
            "seconds": total * 0.005, "count": total}


def snap(node: str, at: float, ops: dict[str, Any] | None = None, *, pid: int = 1,
         state: str = "ready", role: str = "appServer", instances: int = 2,
         dead: int | None = 0) -> dict[str, Any]:
    ops = ops or {}
    return {"node": node, "role": role, "pid": pid, "host": "h", "state": state,
            "started_at": 100.0 + pid, "uptime": at - 100.0, "at": at,
            "brokers": {"rBroker": {"queue": "beds.rBroker", "service": "requests",
                                    "instances": instances, "desired": instances,
                                    "consuming": instances}},
            "ops": ops, "bucket_bounds": BOUNDS, "inflight": 0, "dead_letters": dead,
            "errors": sum(o["outcomes"].get("VALIDATION_FAILED", 0) for o in ops.values()),
            "restarts": {}}


def steady(view: ClusterView, node: str, start: float, seconds: int, per_second: int,
           errors_per_second: int = 0, first: int = 0) -> None:
    """A snapshot each second of `per_second` answers (and errors) per second."""
    for i in range(seconds + 1):
        at = start + i
        view.add(snap(node, at, {"film.fetch": op(first + per_second * i,
                                                  errors_per_second * i)}), at)


# -- quantile: Prometheus' histogram_quantile ----------------------------------------------------

def test_quantile_interpolates_inside_the_bucket() -> None:
    # 10 observations, all in (0.001, 0.01]: the median sits halfway through that bucket
    assert quantile(0.5, BOUNDS, [0, 10, 0, 0, 0]) == pytest.approx(0.0055)
    assert quantile(0.95, BOUNDS, [0, 10, 0, 0, 0]) == pytest.approx(0.001 + 0.009 * 0.95)


def test_quantile_first_bucket_starts_at_zero_and_spans_buckets() -> None:
    assert quantile(0.5, BOUNDS, [4, 0, 0, 0, 0]) == pytest.approx(0.0005)
    # 2 fast, 2 slow: the 75th percentile is halfway into the (0.01, 0.1] bucket
    assert quantile(0.75, BOUNDS, [2, 0, 2, 0, 0]) == pytest.approx(0.01 + 0.09 * 0.5)


def test_quantile_in_the_inf_bucket_is_the_highest_finite_bound() -> None:
    assert quantile(0.99, BOUNDS, [1, 0, 0, 0, 99]) == 1.0


def test_quantile_without_observations_is_none() -> None:
    assert quantile(0.5, BOUNDS, [0, 0, 0, 0, 0]) is None


# -- rates from counter deltas -----------------------------------------------------------------

def test_rates_are_counter_deltas_over_the_window() -> None:
    view = ClusterView(snapshot_seconds=1, history_seconds=60)
    steady(view, "n1", 1000.0, 10, per_second=10, errors_per_second=2, first=5000)
    n1 = view.summary(now=1010.5)["nodes"]["n1"]
    # the 5000 answers before the first snapshot are a baseline, not a burst
    assert n1["rps"] == pytest.approx(12.0)           # 10 ok + 2 errors a second
    assert n1["errors_per_s"] == pytest.approx(2.0)
    assert n1["requests"] == 5000 + 100 + 20 and n1["errors"] == 20
    assert n1["p50"] == pytest.approx(5.5)            # ms, from the window's bucket deltas


def test_op_rows_add_up_the_nodes() -> None:
    view = ClusterView(snapshot_seconds=1, history_seconds=60)
    steady(view, "n1", 1000.0, 10, per_second=10)
    steady(view, "n2", 1000.0, 10, per_second=30)
    row = view.summary(now=1010.2)["ops"]["film.fetch"]
    assert row["rps"] == pytest.approx(40.0)
    assert row["requests"] == 400 and row["errors"] == 0
    assert row["nodes"] == ["n1", "n2"]
    assert row["p95"] == pytest.approx((0.001 + 0.009 * 0.95) * 1000)


def test_percentiles_come_from_the_window_not_from_the_totals() -> None:
    view = ClusterView(snapshot_seconds=1, history_seconds=60)
    slow = [0, 0, 0, 0, 0]
    for i in range(31):
        at = 1000.0 + i
        if i <= 20:
            slow = [0, 0, 0, 50 * i, 0]                   # 50/s in (0.1, 1] s
            buckets = slow
        else:
            buckets = [10 * (i - 20), 0, 0, slow[3], 0]   # then 10/s under 1 ms
        view.add(snap("n1", at, {"film.fetch": op(sum(buckets), 0, buckets)}), at)
    n1 = view.summary(now=1030.0)["nodes"]["n1"]
    assert n1["p99"] == pytest.approx(0.99 * 1.0)       # ms: only the fast ones are recent
    assert n1["rps"] == pytest.approx(10.0)


def test_a_backlog_delivered_at_once_is_not_a_burst() -> None:
    view = ClusterView(snapshot_seconds=1, history_seconds=60)
    for i in range(11):   # the node's clock says one a second; they all arrive now
        view.add(snap("n1", 1000.0 + i, {"film.fetch": op(10 * i)}), 1020.0)
    assert view.summary(now=1020.0)["nodes"]["n1"]["rps"] == pytest.approx(10.0)


def test_late_or_repeated_snapshots_are_ignored() -> None:
    view = ClusterView(snapshot_seconds=1, history_seconds=60)
    steady(view, "n1", 1000.0, 10, per_second=10)
    view.add(snap("n1", 1004.0, {"film.fetch": op(9999)}), 1010.5)   # old, out of order
    view.add(snap("n1", 1010.0, {"film.fetch": op(100)}), 1010.6)    # the same again
    assert view.summary(now=1010.6)["nodes"]["n1"]["rps"] == pytest.approx(10.0)


# -- restarts: counters that drop --------------------------------------------------------------

def test_a_restart_counts_the_new_value_as_the_increase() -> None:
    view = ClusterView(snapshot_seconds=1, history_seconds=60, window_seconds=6)
    for i in range(6):                                   # 0, 10, ... 50
        view.add(snap("n1", 1000.0 + i, {"film.fetch": op(10 * i)}), 1000.0 + i)
    for i in range(6, 11):                               # new process: 5, 15, ... 45
        view.add(snap("n1", 1000.0 + i, {"film.fetch": op(10 * (i - 6) + 5)}, pid=2),
                 1000.0 + i)
    n1 = view.summary(now=1010.0)["nodes"]["n1"]
    assert n1["rps"] == pytest.approx((5 + 40) / 5)      # never negative
    assert n1["requests"] == 45                          # what the node says now


def test_a_restart_is_seen_even_when_the_new_count_is_higher() -> None:
    view = ClusterView(snapshot_seconds=1, history_seconds=60, window_seconds=2)
    view.add(snap("n1", 1000.0, {"film.fetch": op(50)}), 1000.0)
    view.add(snap("n1", 1001.0, {"film.fetch": op(60)}, pid=2), 1001.0)   # 60 since restart
    assert view.summary(now=1001.0)["nodes"]["n1"]["rps"] == pytest.approx(60.0)


def test_a_counter_that_drops_without_a_new_pid_is_a_reset_too() -> None:
    view = ClusterView(snapshot_seconds=1, history_seconds=60, window_seconds=2)
    view.add(snap("n1", 1000.0, {"film.fetch": op(50)}), 1000.0)
    view.add(snap("n1", 1001.0, {"film.fetch": op(7)}), 1001.0)
    assert view.summary(now=1001.0)["nodes"]["n1"]["rps"] == pytest.approx(7.0)


# -- liveness ----------------------------------------------------------------------------------

def test_a_silent_node_is_lost_after_three_intervals() -> None:
    view = ClusterView(snapshot_seconds=1, history_seconds=60)
    steady(view, "n1", 1000.0, 5, per_second=10)
    assert view.summary(now=1007.9)["nodes"]["n1"]["state"] == "ready"
    lost = view.summary(now=1008.1)
    assert lost["nodes"]["n1"]["state"] == "lost"
    assert lost["nodes"]["n1"]["rps"] == 0.0 and lost["nodes"]["n1"]["p95"] is None
    assert lost["totals"]["lost"] == 1 and lost["totals"]["rps"] == 0.0


def test_a_stopping_node_is_shown_stopped_not_lost() -> None:
    view = ClusterView(snapshot_seconds=1, history_seconds=60)
    view.add(snap("n1", 1000.0), 1000.0)
    view.add(snap("n1", 1001.0, state="stopping"), 1001.0)
    assert view.summary(now=1030.0)["nodes"]["n1"]["state"] == "stopped"


def test_a_node_silent_for_the_whole_history_is_forgotten() -> None:
    view = ClusterView(snapshot_seconds=1, history_seconds=60)
    view.add(snap("old", 1000.0), 1000.0)
    view.add(snap("new", 1061.0), 1061.0)
    assert list(view.summary(now=1061.0)["nodes"]) == ["new"]


# -- what the dashboard draws ------------------------------------------------------------------

def test_series_share_one_time_axis() -> None:
    view = ClusterView(snapshot_seconds=1, history_seconds=60)
    steady(view, "n1", 1000.0, 10, per_second=10, errors_per_second=1)
    steady(view, "n2", 1005.0, 5, per_second=20)
    series = view.summary(now=1010.0)["series"]
    t = series["t"]
    assert t == [float(s) for s in range(1001, 1012)]   # bin ends, one a second
    for node in ("n1", "n2"):
        for column in ("rps", "errors_per_s", "p50", "p95", "p99"):
            assert len(series["nodes"][node][column]) == len(t)
    assert series["nodes"]["n1"]["rps"][:-1] == [11.0] * (len(t) - 1)
    assert series["nodes"]["n2"]["rps"][:5] == [None] * 5              # not yet seen
    assert series["ops"]["film.fetch"]["rps"][6] == pytest.approx(31.0)  # 11 + 20
    assert series["ops"]["film.fetch"]["errors_per_s"][6] == pytest.approx(1.0)
    assert series["ops"]["film.fetch"]["p50"][6] == pytest.approx(5.5)


def test_instances_and_dead_letters_follow_the_snapshots() -> None:
    view = ClusterView(snapshot_seconds=1, history_seconds=60)
    for i in range(6):
        view.add(snap("n1", 1000.0 + i, instances=2 if i < 3 else 4, dead=i // 2), 1000.0 + i)
    summary = view.summary(now=1005.0)
    assert summary["nodes"]["n1"]["brokers"]["rBroker"]["instances"] == 4
    assert summary["dead_letters"] == 2
    series = summary["series"]
    assert series["nodes"]["n1"]["instances"]["rBroker"] == [2, 2, 2, 4, 4, 4]
    assert series["dead_letters"] == [0, 0, 1, 1, 2, 2]


def test_summary_is_json_and_has_the_documented_shape() -> None:
    view = ClusterView(snapshot_seconds=1, history_seconds=60)
    steady(view, "n1", 1000.0, 3, per_second=10)
    summary = json.loads(json.dumps(view.summary(now=1003.0)))
    assert set(summary) >= {"at", "nodes", "ops", "dead_letters", "totals", "series",
                            "latency_unit", "window_seconds"}
    assert set(summary["nodes"]["n1"]) >= {"role", "state", "last_seen", "brokers", "rps",
                                           "errors_per_s", "p50", "p95", "p99", "dead_letters",
                                           "requests", "errors"}
    assert ClusterView(1, 60).summary(now=0.0)["nodes"] == {}


def test_malformed_snapshots_are_refused_and_bad_entries_left_out() -> None:
    view = ClusterView(snapshot_seconds=1, history_seconds=60)
    bad: object
    for bad in ([], {"node": ""}, {"node": 3}):
        with pytest.raises(ValueError, match="snapshot"):
            view.add(bad, 1000.0)
    view.add({"node": "n1", "at": 1000.0, "ops": {"film.fetch": "x", "a.b": {"outcomes": {"ok": "1"}},
                                                  "c.d": op(3)}}, 1000.0)
    n1 = view.summary(now=1000.0)["nodes"]["n1"]
    assert n1["requests"] == 3 and n1["p50"] is None and n1["brokers"] == {}


def test_cached_chart_points_follow_new_snapshots() -> None:
    def feed(view: ClusterView, upto: int, start: int = 0) -> None:
        for i in range(start, upto):
            for node, rate in (("n1", 10), ("n2", 3)):
                at = 1000.0 + i * 0.7   # snapshots land inside bins, not on their edges
                view.add(snap(node, at, {"film.fetch": op(rate * i, i // 4),
                                         f"{node}.only": op(i)}), at)

    watched, fresh = ClusterView(1, 60), ClusterView(1, 60)
    for upto in (5, 9, 14, 20):   # the dashboard reads between snapshots, filling the caches
        feed(watched, upto, start=upto - {5: 5, 9: 4, 14: 5, 20: 6}[upto])
        watched.summary(now=1000.0 + upto * 0.7)
    feed(fresh, 20)
    now = 1000.0 + 19 * 0.7
    assert watched.summary(now=now) == fresh.summary(now=now)


def test_a_node_with_thousands_of_ops_keeps_a_bounded_view() -> None:
    from beds.admin.counters import MAX_OPS, OTHER

    view = ClusterView(snapshot_seconds=1, history_seconds=60)
    for i in range(3):
        at = 1000.0 + i
        many = {f"t{n}.op": op(ok=i) for n in range(MAX_OPS + 2000)}
        many["x" * 2048 + ".y"] = op(ok=i)
        view.add(snap("n1", at, many), at)
    summary = view.summary(now=1002.0)
    assert len(summary["ops"]) == MAX_OPS + 1 and OTHER in summary["ops"]
    assert summary["ops"][OTHER]["requests"] == 2001 * 2   # the surplus is counted, not dropped
    assert summary["nodes"]["n1"]["requests"] == (MAX_OPS + 2001) * 2
    assert len(summary["series"]["ops"]) <= MAX_OPS + 1
