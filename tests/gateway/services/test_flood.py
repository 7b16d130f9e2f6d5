"""Flood folding as a pure state machine, on an injected clock."""

from __future__ import annotations

from gateway.services.flood import Decision, FloodGuard, FloodSettings, FloodSummary

ADMIT, FOLD = Decision.ADMIT, Decision.FOLD


def guard() -> FloodGuard:
    return FloodGuard({"b1": FloodSettings(5, 10.0), "b2": FloodSettings(5, 10.0)}, max_flood_s=60.0)


def test_the_first_presses_go_out_and_the_rest_fold_into_one_summary_after_quiet() -> None:
    flood = guard()
    decisions = [flood.press("b1", float(t)) for t in range(12)]
    assert decisions == [ADMIT] * 5 + [FOLD] * 7
    assert flood.due(15.0) == []  # only 4 s of quiet
    assert flood.due(21.0) == [FloodSummary("b1", 7, 5.0, 11.0)]
    assert flood.due(30.0) == []  # once


def test_other_buttons_are_not_held_back() -> None:
    flood = guard()
    for t in range(20):
        flood.press("b1", t * 0.1)
    assert flood.press("b2", 2.0) == ADMIT


def test_presses_further_apart_than_within_never_fold() -> None:
    flood = guard()
    assert [flood.press("b1", t * 11.0) for t in range(20)] == [ADMIT] * 20
    assert flood.due(1000.0) == []


def test_a_press_after_quiet_starts_a_new_burst_and_the_old_summary_still_comes() -> None:
    flood = guard()
    for t in range(8):
        flood.press("b1", float(t))
    assert flood.press("b1", 30.0) == ADMIT  # before anyone asked for the summary
    assert flood.due(30.5) == [FloodSummary("b1", 3, 5.0, 7.0)]


def test_an_endless_flood_is_reported_every_minute() -> None:
    flood = guard()
    summaries = []
    for tick in range(0, 1300):  # a press every 0.1 s for 130 s
        now = tick * 0.1
        flood.press("b1", now)
        summaries += flood.due(now)
    # Folding starts with the 6th press (0.5 s); 60 s later the summary holds the presses 0.5 s..60.5 s.
    assert [s.count for s in summaries] == [601, 601]
    assert summaries[0].first_at == 0.5
    rest = flood.due(200.0)
    assert sum(s.count for s in summaries + rest) == 1300 - 5


def test_a_button_without_settings_is_always_admitted() -> None:
    flood = FloodGuard({})
    assert {flood.press("x", t * 0.01) for t in range(100)} == {ADMIT}
