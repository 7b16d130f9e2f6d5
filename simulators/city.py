"""A simulated city for the demo and for load on the command center: a few dozen lightweight school gateways.

Not full gateways: each is a signed report sender speaking the gateway's contract (DESIGN.md "Status reports and
acknowledgements"): every `report_every` a `cn.huxiao.status` CloudEvent to `<center>/reports`, now and then an
alarm (mostly monthly tests, the odd panic) to `<center>/alarms`, both signed with the school's own secret. The
mix is what a city bureau sees: most schools networked above the 80% target, some below it, a few with too few
guards, some silent (never reporting, or falling silent part-way). The center's acknowledgements in its answers
are kept per school, so a demo can show an operator's ack arriving back at the school.

    schools = city_schools(36, seed=7)
    center_yaml_schools = [s.center_entry() for s in schools]     # for the center's `schools:` list
    await run_city("http://127.0.0.1:9000", schools)              # until cancelled
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from ipaddress import ip_address
from typing import Any
from urllib.parse import urlsplit

import aiohttp

from adapters.upstreams.signing import HEADER, sign
from gateway.domain.config import SchoolConfig
from gateway.domain.events import cloudevent

logger = logging.getLogger(__name__)

DISTRICTS = ("东区", "西区", "仁和区", "米易县", "盐边县")
KINDS = ("小学", "中学", "幼儿园", "实验学校")
TARGET = 0.80
# How long one report or alarm may take before the simulated school gives up on it (the next one follows).
POST_TIMEOUT_S = 5.0
# Share of schools that never report (gateway not installed, line down) and that fall silent after a while.
NEVER_REPORTS = 0.08
FALLS_SILENT = 0.06


@dataclass
class SimulatedSchool:
    """One school's gateway as the center sees it; `acknowledged` collects the acks the center sent back."""

    id: str
    name: str
    district: str
    secret: str
    cameras: int
    networked: int
    students: int
    guards: int
    silent_from: int | None = None  # report number from which it stays silent (0: never reports)
    alarm_chance: float = 0.02  # per report: chance that an alarm goes out too
    reports_sent: int = 0
    alarms_sent: list[str] = field(default_factory=list)
    acknowledged: dict[str, dict[str, Any]] = field(default_factory=dict)

    def center_entry(self) -> dict[str, str]:
        """This school as the center's config lists it."""
        return {"id": self.id, "name": self.name, "district": self.district, "secret": self.secret}

    @property
    def networking_rate(self) -> float:
        return self.networked / self.cameras if self.cameras else 0.0

    def report_data(self, every_s: float, rng: random.Random) -> dict[str, Any]:
        """A `/api/summary`-shaped answer plus cameras and the cadence, with a little churn between reports."""
        cameras = []
        for index in range(self.cameras):
            online = index < self.networked
            state = "online" if online else rng.choice(("offline", "offline", "degraded"))
            reasons = [] if online else (["timeout"] if state == "offline" else ["picture:blurred"])
            cameras.append({"id": f"cam-{index + 1:02d}", "state": state, "reasons": reasons})
        counts = {s: sum(1 for c in cameras if c["state"] == s) for s in ("online", "degraded", "offline")}
        rate = round(self.networking_rate, 4)
        needed_guards = 1 if self.students < 100 else 2 + max(0, (self.students - 1000) // 500)
        compliance = [
            {"criterion": "networking_rate", "ok": rate >= TARGET, "reason": f"联网率 {rate:.0%} / 目标 {TARGET:.0%}"},
            {
                "criterion": "guards",
                "ok": self.guards >= needed_guards,
                "reason": f"专职保安 {self.guards} 人 / 应配 {needed_guards} 人",
            },
            {"criterion": "alarm_link", "ok": True, "reason": "一键报警已联网"},
        ]
        return {
            "school": {"id": self.id, "name": self.name, "district": self.district},
            "cameras": cameras,
            "camera_counts": {"total": self.cameras, **counts, "unknown": 0, "maintenance": 0},
            "networking_rate": rate,
            "target": TARGET,
            "compliant": all(c["ok"] for c in compliance),
            "compliance": compliance,
            "buttons": {"total": 2, "online": 2},
            "upstreams": [{"name": "city", "kind": "http", "link": "up", "pending": 0}],
            "report_every_s": every_s,
        }


def city_schools(count: int = 36, *, seed: int = 1) -> list[SimulatedSchool]:
    """`count` schools with a realistic, reproducible mix (same seed, same city)."""
    rng = random.Random(seed)
    schools = []
    for index in range(count):
        district = DISTRICTS[index % len(DISTRICTS)]
        kind = KINDS[rng.randrange(len(KINDS))]
        cameras = rng.randint(8, 40)
        # Three in four schools are well connected; the rest sit below the target (old cabling, broken cameras).
        share = rng.uniform(0.86, 1.0) if rng.random() < 0.75 else rng.uniform(0.45, 0.79)
        students = rng.choice((80, 300, 600, 900, 1200, 1800, 2400))
        needed = 1 if students < 100 else 2 + max(0, (students - 1000) // 500)
        guards = needed if rng.random() < 0.85 else max(0, needed - 1)
        draw = rng.random()
        silent_from = (
            0 if draw < NEVER_REPORTS else (rng.randint(3, 10) if draw < NEVER_REPORTS + FALLS_SILENT else None)
        )
        schools.append(
            SimulatedSchool(
                id=f"5104{index // 10 + 1:02d}{index + 1:05d}",
                name=f"攀枝花市{district}第{index // len(DISTRICTS) + 1}{kind}",
                district=district,
                secret=f"city-sim-{seed}-{index}-{uuid.UUID(int=rng.getrandbits(128)).hex[:12]}",
                cameras=cameras,
                networked=round(cameras * share),
                students=students,
                guards=guards,
                silent_from=silent_from,
            )
        )
    return schools


def _check_loopback(center_url: str) -> str:
    """The simulated city talks to a center on this machine only."""
    host = urlsplit(center_url).hostname or ""
    try:
        loopback = host == "localhost" or ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        raise ValueError(f"the simulated city only talks to a center on 127.0.0.0/8, not {host!r}")
    return center_url.rstrip("/")


async def _post(
    session: aiohttp.ClientSession, url: str, school: SimulatedSchool, body: bytes
) -> tuple[int, bytes] | None:
    headers = {
        "Content-Type": "application/cloudevents+json; charset=utf-8",
        HEADER: sign(school.secret, body, int(time.time())),
    }
    try:
        async with asyncio.timeout(POST_TIMEOUT_S), session.post(url, data=body, headers=headers) as response:
            return response.status, await response.read()
    except (TimeoutError, aiohttp.ClientError, OSError) as exc:
        logger.info("%s: %s not taken: %s", school.id, url.rsplit("/", 1)[-1], exc)
        return None


def _note_acks(school: SimulatedSchool, answer: bytes) -> None:
    try:
        document = json.loads(answer) if answer.strip() else {}
    except ValueError:
        return
    items = document if isinstance(document, list) else document.get("acks", []) if isinstance(document, dict) else []
    for item in items if isinstance(items, list) else []:
        if isinstance(item, dict) and item.get("button_event_id") in school.alarms_sent:
            school.acknowledged.setdefault(str(item["button_event_id"]), item)


async def _school_loop(
    session: aiohttp.ClientSession, base: str, school: SimulatedSchool, every_s: float, rng: random.Random
) -> None:
    config = SchoolConfig(id=school.id, name=school.name, district=school.district)
    await asyncio.sleep(rng.uniform(0, every_s))  # gateways of a city do not all report in the same instant
    number = 0
    while True:
        if school.silent_from is None or number < school.silent_from:
            if rng.random() < school.alarm_chance:
                await _alarm(session, base, school, config, rng)
            body = cloudevent(
                str(uuid.uuid4()), "cn.huxiao.status", config, datetime.now(UTC), school.report_data(every_s, rng)
            )
            answer = await _post(session, f"{base}/reports", school, body)
            if answer is not None and 200 <= answer[0] < 300:
                school.reports_sent += 1
                _note_acks(school, answer[1])
        number += 1
        await asyncio.sleep(every_s * rng.uniform(0.9, 1.1))


async def _alarm(
    session: aiohttp.ClientSession, base: str, school: SimulatedSchool, config: SchoolConfig, rng: random.Random
) -> None:
    kind = "panic" if rng.random() < 0.2 else "test"
    press = uuid.uuid4().hex
    now = datetime.now(UTC)
    stamp = now.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    data = {
        "school": {"id": school.id, "name": school.name, "district": school.district},
        "button": {"id": "guard-room", "name": "门卫室一键报警", "location": "校门"},
        "button_event_id": press,
        "pressed_at": stamp,
        "received_at": stamp,
        "sequence": len(school.alarms_sent) + 1,
        "cameras": [],
    }
    body = cloudevent(str(uuid.uuid4()), f"cn.huxiao.alarm.{kind}", config, now, data)
    answer = await _post(session, f"{base}/alarms", school, body)
    if answer is not None and (200 <= answer[0] < 300 or answer[0] == 409):
        school.alarms_sent.append(press)


async def run_city(
    center_url: str, schools: list[SimulatedSchool], *, report_every_s: float = 30.0, seed: int = 1
) -> None:
    """Run every school against the center at `center_url` (its base, e.g. http://127.0.0.1:9000) until cancelled."""
    base = _check_loopback(center_url)
    rng = random.Random(seed)
    connector = aiohttp.TCPConnector(limit=16)  # a few dozen schools share a handful of connections
    async with aiohttp.ClientSession(connector=connector) as session, asyncio.TaskGroup() as group:
        for school in schools:
            school_rng = random.Random(rng.getrandbits(64))
            group.create_task(_school_loop(session, base, school, report_every_s, school_rng), name=f"city:{school.id}")
