"""Compliance (达标): each criterion passing and failing with its reason, and the guard table's boundaries."""

from __future__ import annotations

from dataclasses import replace

import pytest

from monitoring.compliance import (
    AreaCamera,
    ButtonReading,
    Criterion,
    SchoolFacts,
    buttons_criterion,
    compliant,
    judge,
    key_areas_criterion,
    networking_criterion,
    required_guards,
)

DAY = 86400.0
NOW = 1000 * DAY

GOOD = SchoolFacts(
    students=1200,
    guards=2,
    networking_rate=0.9,
    target=0.8,
    cameras=[
        AreaCamera("gate-1", "entrance", True),
        AreaCamera("guard", "gatehouse", True),
        AreaCamera("hall", "", False),  # in no key area: its fault does not fail the key areas
    ],
    buttons=[ButtonReading("guard-room", "门卫室一键报警", True, NOW - 10 * DAY)],
    police_link_ok=True,
    now=NOW,
)


def by_name(school: SchoolFacts) -> dict[str, Criterion]:
    return {c.criterion: c for c in judge(school)}


def test_a_good_school_is_compliant_on_every_criterion_with_reasons() -> None:
    criteria = judge(GOOD)
    assert compliant(criteria)
    assert [(c.criterion, c.ok) for c in criteria] == [
        ("networking_rate", True),
        ("key_areas", True),
        ("alarm_buttons", True),
        ("police_link", True),
        ("guards", True),
    ]
    reasons = {c.criterion: c.reason for c in criteria}
    assert reasons["networking_rate"] == "联网率 90.0% 达到目标 80.0% / networking rate 90.0% meets target 80.0%"
    assert reasons["key_areas"] == "2 个重点区域均有正常摄像机 / all 2 key areas covered"
    assert reasons["alarm_buttons"] == "1 个报警按钮在线且已测试 / 1 buttons online and tested"
    assert reasons["guards"] == "专职保安 2 人，1200 名学生需 2 人 / 2 guards, 2 needed for 1200 students"


def test_one_failing_criterion_makes_the_school_not_compliant() -> None:
    for bad in (
        replace(GOOD, networking_rate=0.5),
        replace(GOOD, cameras=[AreaCamera("gate-1", "entrance", False)]),
        replace(GOOD, buttons=[]),
        replace(GOOD, police_link_ok=False),
        replace(GOOD, guards=1),
    ):
        criteria = judge(bad)
        assert not compliant(criteria)
        assert sum(not c.ok for c in criteria) == 1
    assert not compliant([])


def test_rate_below_target_fails_with_both_figures_chinese_first() -> None:
    criterion = by_name(replace(GOOD, networking_rate=0.75))["networking_rate"]
    assert not criterion.ok
    assert criterion.reason == "联网率 75.0% 低于目标 80.0% / networking rate 75.0% below target 80.0%"


def test_rate_exactly_at_target_passes_and_just_below_does_not_read_as_equal() -> None:
    assert networking_criterion(4 / 5, 0.8).ok
    assert networking_criterion(0.8 - 1e-12, 0.8).ok  # floating-point noise of an average
    below = networking_criterion(0.7996, 0.8)
    assert not below.ok
    assert below.reason == "联网率 79.96% 低于目标 80.00% / networking rate 79.96% below target 80.00%"


def test_no_camera_in_service_fails_the_rate() -> None:
    criterion = networking_criterion(None, 0.8)
    assert (criterion.ok, criterion.reason) == (False, "没有在用的摄像机 / no camera in service")


def test_key_area_without_a_working_camera_fails_naming_it_in_both_languages() -> None:
    cameras = [
        AreaCamera("gate-1", "entrance", False),
        AreaCamera("gate-2", "entrance", False),
        AreaCamera("fence", "perimeter", False),
        AreaCamera("hall", "corridor", True),
        AreaCamera("dock", "loading_bay", False),  # an area we have no Chinese name for is shown as configured
    ]
    criterion = key_areas_criterion(cameras)
    assert not criterion.ok
    assert criterion.reason == (
        "重点区域无正常摄像机：校门、loading_bay、周界 / no working camera in: entrance, loading_bay, perimeter"
    )


def test_one_working_camera_covers_its_area() -> None:
    criterion = key_areas_criterion([AreaCamera("gate-1", "entrance", False), AreaCamera("gate-2", "entrance", True)])
    assert criterion.ok


def test_no_key_area_configured_fails() -> None:
    criterion = key_areas_criterion([AreaCamera("hall", "", True)])
    assert not criterion.ok
    assert criterion.reason.startswith("未标注重点区域 / ")


def test_buttons_offline_or_untested_fail_naming_them() -> None:
    buttons = [
        ButtonReading("a", "门卫室", False, NOW - DAY),
        ButtonReading("b", "办公室", True, NOW - 90 * DAY - 1),
        ButtonReading("c", "食堂", True, None),  # never tested
        ButtonReading("d", "幼儿园", True, NOW - 90 * DAY),  # exactly 90 days ago: still within
    ]
    criterion = buttons_criterion(buttons, NOW)
    assert not criterion.ok
    assert criterion.reason == (
        "离线：门卫室；90 天内未测试：办公室、食堂 / offline: 门卫室; not tested in 90 days: 办公室, 食堂"
    )
    assert buttons_criterion(buttons[3:], NOW).ok


def test_no_button_fails() -> None:
    criterion = buttons_criterion([], NOW)
    assert (criterion.ok, criterion.reason) == (False, "未配置一键报警按钮 / no one-click alarm button configured")


def test_police_link_down_fails() -> None:
    criterion = by_name(replace(GOOD, police_link_ok=False))["police_link"]
    assert (criterion.ok, criterion.reason) == (
        False,
        "公安平台链路中断或未配置 / police platform link down or not configured",
    )


def test_too_few_guards_fail_with_the_figures() -> None:
    criterion = by_name(replace(GOOD, students=1500, guards=2))["guards"]
    assert not criterion.ok
    assert criterion.reason == (
        "专职保安 2 人，少于 1500 名学生所需 3 人 / 2 guards, fewer than the 3 needed for 1500 students"
    )


@pytest.mark.parametrize(
    ("students", "guards"),
    [(0, 1), (99, 1), (100, 2), (999, 2), (1000, 2), (1499, 2), (1500, 3), (1501, 3), (1999, 3), (2000, 4)],
)
def test_guard_table(students: int, guards: int) -> None:
    assert required_guards(students) == guards


def test_negative_students_are_refused() -> None:
    with pytest.raises(ValueError, match="negative"):
        required_guards(-1)


def test_a_note_says_why_working_cameras_do_not_count_in_each_language_half() -> None:
    note = ("GB/T 28181 平台未注册（police-gb）", "not registered with the GB/T 28181 platform (police-gb: 403)")
    zh, en = networking_criterion(0.0, 0.8, note).reason.split(" / ")
    assert zh == "联网率 0.0% 低于目标 80.0%：GB/T 28181 平台未注册（police-gb）"
    assert en == "networking rate 0.0% below target 80.0%: not registered with the GB/T 28181 platform (police-gb: 403)"
