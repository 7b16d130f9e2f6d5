"""Two centers on one real PostgreSQL: a console on either sees every alarm and ack, whichever instance took it."""

from __future__ import annotations

import asyncio

import aiohttp

from simulators.postgres import PostgresServer
from tests.center.running import center_config, running_center, until
from tests.center.senders import SCHOOL_A, alarm_event, signed
from tests.center.test_live_and_hazards import next_event


async def test_a_console_on_one_instance_sees_alarms_and_acks_taken_by_the_other(postgres: PostgresServer) -> None:
    url = postgres.new_database()
    async with (
        running_center(center_config(url), "one") as one,
        running_center(center_config(url), "two") as two,
        aiohttp.ClientSession() as http,
        http.get(f"{one}/events") as feed,
    ):
        await feed.content.readline()
        camera = {"id": "gate-1", "name": "校门口", "stream_uri": "", "snapshot_jpeg_base64": "/9j/2Q=="}
        body = alarm_event(SCHOOL_A, "via-two", cameras=[camera])
        async with http.post(f"{two}/alarms", data=body, headers=signed(SCHOOL_A, body)) as answer:
            assert answer.status == 200
        alarm = await next_event(feed.content, "alarm")
        assert (alarm["button_event_id"], alarm["school"]["name"]) == ("via-two", "攀枝花市第一小学")
        assert [p["camera"]["name"] for p in alarm["pictures"]] == ["校门口"]
        async with http.get(one + alarm["pictures"][0]["url"]) as answer:
            assert answer.status == 200
        async with http.post(f"{two}/api/alarms/{alarm['id']}/ack", json={"by": "赵"}) as answer:
            assert answer.status == 200
        ack = await next_event(feed.content, "ack")
        assert ack["acknowledged"]["by"] == "赵"
        async with http.post(f"{one}/alarms", data=body, headers=signed(SCHOOL_A, body, None)) as answer:
            assert answer.status == 409  # the other instance stored it: the id is known to both


async def test_the_center_takes_alarms_again_after_postgresql_restarts(postgres: PostgresServer) -> None:
    async with running_center(center_config(postgres.new_database())) as base, aiohttp.ClientSession() as http:
        before = alarm_event(SCHOOL_A, "before-restart")
        async with http.post(f"{base}/alarms", data=before, headers=signed(SCHOOL_A, before)) as answer:
            assert answer.status == 200
        await asyncio.to_thread(postgres.restart)
        after = alarm_event(SCHOOL_A, "after-restart")
        statuses = []

        async def delivered() -> bool:
            # What a gateway's outbox does: the same event again until a 2xx.
            async with http.post(f"{base}/alarms", data=after, headers=signed(SCHOOL_A, after)) as answer:
                statuses.append(answer.status)
                return answer.status == 200

        await until(delivered, timeout=15.0, what="an alarm stored after the restart")
        async with http.get(f"{base}/api/alarms") as answer:
            stored = sorted(a["button_event_id"] for a in await answer.json())
    assert set(statuses) <= {200, 503}
    assert stored == ["after-restart", "before-restart"]
