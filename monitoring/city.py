"""The city's figures (全市联网率、达标率): what the policy's 80 % is measured on, from the schools' status reports.

The networking rate of the city is networked ÷ in-service cameras summed over the schools that are reporting, so a
big school weighs by its cameras, not as one vote; a school that is not reporting is left out of the rate (the
center cannot see its cameras) and is called out on its own. The compliant share is compliant ÷ all schools: a
silent school counts as not compliant, since nobody can vouch for it. A school is reporting while its last report
is younger than 3 × the `report_every_s` that report carried (three missed reports, as GB/T 28181 counts three
missed keepalives).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

# Three missed reports and a school is silent.
MISSED_REPORTS = 3
# A report that does not say how often it comes is taken to come at the gateway's default.
DEFAULT_REPORT_EVERY_S = 30.0
OUT_OF_SERVICE = "maintenance"


@dataclass(frozen=True, slots=True)
class SchoolReading:
    """One school as the city table sees it: from its latest report, or `last_report_at=None` when it never sent one."""

    school_id: str
    district: str
    last_report_at: float | None = None
    report_every_s: float = DEFAULT_REPORT_EVERY_S
    networked: int = 0
    in_service: int = 0
    compliant: bool = False


@dataclass(frozen=True, slots=True)
class Share:
    part: float
    whole: float

    @property
    def rate(self) -> float | None:
        return self.part / self.whole if self.whole > 0 else None


def is_reporting(school: SchoolReading, now: float) -> bool:
    if school.last_report_at is None:
        return False
    return now - school.last_report_at <= MISSED_REPORTS * max(school.report_every_s, 0.0)


def camera_counts(data: Mapping[str, Any]) -> tuple[int, int]:
    """(networked, in service) from a status report's data.

    The report carries the gateway's own networking rate (which knows about streams and links) and either the
    summary's counts (`cameras: {total, maintenance, ...}`) or a list `cameras: [{id, state, reasons}]`; the
    in-service count comes from whichever is there, and networked = rate × in service, rounded."""
    cameras = data.get("cameras")
    if isinstance(cameras, list):
        in_service = sum(1 for c in cameras if isinstance(c, Mapping) and c.get("state") != OUT_OF_SERVICE)
    elif isinstance(cameras, Mapping):
        in_service = _int(cameras.get("total")) - _int(cameras.get(OUT_OF_SERVICE))
    else:
        in_service = 0
    rate = data.get("networking_rate")
    if not isinstance(rate, int | float) or isinstance(rate, bool) or in_service <= 0:
        return 0, max(in_service, 0)
    return round(min(max(float(rate), 0.0), 1.0) * in_service), in_service


def _int(value: object) -> int:
    return int(value) if isinstance(value, int | float) and not isinstance(value, bool) else 0


def networking_rate(schools: Iterable[SchoolReading], now: float) -> Share:
    reporting = [s for s in schools if is_reporting(s, now)]
    return Share(sum(s.networked for s in reporting), sum(s.in_service for s in reporting))


def compliant_share(schools: Sequence[SchoolReading], now: float) -> Share:
    return Share(sum(1 for s in schools if s.compliant and is_reporting(s, now)), len(schools))


def city_table(schools: Sequence[SchoolReading], now: float, targets: Mapping[str, float]) -> dict[str, Any]:
    """`GET /api/city`: the whole city and each district, in the order districts first appear."""

    def figures(group: Sequence[SchoolReading]) -> dict[str, Any]:
        return {
            "schools": len(group),
            "reporting": sum(1 for s in group if is_reporting(s, now)),
            "networking_rate": networking_rate(group, now).rate,
            "compliant_share": compliant_share(group, now).rate,
        }

    districts: dict[str, list[SchoolReading]] = {}
    for school in schools:
        districts.setdefault(school.district, []).append(school)
    return {
        **figures(schools),
        "target": dict(targets),
        "by_district": [{"district": name, **figures(group)} for name, group in districts.items()],
    }
