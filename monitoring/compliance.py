"""Compliance (达标): each criterion a school is judged by, with its reason in Chinese first, then English.

A school is compliant when every criterion holds: the networking rate reaches the target, every key area has a
working camera, every alarm button is online and tested within 90 days, the police platform link is up, and
there are enough full-time guards for the number of students.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

DAY_S = 86400.0
# Buttons must have been tested in the last 90 days: some police require a quarterly active test of every button
# (STANDARDS.md, DB15/T 3968-2025 summary); the school's own monthly test keeps well inside it.
BUTTON_TEST_MAX_AGE_S = 90 * DAY_S
# Rates within this of the target count as reaching it: 4 of 5 cameras is 80 %, whatever floating point makes
# of a time-weighted average.
RATE_TOLERANCE = 1e-9

# Guards (GB/T 29315-2022 and 公治〔2015〕168号 as summarised in STANDARDS.md): under 100 students at least 1, up to
# 1,000 at least 2, from 1,000 at least 2 plus 1 for each further full 500 students. Sources differ at 1,000 (some
# say 3); we take the base all of them share (2) so no school is failed on the minority reading, and count only
# full 500s ("each further 500 students"), so 1,000–1,499 need 2, 1,500–1,999 need 3, 2,000 need 4.
SMALL_SCHOOL_STUDENTS = 100
GUARDS_SMALL_SCHOOL = 1
LARGE_SCHOOL_STUDENTS = 1000
GUARDS_BASE = 2
STUDENTS_PER_EXTRA_GUARD = 500

# Chinese names of the usual key areas (GB/T 29315-2022 lists 16), for the Chinese half of a reason; an area not
# listed is shown as configured.
AREA_NAMES = {
    "entrance": "校门",
    "gatehouse": "门卫室",
    "perimeter": "周界",
    "playground": "操场",
    "corridor": "走廊",
    "stairs": "楼梯",
    "canteen": "食堂",
    "kitchen": "厨房",
    "dormitory": "宿舍",
    "library": "图书馆",
    "parking": "停车场",
    "classroom": "教室",
    "office": "行政楼",
    "laboratory": "实验室",
    "storeroom": "危化品库",
    "control_room": "监控中心",
}


@dataclass(frozen=True, slots=True)
class Criterion:
    criterion: str
    ok: bool
    reason: str


@dataclass(frozen=True, slots=True)
class AreaCamera:
    """A camera as compliance sees it: its key area (`area:` in the config, "" for none) and whether it works."""

    camera_id: str
    area: str
    working: bool


@dataclass(frozen=True, slots=True)
class ButtonReading:
    button_id: str
    name: str
    online: bool
    last_test_at: float | None


@dataclass(frozen=True, slots=True)
class SchoolFacts:
    students: int
    guards: int
    networking_rate: float | None
    target: float
    cameras: Sequence[AreaCamera]
    buttons: Sequence[ButtonReading]
    police_link_ok: bool
    now: float
    # Why cameras that work do not count as networked, (Chinese, English): e.g. the GB/T 28181 platform does not
    # have the gateway registered. Shown with the networking criterion, so a rate of 0 % says why.
    networking_note: tuple[str, str] | None = None


def required_guards(students: int) -> int:
    """Full-time guards a school of `students` needs (the reading is explained at the constants above)."""
    if students < 0:
        raise ValueError(f"students cannot be negative: {students}")
    if students < SMALL_SCHOOL_STUDENTS:
        return GUARDS_SMALL_SCHOOL
    if students < LARGE_SCHOOL_STUDENTS:
        return GUARDS_BASE
    return GUARDS_BASE + (students - LARGE_SCHOOL_STUDENTS) // STUDENTS_PER_EXTRA_GUARD


def _pct(x: float, decimals: int = 1) -> str:
    return f"{x * 100:.{decimals}f}%"


def _rate_and_target(rate: float, target: float) -> tuple[str, str]:
    """Both as percentages, with enough decimals that a rate just below the target does not read as equal."""
    decimals = 1
    while decimals < 4 and rate < target and _pct(rate, decimals) == _pct(target, decimals):
        decimals += 1
    return _pct(rate, decimals), _pct(target, decimals)


def networking_criterion(rate: float | None, target: float, note: tuple[str, str] | None = None) -> Criterion:
    if rate is None:
        return Criterion("networking_rate", False, "没有在用的摄像机 / no camera in service")
    ok = rate >= target - RATE_TOLERANCE
    zh, en = ("达到", "meets") if ok else ("低于", "below")
    r, t = _rate_and_target(rate, target)
    note_zh, note_en = (f"：{note[0]}", f": {note[1]}") if note is not None else ("", "")
    return Criterion(
        "networking_rate", ok, f"联网率 {r} {zh}目标 {t}{note_zh} / networking rate {r} {en} target {t}{note_en}"
    )


def key_areas_criterion(cameras: Sequence[AreaCamera]) -> Criterion:
    covered: dict[str, bool] = {}
    for camera in cameras:
        if camera.area:
            covered[camera.area] = covered.get(camera.area, False) or camera.working
    if not covered:
        return Criterion("key_areas", False, "未标注重点区域 / no key area is configured (camera `area:`)")
    uncovered = sorted(area for area, ok in covered.items() if not ok)
    if uncovered:
        names = "、".join(AREA_NAMES.get(area, area) for area in uncovered)
        return Criterion(
            "key_areas", False, f"重点区域无正常摄像机：{names} / no working camera in: {', '.join(uncovered)}"
        )
    count = len(covered)
    return Criterion("key_areas", True, f"{count} 个重点区域均有正常摄像机 / all {count} key areas covered")


def buttons_criterion(buttons: Sequence[ButtonReading], now: float) -> Criterion:
    if not buttons:
        return Criterion("alarm_buttons", False, "未配置一键报警按钮 / no one-click alarm button configured")
    offline = [b.name for b in buttons if not b.online]
    untested = [b.name for b in buttons if b.last_test_at is None or now - b.last_test_at > BUTTON_TEST_MAX_AGE_S]
    problems_zh, problems_en = [], []
    if offline:
        problems_zh.append("离线：" + "、".join(offline))
        problems_en.append("offline: " + ", ".join(offline))
    if untested:
        problems_zh.append("90 天内未测试：" + "、".join(untested))
        problems_en.append("not tested in 90 days: " + ", ".join(untested))
    if problems_zh:
        return Criterion("alarm_buttons", False, "；".join(problems_zh) + " / " + "; ".join(problems_en))
    count = len(buttons)
    return Criterion("alarm_buttons", True, f"{count} 个报警按钮在线且已测试 / {count} buttons online and tested")


def police_link_criterion(ok: bool) -> Criterion:
    if ok:
        return Criterion("police_link", True, "公安平台链路正常 / police platform link up")
    return Criterion("police_link", False, "公安平台链路中断或未配置 / police platform link down or not configured")


def guards_criterion(students: int, guards: int) -> Criterion:
    needed = required_guards(students)
    if guards >= needed:
        return Criterion(
            "guards",
            True,
            f"专职保安 {guards} 人，{students} 名学生需 {needed} 人 / "
            f"{guards} guards, {needed} needed for {students} students",
        )
    return Criterion(
        "guards",
        False,
        f"专职保安 {guards} 人，少于 {students} 名学生所需 {needed} 人 / "
        f"{guards} guards, fewer than the {needed} needed for {students} students",
    )


def judge(facts: SchoolFacts) -> list[Criterion]:
    """Every criterion, in the order the page shows them."""
    return [
        networking_criterion(facts.networking_rate, facts.target, facts.networking_note),
        key_areas_criterion(facts.cameras),
        buttons_criterion(facts.buttons, facts.now),
        police_link_criterion(facts.police_link_ok),
        guards_criterion(facts.students, facts.guards),
    ]


def compliant(criteria: Sequence[Criterion]) -> bool:
    """Overall 达标: every criterion holds (and there is at least one to hold)."""
    return bool(criteria) and all(c.ok for c in criteria)
