"""Resident memory of this process, for the benches (no third-party imports: the onvif-zeep venv uses it too)."""

from __future__ import annotations

import resource
from pathlib import Path


def rss_mb() -> float:
    """Resident memory now, from /proc (the peak would hide what one round or one client build adds)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
