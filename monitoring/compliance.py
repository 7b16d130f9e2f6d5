"""Compliance (达标): each criterion a school is judged by, with its reason in Chinese first, then English."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

# Buttons must have been tested in the last 90 days: some police require a quarterly active test of every button
# (STANDARDS.md, DB15/T 3968-2025 summary); a monthly test is the school's own routine.
BUTTON_TEST_MAX_AGE_S = 90 * 86400.0
# Names of the usual key areas (GB/T 29315-2022 lists 16) for the Chinese half of a reason.
AREA_NAMES = {
    "entrance": "校门",
    "gatehouse": "门卫室",
    "perimeter": "周界",
    "playground": "操场",
    "corridor": "走廊",
    "stairs": "楼梯",
    "canteen": "食堂",
    "dormitory": "宿舍",
    "library": "图书馆",
    "parking": "停车场",
    "classroom": "教室",
    "office": "行政楼",
}


@dataclass(frozen=True, slots=True)
class Criterion:
    criterion: str
    ok: bool
    reason: str


@dataclass(frozen=True, slots=True)
class AreaCamera:
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


def required_guards(students: int) -> int:
    """Full-time guards a school needs (GB/T 29315-2022 and 公治〔2015〕168号, as summarised in STANDARDS.md).

    Under 100 students: 1; up to 999: 2; from 1,000: 2, plus 1 for each further full 500 students. Texts differ
    at 1,000 (some say 3); we take the reading that most sources share and let the report show the figures.
    """
    if students < 100:
        return 1
    if students < 1000:
        return 2
    return 2 + (students - 1000) // 500


def _pct(x: float) -> str:
    return f"{x * 100:.1f}%"


def judge(facts: SchoolFacts) -> list[Criterion]:
    out: list[Criterion] = []
    rate, target = facts.networking_rate, facts.target
    if rate is None:
        out.append(Criterion("networking_rate", False, "没有在用的摄像机 / no camera in service"))
    else:
        ok = rate >= target
        zh, en = ("达到", "meets") if ok else ("低于", "below")
        r, t = _pct(rate), _pct(target)
        out.append(Criterion("networking_rate", ok, f"联网率 {r} {zh}目标 {t} / networking rate {r} {en} target {t}"))

    areas: dict[str, bool] = {}
    for camera in facts.cameras:
        if camera.area:
            areas[camera.area] = areas.get(camera.area, False) or camera.working
    uncovered = sorted(a for a, ok in areas.items() if not ok)
    if not areas:
        out.append(Criterion("key_areas", False, "未标注重点区域 / no key area is configured (camera `area:`)"))
    elif uncovered:
        names = "、".join(AREA_NAMES.get(a, a) for a in uncovered)
        out.append(
            Criterion(
                "key_areas",
                False,
                f"重点区域无正常摄像机：{names} / no working camera in: {', '.join(uncovered)}",
            )
        )
    else:
        out.append(
            Criterion("key_areas", True, f"{len(areas)} 个重点区域均有正常摄像机 / all {len(areas)} key areas covered")
        )

    out.append(_buttons(facts))
    if facts.police_link_ok:
        out.append(Criterion("police_link", True, "公安平台链路正常 / police platform link up"))
    else:
        out.append(
            Criterion("police_link", False, "公安平台链路中断或未配置 / police platform link down or not configured")
        )

    needed = required_guards(facts.students)
    if facts.guards >= needed:
        out.append(
            Criterion(
                "guards",
                True,
                f"专职保安 {facts.guards} 人，{facts.students} 名学生需 {needed} 人 / "
                f"{facts.guards} guards, {needed} needed for {facts.students} students",
            )
        )
    else:
        out.append(
            Criterion(
                "guards",
                False,
                f"专职保安 {facts.guards} 人，少于 {facts.students} 名学生所需 {needed} 人 / "
                f"{facts.guards} guards, fewer than the {needed} needed for {facts.students} students",
            )
        )
    return out


def _buttons(facts: SchoolFacts) -> Criterion:
    if not facts.buttons:
        return Criterion("alarm_buttons", False, "未配置一键报警按钮 / no one-click alarm button configured")
    offline = [b.name for b in facts.buttons if not b.online]
    untested = [
        b.name for b in facts.buttons if b.last_test_at is None or facts.now - b.last_test_at > BUTTON_TEST_MAX_AGE_S
    ]
    problems_zh, problems_en = [], []
    if offline:
        problems_zh.append("离线：" + "、".join(offline))
        problems_en.append("offline: " + ", ".join(offline))
    if untested:
        problems_zh.append("90 天内未测试：" + "、".join(untested))
        problems_en.append("not tested in 90 days: " + ", ".join(untested))
    if problems_zh:
        return Criterion("alarm_buttons", False, "；".join(problems_zh) + " / " + "; ".join(problems_en))
    count = len(facts.buttons)
    return Criterion("alarm_buttons", True, f"{count} 个报警按钮在线且已测试 / {count} buttons online and tested")


def compliant(criteria: Sequence[Criterion]) -> bool:
    return bool(criteria) and all(c.ok for c in criteria)
