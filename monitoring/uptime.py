"""Time-weighted uptime of a camera from its stored transitions.

What counts (the same test as the networking rate, so the page, the metrics and the rate agree):
- *Up* means delivering a usable picture: `online`, or `degraded` for a reason that leaves the stream working
  (clock off, a blurred or dark picture). That is what `uptime()` returns.
- `degraded` for a reason that loses the picture (wrong password, stream unreachable, no stream URI: `STREAM_LOST`)
  is down, as is `offline`: a camera that answers ONVIF but gives nobody a picture is of no use to the patrol
  staff or the police. `counted_state()` turns such a segment into `offline` before the sweep.
- `online` alone is *healthy*: the stricter ratio, for staff who want to see how long cameras ran without faults.
- `maintenance`, `unknown` and the gateway's own downtime count as neither (out of the denominator too): a camera
  is never blamed for the time it was switched off on purpose or nobody was watching it. A window with no known
  time at all has no uptime (None), not 0 %.

Everything is one sweep over the transitions (oldest first), so 1,000 cameras × 30 days stay cheap.
"""

from __future__ import annotations

import itertools
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from operator import itemgetter

from gateway.domain.camera import STREAM_LOST

HOUR = 3600.0
DAY = 86400.0
WINDOWS: dict[str, float] = {"24h": DAY, "7d": 7 * DAY, "30d": 30 * DAY}
UP = frozenset({"online", "degraded"})
HEALTHY = frozenset({"online"})
DOWN = frozenset({"offline"})
# Degradations that mean nobody gets usable video from the camera. `auth_failed`: the gateway holds wrong
# credentials, so neither it nor a platform pulling through it gets the stream.

# Index of each counted state in a bin's accumulator; other states are not counted.
_SLOT = {"online": 0, "degraded": 1, "offline": 2}

Transitions = Sequence[tuple[float, str]]
Intervals = Sequence[tuple[float, float]]


@dataclass(frozen=True, slots=True)
class Tally:
    """Seconds a camera spent in each counted state within one window or bucket."""

    online: float = 0.0
    degraded: float = 0.0
    offline: float = 0.0

    @property
    def known(self) -> float:
        return self.online + self.degraded + self.offline

    @property
    def available(self) -> float | None:
        """(online + degraded) ÷ known time: the uptime."""
        known = self.known
        return (self.online + self.degraded) / known if known > 0 else None

    @property
    def healthy(self) -> float | None:
        """online ÷ known time: up and without any fault."""
        known = self.known
        return self.online / known if known > 0 else None


def counted_state(state: str, reasons: Collection[str] = ()) -> str:
    """The state a stored segment counts as: working but without a usable picture counts as down (`offline`)."""
    if state in UP and STREAM_LOST.intersection(reasons):
        return "offline"
    return state


def merge_intervals(intervals: Intervals) -> list[tuple[float, float]]:
    """Sorted, non-overlapping, non-empty intervals covering the same time (e.g. the gateway's downtime)."""
    merged: list[tuple[float, float]] = []
    for start, end in sorted(intervals):
        if end <= start:
            continue
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


