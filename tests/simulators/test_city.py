"""The simulated city against a small real center (aiohttp on 127.0.0.1) that checks each school's signature."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections import Counter
from typing import Any

import pytest
from aiohttp import web

from adapters.upstreams.signing import HEADER, verify
from simulators.city import city_schools, run_city
from tests.fixtures.waiting import eventually


def test_the_mix_is_realistic_and_reproducible() -> None:
    schools = city_schools(40, seed=3)
    assert [s.id for s in schools] == [s.id for s in city_schools(40, seed=3)]
    assert len({s.id for s in schools}) == 40
    below = [s for s in schools if s.networking_rate < 0.80]
    assert 0 < len(below) < 20  # some below the 80% target, most above it
    assert any(s.silent_from == 0 for s in schools)  # some never report
    assert {s.district for s in schools} == {"东区", "西区", "仁和区", "米易县", "盐边县"}
    assert all(s.center_entry()["secret"] for s in schools)


async def test_schools_send_signed_reports_and_alarms_and_keep_the_centers_acks() -> None:
    schools = city_schools(12, seed=4)  # this seed has schools that never report and that fall silent
    for school in schools:
        school.alarm_chance = 0.5
    secrets = {s.id: s.secret for s in schools}
    reports: Counter[str] = Counter()
    alarms: list[dict[str, Any]] = []
    refused: list[str] = []

    async def checked(request: web.Request) -> dict[str, Any] | None:
        body = await request.read()
        document: dict[str, Any] = json.loads(body)
        school_id = document["source"].removeprefix("huxiao/")
        why = verify(secrets.get(school_id, "?"), body, request.headers.get(HEADER, ""), time.time())
        if why is not None:
            refused.append(why)
            return None
        return document

    async def report(request: web.Request) -> web.Response:
        document = await checked(request)
        if document is None:
            return web.json_response({}, status=401)
        assert document["type"] == "cn.huxiao.status"
        assert {"networking_rate", "compliant", "compliance", "cameras", "report_every_s"} <= set(document["data"])
        school_id = document["data"]["school"]["id"]
        reports[school_id] += 1
        acks = [
            {"button_event_id": a["data"]["button_event_id"], "by": "值班员", "at": a["time"]}
            for a in alarms
            if a["data"]["school"]["id"] == school_id
        ]
        return web.json_response({"acks": acks, "hazards": []})

    async def alarm(request: web.Request) -> web.Response:
        document = await checked(request)
        if document is None:
            return web.json_response({}, status=401)
        alarms.append(document)
        return web.json_response({})

    app = web.Application()
    app.router.add_post("/reports", report)
    app.router.add_post("/alarms", alarm)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    url = f"http://127.0.0.1:{runner.addresses[0][1]}"
    speaking = [s for s in schools if s.silent_from != 0]
    city = asyncio.create_task(run_city(url, schools, report_every_s=0.1, seed=4))
    try:
        await eventually(lambda: all(reports[s.id] >= 3 for s in speaking), 15, "every reporting school thrice")
        await eventually(lambda: any(s.acknowledged for s in schools), 10, "an ack back at a school")
    finally:
        city.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await city
        await runner.cleanup()
    assert refused == []
    assert alarms
    never = [s for s in schools if s.silent_from == 0]
    fading = [s for s in schools if s.silent_from]
    assert never
    assert fading
    assert all(reports[s.id] == 0 for s in never)
    assert all(reports[s.id] <= (s.silent_from or 0) for s in fading)
    acked = next(s for s in schools if s.acknowledged)
    assert set(acked.acknowledged) <= set(acked.alarms_sent)


async def test_a_center_outside_loopback_is_refused() -> None:
    with pytest.raises(ValueError, match=r"127\.0\.0\.0/8"):
        await run_city("http://center.example:9000", city_schools(1))  # refused before any connection
