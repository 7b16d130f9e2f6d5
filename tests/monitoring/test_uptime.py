"""Uptime on hand-made timelines: time-weighted, gateway downtime and maintenance excluded, window edges, no data."""

from __future__ import annotations

import itertools
import random

import pytest

from monitoring.uptime import (
    Tally,
    hourly_series,
    merge_intervals,
    series,
    tally,
    tally_bins,
    up_down_seconds,
    uptime,
    uptime_windows,
    window_tallies,
)

H = 3600.0
D = 86400.0
NOW = 100 * D


def test_time_weighted_over_the_window() -> None:
    # Online for 18 h, offline for 6 h of the last day: 75 %, however many transitions.
    assert uptime([(NOW - 24 * H, "online"), (NOW - 6 * H, "offline")], NOW, 24 * H) == pytest.approx(0.75)
    many = [(NOW - 24 * H, "online"), *((NOW - 6 * H + i, "offline") for i in range(100))]
    assert uptime(many, NOW, 24 * H) == pytest.approx(0.75)


def test_degraded_is_available_but_not_healthy_and_maintenance_is_excluded() -> None:
    transitions = [
        (NOW - 24 * H, "degraded"),
        (NOW - 20 * H, "maintenance"),  # 10 h switched off on purpose: in neither part
        (NOW - 10 * H, "online"),
        (NOW - 2 * H, "offline"),
    ]
    # available: 4 h degraded + 8 h online = 12 h of 14 known; healthy: 8 of 14.
    counted = tally(transitions, NOW - 24 * H, NOW)
    assert counted == Tally(online=8 * H, degraded=4 * H, offline=2 * H)
    assert counted.available == pytest.approx(12 / 14)
    assert counted.healthy == pytest.approx(8 / 14)
    assert uptime(transitions, NOW, 24 * H) == pytest.approx(12 / 14)
    assert up_down_seconds(transitions, NOW - 24 * H, NOW) == (12 * H, 2 * H)


def test_gateway_downtime_is_unknown_not_camera_downtime() -> None:
    transitions = [(NOW - 24 * H, "online"), (NOW - 4 * H, "offline")]
    # The gateway itself was off for 2 of the 4 offline hours (given twice, overlapping: merged).
    gateway_down = [(NOW - 4 * H, NOW - 3 * H), (NOW - 3.5 * H, NOW - 2 * H)]
    assert uptime(transitions, NOW, 24 * H, gateway_down) == pytest.approx(20 / 22)


def test_gateway_downtime_across_transitions_and_window_edges() -> None:
    transitions = [(NOW - 30 * H, "online"), (NOW - 12 * H, "offline"), (NOW - 6 * H, "online")]
    # Off from 26 h ago (before the 24 h window) to 20 h ago, and from 8 h to 4 h ago (across a transition).
    gateway_down = [(NOW - 8 * H, NOW - 4 * H), (NOW - 26 * H, NOW - 20 * H)]
    counted = tally(transitions, NOW - 24 * H, NOW, gateway_down)
    # online 20 h→12 h ago (8 h), offline 12→8 h (4 h), online 4 h→now (4 h).
    assert counted == Tally(online=12 * H, offline=4 * H)
    # Downtime that covers the whole window leaves nothing known.
    assert uptime(transitions, NOW, 24 * H, [(NOW - 48 * H, NOW + H)]) is None


def test_state_before_the_window_carries_into_it_and_windows_differ() -> None:
    transitions = [(NOW - 10 * D, "offline"), (NOW - 12 * H, "online")]
    assert uptime(transitions, NOW, 24 * H) == pytest.approx(0.5)
    windows = uptime_windows(transitions, NOW)
    assert windows["24h"] == pytest.approx(0.5)
    assert windows["7d"] == pytest.approx(12 / (7 * 24))
    # Only 10 days are known in the 30-day window: the 20 days before the first transition are unknown.
    assert windows["30d"] == pytest.approx(12 / (10 * 24))


def test_window_edges_are_exact() -> None:
    # A transition exactly at the window's start counts from there; one exactly at `now` adds nothing.
    transitions = [(NOW - 24 * H, "offline"), (NOW - 23 * H, "online"), (NOW, "offline")]
    assert tally(transitions, NOW - 24 * H, NOW) == Tally(online=23 * H, offline=H)
    # Transitions after `now` (a clock that jumped) are ignored.
    assert uptime([(NOW - H, "online"), (NOW + H, "offline")], NOW, 24 * H) == 1.0
    # An outage that ended just before the 24 h window shows only in the longer windows.
    outage = [(NOW - 3 * D, "online"), (NOW - 2 * D, "offline"), (NOW - 24 * H, "online")]
    windows = uptime_windows(outage, NOW)
    assert windows["24h"] == 1.0
    assert windows["7d"] == pytest.approx(2 / 3)


