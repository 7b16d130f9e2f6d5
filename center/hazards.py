"""Hazards found automatically (查问题、找隐患): pure rules over a school's latest report and camera history.

Each rule names a (kind, subject) that is a hazard now; the center opens one for each that is not open yet, with a
deadline to rectify (限期整改), and closes an automatic one once its condition clears. Hazards opened by hand are
closed by hand.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

DAY_S = 86400.0
# GB/T 29315-2012: faults restored within 24 h; a camera offline longer is a hazard.
CAMERA_OFFLINE_HAZARD_S = 1 * DAY_S
# Days given to rectify an automatic hazard: a week covers a site visit and a part delivered.
RECTIFY_WITHIN_S = 7 * DAY_S

CAMERA_OFFLINE = "camera_offline"
KEY_AREA_UNCOVERED = "key_area_uncovered"
BUTTON_UNTESTED = "alarm_buttons"
UNDER_TARGET = "under_target"
AUTOMATIC_KINDS = frozenset({CAMERA_OFFLINE, KEY_AREA_UNCOVERED, BUTTON_UNTESTED, UNDER_TARGET})

TITLES = {
    CAMERA_OFFLINE: "摄像机离线超过24小时 / camera offline over 24 h",
    KEY_AREA_UNCOVERED: "重点区域无正常摄像机 / key area without a working camera",
    BUTTON_UNTESTED: "一键报警按钮离线或90天未测试 / alarm button offline or untested for 90 days",
    UNDER_TARGET: "联网率低于目标 / networking rate under target",
}


@dataclass(frozen=True, slots=True)
class Finding:
    kind: str
    subject: str
    detail: str


def findings(
    data: Mapping[str, Any], camera_states: Mapping[str, tuple[str, float]], target: float, now: float
) -> list[Finding]:
    """What is a hazard at this school now, from its latest report and how long each camera has been in its state."""
    found = [
        Finding(CAMERA_OFFLINE, camera_id, f"{camera_id}: {TITLES[CAMERA_OFFLINE]}")
        for camera_id, (state, since) in sorted(camera_states.items())
        if state == "offline" and now - since > CAMERA_OFFLINE_HAZARD_S
    ]
    criteria = {str(c.get("criterion")): c for c in data.get("compliance", []) or [] if isinstance(c, Mapping)}
    for criterion, kind in (("key_areas", KEY_AREA_UNCOVERED), ("alarm_buttons", BUTTON_UNTESTED)):
        entry = criteria.get(criterion)
        if entry is not None and entry.get("ok") is False:
            found.append(Finding(kind, criterion, str(entry.get("reason", TITLES[kind]))[:300]))
    rate = data.get("networking_rate")
    if isinstance(rate, int | float) and not isinstance(rate, bool) and rate + 1e-9 < target:
        found.append(Finding(UNDER_TARGET, "networking_rate", f"联网率 {rate:.0%} < {target:.0%} / rate under target"))
    return found
