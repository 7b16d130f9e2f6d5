"""The networking rate and each compliance criterion, passing and failing, with their reasons."""

from __future__ import annotations

import pytest

from monitoring.compliance import (
    AreaCamera,
    ButtonReading,
    SchoolFacts,
    compliant,
    judge,
    required_guards,
)
from monitoring.networking import CameraReading, average_rate, networking_rate

DAY = 86400.0
NOW = 1000 * DAY


def cam(state: str, stream_ok: bool = True, *reasons: str) -> CameraReading:
    return CameraReading(state, stream_ok, frozenset(reasons))


def test_networking_rate_counts_live_streams_of_in_service_cameras() -> None:
    cameras = [
        cam("online"),
        cam("degraded", True, "clock_skew"),  # works, clock off: still networked
        cam("degraded", False, "stream_unreachable"),
        cam("offline", False),
        cam("maintenance", False),  # out of service: in neither part
    ]
    result = networking_rate(cameras, platform_link_ok=True)
    assert (result.networked, result.in_service) == (2, 4)
    assert result.rate == 0.5


def test_no_platform_link_means_nothing_is_networked() -> None:
    assert networking_rate([cam("online")], platform_link_ok=False).rate == 0.0


def test_no_camera_in_service_is_none() -> None:
    assert networking_rate([cam("maintenance")], platform_link_ok=True).rate is None
    assert average_rate([None, None]) is None
    assert average_rate([1.0, 0.5, None]) == 0.75


@pytest.mark.parametrize(
    ("students", "guards"), [(0, 1), (99, 1), (100, 2), (999, 2), (1000, 2), (1499, 2), (1500, 3), (2000, 4)]
)
def test_guard_table(students: int, guards: int) -> None:
    assert required_guards(students) == guards


def facts(**changes: object) -> SchoolFacts:
    base: dict[str, object] = {
        "students": 1200,
        "guards": 3,
        "networking_rate": 0.9,
        "target": 0.8,
        "cameras": [AreaCamera("gate-1", "entrance", True), AreaCamera("hall", "corridor", True)],
        "buttons": [ButtonReading("guard-room", "门卫室", True, NOW - 10 * DAY)],
        "police_link_ok": True,
        "now": NOW,
    }
    base.update(changes)
    return SchoolFacts(**base)  # type: ignore[arg-type]


def by_name(school: SchoolFacts) -> dict[str, tuple[bool, str]]:
    return {c.criterion: (c.ok, c.reason) for c in judge(school)}


def test_a_good_school_is_compliant_on_every_criterion() -> None:
    criteria = judge(facts())
    assert compliant(criteria)
    assert {c.criterion for c in criteria} == {"networking_rate", "key_areas", "alarm_buttons", "police_link", "guards"}


def test_rate_below_target_fails_with_both_figures() -> None:
    ok, reason = by_name(facts(networking_rate=0.75))["networking_rate"]
    assert not ok
    assert reason == "联网率 75.0% 低于目标 80.0% / networking rate 75.0% below target 80.0%"


def test_key_area_without_a_working_camera_fails_naming_it() -> None:
    cameras = [
        AreaCamera("gate-1", "entrance", False),
        AreaCamera("gate-2", "entrance", False),
        AreaCamera("hall", "corridor", True),
    ]
    ok, reason = by_name(facts(cameras=cameras))["key_areas"]
    assert not ok
    assert "entrance" in reason
    assert "corridor" not in reason


def test_buttons_offline_or_untested_fail() -> None:
    buttons = [
        ButtonReading("a", "门卫室", False, NOW - DAY),
        ButtonReading("b", "办公室", True, NOW - 91 * DAY),
        ButtonReading("c", "食堂", True, None),
    ]
    ok, reason = by_name(facts(buttons=buttons))["alarm_buttons"]
    assert not ok
    assert "离线：门卫室" in reason
    assert "办公室、食堂" in reason
    assert not by_name(facts(buttons=[]))["alarm_buttons"][0]


def test_too_few_guards_and_a_down_police_link_fail() -> None:
    result = by_name(facts(guards=1, police_link_ok=False))
    assert result["guards"] == (
        False,
        "专职保安 1 人，少于 1200 名学生所需 2 人 / 1 guards, fewer than the 2 needed for 1200 students",
    )
    assert not result["police_link"][0]
    assert not compliant(judge(facts(guards=1)))
