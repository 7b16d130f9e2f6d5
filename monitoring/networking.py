"""The networking rate (联网率): the share of in-service cameras that the police platform can really see.

A camera is *networked* when it is online (or degraded for a reason that leaves its stream working), its stream
answers, and a healthy platform link covers it: a camera the platform cannot reach is not networked, however well
it works locally. Cameras in maintenance are out of service and counted in neither part. A camera the gateway
cannot vouch for (`unknown`, e.g. just after a restart and before its first round) is in service and not
networked: the platform cannot rely on it either.

Two figures: the rate now, from the cameras' current readings, and the time-weighted rate over a window (24 h by
default) from the stored transitions: networked camera-seconds ÷ in-service camera-seconds, with the gateway's
own downtime left out of both (nobody knows what the cameras did then). Weighting by camera-seconds keeps a
moment when only one camera was in service from counting as much as a whole school.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass

from monitoring.uptime import DAY, STREAM_LOST, Intervals, merge_intervals

# STREAM_LOST (the degradations that lose the picture) lives with uptime, which counts them the same way.
__all__ = [
    "STREAM_LOST",
    "CameraReading",
    "NetworkingRate",
    "average_networking_rate",
    "is_networked",
    "networking_rate",
]
WORKING_STATES = frozenset({"online", "degraded"})
OUT_OF_SERVICE = "maintenance"

# One camera's stored transitions, oldest first: (at, new state, reasons).
History = Sequence[tuple[float, str, Collection[str]]]


@dataclass(frozen=True, slots=True)
class CameraReading:
    """One camera as the networking rate sees it now. `linked`: a platform link covers this camera."""

    state: str
    stream_ok: bool
    reasons: frozenset[str] = frozenset()
    linked: bool = True


@dataclass(frozen=True, slots=True)
class NetworkingRate:
    """networked ÷ in_service, with both counts (cameras now, or camera-seconds over a window)."""

    networked: float
    in_service: float

    @property
    def rate(self) -> float | None:
        """None when no camera is in service: there is nothing to rate, which is not 0 %."""
        return self.networked / self.in_service if self.in_service > 0 else None


def is_networked(camera: CameraReading) -> bool:
    return camera.state in WORKING_STATES and camera.stream_ok and camera.linked and not (camera.reasons & STREAM_LOST)


def networking_rate(cameras: Iterable[CameraReading], platform_link_ok: bool) -> NetworkingRate:
    """The rate now; `platform_link_ok`: the link to the police platform is healthy."""
    networked = in_service = 0
    for camera in cameras:
        if camera.state == OUT_OF_SERVICE:
            continue
        in_service += 1
        if platform_link_ok and is_networked(camera):
            networked += 1
    return NetworkingRate(networked, in_service)


class _Cover:
    """Merged intervals with prefix sums: the covered length of any span in O(log n)."""

    __slots__ = ("_before", "_ends", "_starts")

    def __init__(self, intervals: Intervals) -> None:
        merged = merge_intervals(intervals)
        self._starts = [start for start, _ in merged]
        self._ends = [end for _, end in merged]
        self._before = [0.0]  # covered length before the i-th interval
        for start, end in merged:
            self._before.append(self._before[-1] + end - start)

    def _upto(self, x: float) -> float:
        i = bisect_right(self._starts, x) - 1
        if i < 0:
            return 0.0
        return self._before[i] + min(x, self._ends[i]) - self._starts[i]

    def overlap(self, lo: float, hi: float) -> float:
        return self._upto(hi) - self._upto(lo)


def average_networking_rate(
    histories: Iterable[History],
    now: float,
    window_s: float = DAY,
    *,
    link_down: Intervals = (),
    gateway_down: Intervals = (),
) -> NetworkingRate:
    """The time-weighted rate over the last `window_s` seconds, in camera-seconds.

    `histories`: per camera, its transitions `(at, new_state, reasons)` oldest first, including the last one
    before the window (the state it entered the window in); time before a camera's first transition is not
    known and not counted. `link_down`: when the police platform link was down (in service, not networked).
    `gateway_down`: when the gateway was not running (counted in neither part).
    """
    start = now - window_s
    unknown = _Cover(gateway_down)
    not_networked = _Cover([*gateway_down, *link_down])
    networked_s = in_service_s = 0.0
    for history in histories:
        for index, (at, state, reasons) in enumerate(history):
            seg_end = history[index + 1][0] if index + 1 < len(history) else now
            lo, hi = max(at, start), min(seg_end, now)
            if hi <= lo or state == OUT_OF_SERVICE:
                continue
            in_service_s += (hi - lo) - unknown.overlap(lo, hi)
            if state in WORKING_STATES and not STREAM_LOST.intersection(reasons):
                networked_s += (hi - lo) - not_networked.overlap(lo, hi)
    return NetworkingRate(networked_s, in_service_s)


def average_rate(uptimes: Iterable[float | None]) -> float | None:
    """The plain mean of the cameras' uptimes (kept for older callers; `average_networking_rate` is the real
    time-weighted networking rate, which also counts lost streams and platform-link outages)."""
    known = [u for u in uptimes if u is not None]
    return sum(known) / len(known) if known else None
