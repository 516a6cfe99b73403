"""Fault windows come from the fault records, the same way for the runner and every report."""

from __future__ import annotations

from mlchaos.journal import fault_windows, judged_horizon, judged_windows


def fault(event: str, index: int, t: float, at: float | None = None) -> dict[str, object]:
    record: dict[str, object] = {"kind": "fault", "event": event, "index": index, "t": t}
    if at is not None:
        record["at"] = at
    return record


def test_a_window_runs_from_injection_to_removal_at_the_times_the_runner_saw() -> None:
    records = [
        {"kind": "phase", "t": 0.0},
        fault("injected", 0, t=10.2, at=10.0),
        fault("inject_failed", 1, t=10.5),  # never in place as far as the windows go
        fault("removed", 0, t=20.3, at=20.0),
        fault("verified_removed", 0, t=20.4),
    ]
    (w,) = fault_windows(records, end=99.0)
    assert (w.index, w.start, w.end) == (0, 10.0, 20.0)
    assert w.injected["event"] == "injected"


def test_a_fault_never_removed_is_open_until_the_end_and_old_journals_use_t() -> None:
    records = [fault("injected", 0, t=5.0), fault("injected", 1, t=6.0), fault("removed", 0, t=7)]
    windows = fault_windows(records, end=30.0)
    assert [(w.index, w.start, w.end) for w in windows] == [(0, 5.0, 7.0), (1, 6.0, 30.0)]


def test_judged_windows_cut_nothing_from_a_fault_removed_after_the_traffic_ended() -> None:
    """A fault removed at 20 while traffic ran to 30 judges sends up to 20 - timeout; one
    removed at rollback (31), after every request had ended, judges every send in it."""
    records = [
        fault("injected", 0, t=10.0),
        fault("removed", 0, t=20.0),
        fault("injected", 1, t=25.0),
        fault("removed", 1, t=31.0),
    ]
    windows = fault_windows(records, end=40.0)
    assert judged_windows(windows, 2.0, traffic_end=30.0) == [(10.0, 20.0), (25.0, 33.0)]
    assert judged_windows(windows, None, traffic_end=30.0) == [(10.0, 20.0), (25.0, 31.0)]


def test_the_judged_horizon_is_the_timeout_from_schema_3_and_none_before() -> None:
    assert judged_horizon({"schema": 3}, 5.0) == 5.0
    assert judged_horizon({"schema": 2}, 5.0) is None
    assert judged_horizon({}, 5.0) is None  # schema 1 wrote no schema field