def tally_bins(transitions: Transitions, edges: Sequence[float], gateway_down: Intervals = ()) -> list[Tally]:
    """Seconds per counted state in each bin [edges[i], edges[i+1]); `edges` ascending, transitions (at, state).

    The state before the first transition is unknown; the last one lasts until the last edge.
    """
    if len(edges) < 2:
        return []
    if any(later < earlier for earlier, later in itertools.pairwise(edges)):
        raise ValueError("bin edges must be in ascending order")
    bins = [[0.0, 0.0, 0.0] for _ in range(len(edges) - 1)]
    first, last = edges[0], edges[-1]
    down = merge_intervals(gateway_down)
    ordered = sorted(transitions, key=itemgetter(0))  # stable, and linear on the already sorted history
    down_i = 0
    bin_i = 0
    for index, (seg_start, state) in enumerate(ordered):
        slot = _SLOT.get(state)
        if slot is None:
            continue
        seg_end = ordered[index + 1][0] if index + 1 < len(ordered) else last
        lo, hi = max(seg_start, first), min(seg_end, last)
        if hi <= lo:
            continue
        # Cut the gateway's downtime out of [lo, hi): walk the merged intervals, never backwards.
        while down_i < len(down) and down[down_i][1] <= lo:
            down_i += 1
        cursor = lo
        k = down_i
        while cursor < hi:
            if k < len(down) and down[k][0] < hi:
                piece_end = max(cursor, down[k][0])
                next_cursor = max(cursor, down[k][1])
                k += 1
            else:
                piece_end = next_cursor = hi
            # Spread [cursor, piece_end) over the bins it touches.
            while bin_i + 1 < len(edges) - 1 and edges[bin_i + 1] <= cursor:
                bin_i += 1
            start = cursor
            while start < piece_end:
                bin_end = edges[bin_i + 1]
                stop = piece_end if piece_end < bin_end else bin_end
                bins[bin_i][slot] += stop - start
                start = stop
                if start < piece_end:
                    bin_i += 1
            cursor = min(next_cursor, hi)
    return [Tally(b[0], b[1], b[2]) for b in bins]


def tally(transitions: Transitions, start: float, end: float, gateway_down: Intervals = ()) -> Tally:
    """Seconds per counted state in [start, end)."""
    bins = tally_bins(transitions, (start, end), gateway_down)
    return bins[0] if bins else Tally()


def up_down_seconds(
    transitions: Transitions, start: float, end: float, gateway_down: Intervals = ()
) -> tuple[float, float]:
    """Seconds up (online or degraded) and seconds down (offline) in [start, end)."""
    counted = tally(transitions, start, end, gateway_down)
    return counted.online + counted.degraded, counted.offline


def uptime(transitions: Transitions, now: float, window_s: float, gateway_down: Intervals = ()) -> float | None:
    """Available time ÷ known time over the last `window_s` seconds; None when nothing is known in the window."""
    return tally(transitions, now - window_s, now, gateway_down).available


def window_tallies(
    transitions: Transitions, now: float, gateway_down: Intervals = (), windows: Mapping[str, float] = WINDOWS
) -> dict[str, Tally]:
    """A tally for each window ending `now`, all from one sweep (the windows are nested)."""
    lengths = sorted(set(windows.values()), reverse=True)
    edges = [now - length for length in lengths] + [now]
    bins = tally_bins(transitions, edges, gateway_down)
    # The window of the i-th longest length covers bins i..end.
    totals: dict[float, Tally] = {}
    online = degraded = offline = 0.0
    for length, counted in zip(reversed(lengths), reversed(bins), strict=True):
        online, degraded, offline = online + counted.online, degraded + counted.degraded, offline + counted.offline
        totals[length] = Tally(online, degraded, offline)
    return {name: totals[length] for name, length in windows.items()}


def uptime_windows(
    transitions: Transitions, now: float, gateway_down: Intervals = (), windows: Mapping[str, float] = WINDOWS
) -> dict[str, float | None]:
    """Uptime (available ratio) over 24 h, 7 d and 30 d, as the API shows it."""
    return {name: t.available for name, t in window_tallies(transitions, now, gateway_down, windows).items()}


def series(
    transitions: Transitions, now: float, bucket_s: float, buckets: int, gateway_down: Intervals = ()
) -> list[Tally]:
    """Tallies of the last `buckets` buckets of `bucket_s` seconds each, oldest first, for a chart."""
    edges = [now - (buckets - i) * bucket_s for i in range(buckets + 1)]
    return tally_bins(transitions, edges, gateway_down)


def hourly_series(
    transitions: Transitions, now: float, hours: int = 24, gateway_down: Intervals = ()
) -> list[float | None]:
    """Uptime of each of the last `hours` hours, oldest first (None for an hour with nothing known)."""
    return [t.available for t in series(transitions, now, HOUR, hours, gateway_down)]
