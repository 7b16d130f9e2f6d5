"""Uptime maths on hand-made timelines: time-weighted, maintenance and gateway downtime excluded."""

from __future__ import annotations

import pytest

from monitoring.uptime import hourly_series, uptime, uptime_windows

H = 3600.0
NOW = 100 * 86400.0


def test_time_weighted_over_the_window() -> None:
    # Online for 18 h, offline for 6 h of the last day.
    transitions = [(NOW - 24 * H, "online"), (NOW - 6 * H, "offline")]
    assert uptime(transitions, NOW, 24 * H) == pytest.approx(0.75)


def test_degraded_counts_as_up_and_maintenance_is_excluded() -> None:
    transitions = [
        (NOW - 24 * H, "degraded"),
        (NOW - 20 * H, "maintenance"),  # 10 h switched off on purpose: not counted
        (NOW - 10 * H, "online"),
        (NOW - 2 * H, "offline"),
    ]
    # up: 4 h degraded + 8 h online = 12 h; down: 2 h; maintenance ignored.
    assert uptime(transitions, NOW, 24 * H) == pytest.approx(12 / 14)


def test_gateway_downtime_is_unknown_not_camera_downtime() -> None:
    transitions = [(NOW - 24 * H, "online"), (NOW - 4 * H, "offline")]
    gateway_down = [(NOW - 4 * H, NOW - 2 * H)]  # the gateway itself was off for 2 of the 4 offline hours
    assert uptime(transitions, NOW, 24 * H, gateway_down) == pytest.approx(20 / 22)


def test_state_before_the_window_carries_into_it() -> None:
    transitions = [(NOW - 10 * 86400.0, "offline"), (NOW - 12 * H, "online")]
    assert uptime(transitions, NOW, 24 * H) == pytest.approx(0.5)
    windows = uptime_windows(transitions, NOW)
    assert windows["7d"] == pytest.approx(12 / (7 * 24))
    assert windows["30d"] == pytest.approx(12 / (10 * 24))


def test_no_known_time_is_none_not_zero() -> None:
    assert uptime([], NOW, 24 * H) is None
    assert uptime([(NOW - 5 * H, "unknown")], NOW, 24 * H) is None
    assert uptime([(NOW - 5 * H, "maintenance")], NOW, 24 * H) is None


def test_hourly_series_for_the_chart() -> None:
    series = hourly_series([(NOW - 24 * H, "online"), (NOW - 1 * H, "offline")], NOW)
    assert len(series) == 24
    assert series[:23] == [1.0] * 23
    assert series[23] == 0.0


def test_a_busy_month_alternating_every_hour_is_half_up() -> None:
    # One change an hour for 30 days: far more churn than a real camera.
    timeline = [(NOW - 30 * 86400.0 + i * H, "online" if i % 2 else "offline") for i in range(30 * 24)]
    windows = uptime_windows(timeline, NOW)
    assert windows["30d"] == pytest.approx(0.5)
    assert windows["24h"] == pytest.approx(0.5)
