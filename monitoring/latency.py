"""Delivery latency as a cumulative histogram: pure counting, observed by the forwarders and read by the faces.

The buckets are chosen around the two figures that matter: the police policy of 2 s from press to platform, and
our own target of 20 ms at the 99th percentile on a LAN.
"""

from __future__ import annotations

import bisect
import threading
from dataclasses import dataclass, field

LATENCY_BUCKETS = (0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 30.0, 120.0)


@dataclass
class LatencyHistogram:
    """A thread-safe cumulative histogram that the forwarders observe into."""

    buckets: tuple[float, ...] = LATENCY_BUCKETS
    counts: list[int] = field(default_factory=list)
    total: float = 0.0
    count: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def __post_init__(self) -> None:
        self.counts = [0] * (len(self.buckets) + 1)

    def observe(self, seconds: float) -> None:
        with self._lock:
            self.counts[bisect.bisect_left(self.buckets, seconds)] += 1
            self.total += seconds
            self.count += 1

    def cumulative(self) -> list[tuple[str, float]]:
        with self._lock:
            out, running = [], 0
            for bound, n in zip((*self.buckets, float("inf")), self.counts, strict=True):
                running += n
                out.append(("+Inf" if bound == float("inf") else repr(bound), float(running)))
            return out