def test_no_known_time_is_none_not_zero() -> None:
    assert uptime([], NOW, 24 * H) is None
    assert uptime([(NOW - 5 * H, "unknown")], NOW, 24 * H) is None
    assert uptime([(NOW - 5 * H, "maintenance")], NOW, 24 * H) is None
    assert uptime([(NOW + H, "online")], NOW, 24 * H) is None
    assert uptime_windows([], NOW) == {"24h": None, "7d": None, "30d": None}
    assert Tally().healthy is None


def test_window_tallies_match_separate_computations() -> None:
    timeline = [(NOW - 40 * D + i * 7 * H, ("online", "degraded", "offline", "maintenance")[i % 4]) for i in range(140)]
    gateway_down = [(NOW - 5 * D, NOW - 4.5 * D), (NOW - 20 * H, NOW - 19 * H)]
    tallies = window_tallies(timeline, NOW, gateway_down)
    for name, length in (("24h", D), ("7d", 7 * D), ("30d", 30 * D)):
        separate = tally(timeline, NOW - length, NOW, gateway_down)
        assert tallies[name].online == pytest.approx(separate.online)
        assert tallies[name].degraded == pytest.approx(separate.degraded)
        assert tallies[name].offline == pytest.approx(separate.offline)


def test_hourly_series_for_the_chart() -> None:
    chart = hourly_series(
        [(NOW - 24 * H, "online"), (NOW - 1.5 * H, "offline")], NOW, gateway_down=[(NOW - 5 * H, NOW - 4 * H)]
    )
    assert len(chart) == 24
    assert chart[:19] == [1.0] * 19
    assert chart[19] is None  # the gateway was off that whole hour
    assert chart[20:22] == [1.0, 1.0]
    assert chart[22] == pytest.approx(0.5)
    assert chart[23] == 0.0


def test_daily_buckets_sum_to_the_window() -> None:
    timeline = [(NOW - 30 * D + i * 5 * H, "online" if i % 3 else "offline") for i in range(144)]
    days = series(timeline, NOW, D, 30)
    whole = tally(timeline, NOW - 30 * D, NOW)
    assert sum(d.online for d in days) == pytest.approx(whole.online)
    assert sum(d.offline for d in days) == pytest.approx(whole.offline)


def test_a_busy_month_alternating_every_hour_is_half_up() -> None:
    # One change an hour for 30 days: far more churn than a real camera.
    timeline = [(NOW - 30 * D + i * H, "online" if i % 2 else "offline") for i in range(30 * 24)]
    windows = uptime_windows(timeline, NOW)
    assert windows["30d"] == pytest.approx(0.5)
    assert windows["24h"] == pytest.approx(0.5)


def test_unsorted_history_and_merging() -> None:
    assert uptime([(NOW - 6 * H, "offline"), (NOW - 24 * H, "online")], NOW, 24 * H) == pytest.approx(0.75)
    assert merge_intervals([(5, 6), (1, 3), (2, 4), (7, 7)]) == [(1, 4), (5, 6)]
    assert tally_bins([(0.0, "online")], [10.0]) == []
    with pytest.raises(ValueError, match="ascending"):
        tally_bins([(0.0, "online")], [10.0, 5.0])


def _naive(
    transitions: list[tuple[float, str]], start: float, end: float, down: list[tuple[float, float]]
) -> dict[str, float]:
    """Obviously right and slow: every segment against every downtime interval, overlaps assumed disjoint."""
    out = {"online": 0.0, "degraded": 0.0, "offline": 0.0}
    ordered = sorted(transitions, key=lambda t: t[0])
    for i, (at, state) in enumerate(ordered):
        seg_end = ordered[i + 1][0] if i + 1 < len(ordered) else end
        lo, hi = max(at, start), min(seg_end, end)
        if state not in out or hi <= lo:
            continue
        out[state] += (hi - lo) - sum(max(0.0, min(hi, b) - max(lo, a)) for a, b in down)
    return out


def test_random_timelines_agree_with_a_naive_count() -> None:
    rng = random.Random(2024)
    states = ("online", "degraded", "offline", "maintenance", "unknown")
    for _ in range(200):
        transitions = [(rng.uniform(0, 100), rng.choice(states)) for _ in range(rng.randint(0, 12))]
        cuts = sorted(rng.uniform(-10, 110) for _ in range(2 * rng.randint(0, 4)))
        down = [(cuts[i], cuts[i + 1]) for i in range(0, len(cuts), 2)]  # disjoint by construction
        edges = sorted(rng.uniform(-10, 110) for _ in range(rng.randint(2, 6)))
        bins = tally_bins(transitions, edges, down)
        for (start, end), counted in zip(itertools.pairwise(edges), bins, strict=True):
            expected = _naive(transitions, start, end, down)
            assert counted.online == pytest.approx(expected["online"], abs=1e-9)
            assert counted.degraded == pytest.approx(expected["degraded"], abs=1e-9)
            assert counted.offline == pytest.approx(expected["offline"], abs=1e-9)
