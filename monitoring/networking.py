"""The networking rate (联网率): the share of in-service cameras that the platform can really see.

A camera counts when it is online (or degraded for a reason that leaves the stream working), its stream answers,
and the link to the police platform is healthy: a camera the platform cannot reach is not networked, however well
it works locally. Cameras in maintenance are out of service and counted in neither part.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

# Degradations that mean the platform gets no usable video from the camera.
STREAM_LOST = frozenset({"stream_unreachable", "stream_auth_failed", "no_stream_uri", "auth_failed"})


@dataclass(frozen=True, slots=True)
class CameraReading:
    state: str
    stream_ok: bool
    reasons: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class NetworkingRate:
    networked: int
    in_service: int

    @property
    def rate(self) -> float | None:
        return self.networked / self.in_service if self.in_service else None


def is_networked(camera: CameraReading) -> bool:
    return camera.state in ("online", "degraded") and camera.stream_ok and not (camera.reasons & STREAM_LOST)


def networking_rate(cameras: Iterable[CameraReading], platform_link_ok: bool) -> NetworkingRate:
    in_service = [c for c in cameras if c.state != "maintenance"]
    networked = sum(1 for c in in_service if is_networked(c)) if platform_link_ok else 0
    return NetworkingRate(networked, len(in_service))


def average_rate(uptimes: Iterable[float | None]) -> float | None:
    """The time-averaged rate over a window, as the mean of the in-service cameras' uptime in it."""
    known = [u for u in uptimes if u is not None]
    return sum(known) / len(known) if known else None
