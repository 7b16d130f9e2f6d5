"""The console's live feed (SSE) and hazards (隐患) with their deadlines, against a running center."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import aiohttp

from center.hazards import CAMERA_OFFLINE, DAY_S, KEY_AREA_UNCOVERED, UNDER_TARGET, findings
from tests.center.running import center_config, running_center
from tests.center.senders import SCHOOL_A, alarm_event, report_event, signed

FEED_WAIT_S = 5.0


async def next_event(stream: aiohttp.StreamReader, kind: str) -> dict[str, Any]:
    """The data of the next SSE event of `kind` on the stream."""
    async with asyncio.timeout(FEED_WAIT_S):
        current = None
        while True:
            line = (await stream.readline()).decode().rstrip("\n")
            if line.startswith("event: "):
                current = line[7:]
            elif line.startswith("data: ") and current == kind:
                data: dict[str, Any] = json.loads(line[6:])
                return data


async def test_the_feed_carries_alarm_ack_and_school_events(storage_url: str) -> None:
    async with (
        running_center(center_config(storage_url)) as base,
        aiohttp.ClientSession() as http,
        http.get(f"{base}/events") as feed,
    ):
        assert feed.headers["Content-Type"].startswith("text/event-stream")
        await feed.content.readline()  # ": connected"
        body = alarm_event(SCHOOL_A, "live-1")
        async with http.post(f"{base}/alarms", data=body, headers=signed(SCHOOL_A, body)) as answer:
            assert answer.status == 200
        alarm = await next_event(feed.content, "alarm")
        assert alarm["button_event_id"] == "live-1"
        assert alarm["school"]["name"] == "攀枝花市第一小学"
        async with http.post(f"{base}/api/alarms/{alarm['id']}/ack", json={"by": "王"}) as answer:
            assert answer.status == 200
        ack = await next_event(feed.content, "ack")
        assert (ack["id"], ack["acknowledged"]["by"]) == (alarm["id"], "王")
        report = report_event(SCHOOL_A, 0.5)
        async with http.post(f"{base}/reports", data=report, headers=signed(SCHOOL_A, report)) as answer:
            assert answer.status == 200
        school = await next_event(feed.content, "school")
        if not school["reporting"]:  # the ack above changed the school's row too (its pending acks)
            school = await next_event(feed.content, "school")
        assert (school["id"], school["reporting"], school["networking_rate"]) == (SCHOOL_A, True, 0.5)


async def post_report(http: aiohttp.ClientSession, base: str, rate: float) -> dict[str, Any]:
    report = report_event(SCHOOL_A, rate)
    async with http.post(f"{base}/reports", data=report, headers=signed(SCHOOL_A, report)) as answer:
        assert answer.status == 200
        result: dict[str, Any] = await answer.json()
        return result


async def test_a_school_under_target_gets_a_hazard_with_a_deadline_closed_when_it_recovers(storage_url: str) -> None:
    async with running_center(center_config(storage_url)) as base, aiohttp.ClientSession() as http:
        answer = await post_report(http, base, 0.5)
        assert [h["kind"] for h in answer["hazards"]] == [UNDER_TARGET]
        assert answer["hazards"][0]["deadline"].endswith("Z")
        assert answer["hazards"][0]["level"] == "open"
        async with http.get(f"{base}/api/schools") as reply:
            row = next(s for s in await reply.json() if s["id"] == SCHOOL_A)
        assert row["open_hazards"] == 1
        answer = await post_report(http, base, 0.9)
        assert answer["hazards"] == []
        async with http.get(f"{base}/api/hazards") as reply:
            hazards = await reply.json()
    assert len(hazards) == 1
    assert hazards[0]["closed_at"] is not None
    assert hazards[0]["overdue"] is False


async def test_a_hazard_opened_by_hand_is_told_to_the_school_and_closed_by_hand(storage_url: str) -> None:
    async with running_center(center_config(storage_url)) as base, aiohttp.ClientSession() as http:
        found = {"school": SCHOOL_A, "detail": "东门围墙破损", "deadline_days": 3, "by": "巡查员"}
        async with http.post(f"{base}/api/hazards", json=found) as reply:
            assert reply.status == 201
            hazard = await reply.json()
        async with http.post(f"{base}/api/hazards", json={"school": "000000", "detail": "x"}) as reply:
            assert reply.status == 400
        async with http.post(
            f"{base}/api/hazards", json={"school": SCHOOL_A, "detail": "x", "deadline_days": -1}
        ) as reply:
            assert reply.status == 400
        answer = await post_report(http, base, 0.9)
        assert [h["text"] for h in answer["hazards"]] == ["东门围墙破损"]
        async with http.post(f"{base}/api/hazards/{hazard['id']}/close", json={"reason": "已修复"}) as reply:
            assert reply.status == 200
        answer = await post_report(http, base, 0.9)
        assert answer["hazards"] == []
        entry = {"school": SCHOOL_A, "by": "巡查员", "found": "操场摄像机画面偏暗"}
        async with http.post(f"{base}/api/patrols", json=entry) as reply:
            assert reply.status == 201
        async with http.get(f"{base}/api/patrols?school={SCHOOL_A}") as reply:
            patrols = await reply.json()
    assert [(p["by"], p["found"]) for p in patrols] == [("巡查员", "操场摄像机画面偏暗")]


def test_automatic_findings_from_a_report() -> None:
    now = 10 * DAY_S
    data = {
        "networking_rate": 0.9,
        "compliance": [
            {"criterion": "key_areas", "ok": False, "reason": "校门 无正常摄像机"},
            {"criterion": "alarm_buttons", "ok": True, "reason": "ok"},
        ],
    }
    states = {"gate": ("offline", now - 2 * DAY_S), "yard": ("offline", now - 3600.0), "hall": ("online", 0.0)}
    kinds = [(f.kind, f.subject) for f in findings(data, states, 0.8, now)]
    assert kinds == [(CAMERA_OFFLINE, "gate"), (KEY_AREA_UNCOVERED, "key_areas")]
