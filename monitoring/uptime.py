"""Time-weighted uptime of a camera from its stored transitions.

`online` and `degraded` count as up (the camera works, perhaps with a fault worth fixing), `offline` as down;
`maintenance`, `unknown` and the gateway's own downtime count as neither, so a camera is never blamed for the
time nobody was watching it or it was switched off on purpose.
"""

from __future__ import annotations

from collections.abc import Sequence

WINDOWS: dict[str, float] = {"24h": 86400.0, "7d": 7 * 86400.0, "30d": 30 * 86400.0}
UP = frozenset({"online", "degraded"})
DOWN = frozenset({"offline"})


def _merge(intervals: Sequence[tuple[float, float]]) -> list[tuple[float, float]]:
    merged: list[tuple[float, float]] = []
    for start, end in sorted(intervals):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        elif end > start:
            merged.append((start, end))
    return merged


def _overlap(start: float, end: float, intervals: list[tuple[float, float]]) -> float:
    total = 0.0
    for lo, hi in intervals:
        if hi <= start:
            continue
        if lo >= end:
            break
        total += min(hi, end) - max(lo, start)
    return total


def up_down_seconds(
    transitions: Sequence[tuple[float, str]],
    start: float,
    end: float,
    gateway_down: Sequence[tuple[float, float]] = (),
) -> tuple[float, float]:
    """Seconds up and seconds down in [start, end]; transitions are (at, new_state), oldest first."""
    unknown = _merge(gateway_down)
    up = down = 0.0
    for index, (at, state) in enumerate(transitions):
        seg_end = transitions[index + 1][0] if index + 1 < len(transitions) else end
        lo, hi = max(at, start), min(seg_end, end)
        if hi <= lo or (state not in UP and state not in DOWN):
            continue
        seconds = (hi - lo) - _overlap(lo, hi, unknown)
        if state in UP:
            up += seconds
        else:
            down += seconds
    return up, down


def uptime(
    transitions: Sequence[tuple[float, str]],
    now: float,
    window_s: float,
    gateway_down: Sequence[tuple[float, float]] = (),
) -> float | None:
    """Up time ÷ (up + down time) over the last `window_s` seconds; None when nothing known in the window."""
    up, down = up_down_seconds(transitions, now - window_s, now, gateway_down)
    return up / (up + down) if up + down > 0 else None


def uptime_windows(
    transitions: Sequence[tuple[float, str]], now: float, gateway_down: Sequence[tuple[float, float]] = ()
) -> dict[str, float | None]:
    """Uptime over 24 h, 7 d and 30 d, as the API shows it."""
    return {name: uptime(transitions, now, seconds, gateway_down) for name, seconds in WINDOWS.items()}


def hourly_series(
    transitions: Sequence[tuple[float, str]],
    now: float,
    hours: int = 24,
    gateway_down: Sequence[tuple[float, float]] = (),
) -> list[float | None]:
    """Uptime of each of the last `hours` hours, oldest first, for a chart."""
    out: list[float | None] = []
    for hour in range(hours, 0, -1):
        end = now - (hour - 1) * 3600.0
        up, down = up_down_seconds(transitions, end - 3600.0, end, gateway_down)
        out.append(up / (up + down) if up + down > 0 else None)
    return out
