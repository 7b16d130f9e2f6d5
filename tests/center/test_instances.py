"""Two centers on one real PostgreSQL: a console on either sees every alarm and ack, whichever instance took it."""

from __future__ import annotations

import aiohttp

from simulators.postgres import PostgresServer
from tests.center.running import center_config, running_center
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
        body = alarm_event(SCHOOL_A, "via-two")
        async with http.post(f"{two}/alarms", data=body, headers=signed(SCHOOL_A, body)) as answer:
            assert answer.status == 200
        alarm = await next_event(feed.content, "alarm")
        assert (alarm["button_event_id"], alarm["school"]["name"]) == ("via-two", "攀枝花市第一小学")
        async with http.post(f"{two}/api/alarms/{alarm['id']}/ack", json={"by": "赵"}) as answer:
            assert answer.status == 200
        ack = await next_event(feed.content, "ack")
        assert ack["acknowledged"]["by"] == "赵"
        async with http.post(f"{one}/alarms", data=body, headers=signed(SCHOOL_A, body, None)) as answer:
            assert answer.status == 409  # the other instance stored it: the id is known to both
