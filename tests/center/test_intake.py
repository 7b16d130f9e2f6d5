"""Signed alarms and reports over real HTTP into a running center: stored once, refused when forged, replayed or
stale (and counted), answered with operator acks and hazards."""

from __future__ import annotations

import base64
import json
import time

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

from adapters.upstreams.signing import HEADER, sign
from tests.center.running import center_config, running_center
from tests.center.senders import SCHOOL_A, SCHOOL_B, alarm_event, pictures_event, report_event, signed


def refused_counts(text: str) -> dict[str, float]:
    for family in text_string_to_metric_families(text):
        if family.name == "huxiao_center_refused":
            return {s.labels["reason"]: s.value for s in family.samples if s.name.endswith("_total")}
    raise AssertionError("no huxiao_center_refused_total in /metrics")


async def test_an_alarm_is_stored_once_and_a_duplicate_id_answers_409(storage_url: str) -> None:
    async with running_center(center_config(storage_url)) as base, aiohttp.ClientSession() as http:
        body = alarm_event(SCHOOL_A, "press-1")
        async with http.post(f"{base}/alarms", data=body, headers=signed(SCHOOL_A, body)) as answer:
            assert answer.status == 200
        async with http.post(f"{base}/alarms", data=body, headers=signed(SCHOOL_A, body, time.time() + 1)) as answer:
            assert answer.status == 409
        async with http.get(f"{base}/api/alarms") as answer:
            rows = await answer.json()
    assert len(rows) == 1
    row = rows[0]
    assert row["school"] == {"id": SCHOOL_A, "name": "攀枝花市第一小学", "district": "东区"}
    assert (row["button"]["id"], row["type"], row["button_event_id"], row["acknowledged"]) == (
        "guard-room",
        "panic",
        "press-1",
        None,
    )


async def test_forged_stale_replayed_and_unknown_are_refused_and_counted(storage_url: str) -> None:
    async with running_center(center_config(storage_url)) as base, aiohttp.ClientSession() as http:
        body = alarm_event(SCHOOL_A)
        forged = {HEADER: sign("not-the-secret", body, int(time.time()))}
        stale = signed(SCHOOL_A, body, time.time() - 400)
        other_school = signed(SCHOOL_B, body)  # signed with B's secret, but source names A
        for headers in (forged, stale, other_school, {}):
            async with http.post(f"{base}/alarms", data=body, headers=headers) as answer:
                assert answer.status == 401
        good = signed(SCHOOL_A, body)
        async with http.post(f"{base}/alarms", data=body, headers=good) as answer:
            assert answer.status == 200
        async with http.post(f"{base}/alarms", data=body, headers=good) as answer:
            assert answer.status == 409  # the very same request again: a replay
        unknown = alarm_event("51049999999")
        async with http.post(f"{base}/alarms", data=unknown, headers={HEADER: "t=1,v1=00"}) as answer:
            assert answer.status == 403
        async with http.post(f"{base}/alarms", data=b"{not json", headers=good) as answer:
            assert answer.status == 400
        async with http.get(f"{base}/api/alarms") as answer:
            assert len(await answer.json()) == 1
        async with http.get(f"{base}/metrics") as answer:
            counts = refused_counts(await answer.text())
    assert counts["forged"] == 3
    assert counts["stale"] == 1
    assert counts["replayed"] == 1
    assert counts["unknown_school"] == 1
    assert counts["malformed"] == 1


async def test_an_operator_ack_reaches_the_school_in_its_next_report_answer(storage_url: str) -> None:
    async with running_center(center_config(storage_url)) as base, aiohttp.ClientSession() as http:
        body = alarm_event(SCHOOL_A, "press-7")
        async with http.post(f"{base}/alarms", data=body, headers=signed(SCHOOL_A, body)) as answer:
            alarm_id = (await answer.json())["id"]
        report = report_event(SCHOOL_A, 0.9)
        async with http.post(f"{base}/reports", data=report, headers=signed(SCHOOL_A, report)) as answer:
            assert answer.status == 200
            assert (await answer.json())["acks"] == []
        async with http.post(f"{base}/api/alarms/{alarm_id}/ack", json={"by": "值班员张三"}) as answer:
            assert answer.status == 200
            acked = await answer.json()
        assert acked["acknowledged"]["by"] == "值班员张三"
        report = report_event(SCHOOL_A, 0.9)
        async with http.post(f"{base}/reports", data=report, headers=signed(SCHOOL_A, report)) as answer:
            acks = (await answer.json())["acks"]
        other = report_event(SCHOOL_B, 0.9)
        async with http.post(f"{base}/reports", data=other, headers=signed(SCHOOL_B, other)) as answer:
            other_acks = (await answer.json())["acks"]
        async with http.post(f"{base}/api/alarms/nope/ack", json={}) as answer:
            assert answer.status == 404
    assert [(a["button_event_id"], a["by"]) for a in acks] == [("press-7", "值班员张三")]
    assert acks[0]["at"].endswith("Z")
    assert other_acks == []


async def test_city_rates_and_silent_schools_from_reports(storage_url: str) -> None:
    async with running_center(center_config(storage_url)) as base, aiohttp.ClientSession() as http:
        report = report_event(SCHOOL_A, 0.9, total=10, compliant=True)
        async with http.post(f"{base}/reports", data=report, headers=signed(SCHOOL_A, report)) as answer:
            assert answer.status == 200
        async with http.get(f"{base}/api/city") as answer:
            city = await answer.json()
        async with http.get(f"{base}/api/schools") as answer:
            schools = {s["id"]: s for s in await answer.json()}
        async with http.get(f"{base}/api/city.csv") as answer:
            csv_text = (await answer.read()).decode("utf-8-sig")
    assert (city["schools"], city["reporting"], city["networking_rate"], city["compliant_share"]) == (2, 1, 0.9, 0.5)
    assert city["target"] == {"networking_rate": 0.8, "compliant_share": 0.8}
    east = next(d for d in city["by_district"] if d["district"] == "东区")
    assert (east["reporting"], east["networking_rate"]) == (1, 0.9)
    assert schools[SCHOOL_A]["reporting"] is True
    assert schools[SCHOOL_B]["reporting"] is False
    assert schools[SCHOOL_B]["last_report_at"] is None
    assert "全市 city,2,1,90.0,50.0" in csv_text.splitlines()


async def test_reads_need_a_token_off_loopback_and_acks_need_the_duty_token(storage_url: str) -> None:
    config = center_config(storage_url, tokens={"duty": "duty-token"})
    async with running_center(config) as base, aiohttp.ClientSession() as http:
        body = alarm_event(SCHOOL_A)
        async with http.post(f"{base}/alarms", data=body, headers=signed(SCHOOL_A, body)) as answer:
            alarm_id = (await answer.json())["id"]
        async with http.post(f"{base}/api/alarms/{alarm_id}/ack", json={}) as answer:
            assert answer.status == 401
        bearer = {"Authorization": "Bearer duty-token"}
        async with http.post(f"{base}/api/alarms/{alarm_id}/ack", json={}, headers=bearer) as answer:
            assert answer.status == 200
            assert (await answer.json())["acknowledged"]["by"] == "duty"
        async with http.get(f"{base}/api/alarms") as answer:
            text = await answer.text()
    assert "duty-token" not in text
    assert "secret-a" not in text
    assert json.loads(text)[0]["acknowledged"]["by"] == "duty"


async def test_late_pictures_join_their_alarm_and_are_served_as_jpeg(storage_url: str) -> None:
    jpeg = b"\xff\xd8\xff\xe0fake-but-bytes\xff\xd9"
    camera = {
        "id": "gate-1",
        "name": "校门口",
        "stream_uri": "",
        "snapshot_jpeg_base64": base64.b64encode(jpeg).decode(),
    }
    async with running_center(center_config(storage_url)) as base, aiohttp.ClientSession() as http:
        body = alarm_event(SCHOOL_A, "press-9")
        async with http.post(f"{base}/alarms", data=body, headers=signed(SCHOOL_A, body)) as answer:
            assert answer.status == 200
        pictures = pictures_event(SCHOOL_A, "press-9", [camera])
        async with http.post(f"{base}/alarms", data=pictures, headers=signed(SCHOOL_A, pictures)) as answer:
            assert answer.status == 200
        async with http.get(f"{base}/api/alarms") as answer:
            rows = await answer.json()
        assert len(rows) == 1
        assert [p["camera"]["name"] for p in rows[0]["pictures"]] == ["校门口"]
        async with http.get(base + rows[0]["pictures"][0]["url"]) as answer:
            assert answer.content_type == "image/jpeg"
            assert await answer.read() == jpeg


async def test_garbage_by_the_hundred_does_not_take_the_center_down(storage_url: str) -> None:
    junk = [b"", b"null", b"[]", b'{"id": 1}', b"\xff\xfe\x00", b'{"id":"x","source":"nope","type":"t"}'] * 40
    async with running_center(center_config(storage_url)) as base, aiohttp.ClientSession() as http:
        for body in junk:
            async with http.post(f"{base}/alarms", data=body, headers=signed(SCHOOL_A, body)) as answer:
                assert answer.status == 400
        async with http.post(f"{base}/reports", data=b"{}", headers={HEADER: "garbage"}) as answer:
            assert answer.status == 400
        good = alarm_event(SCHOOL_A, "after-junk")
        async with http.post(f"{base}/alarms", data=good, headers=signed(SCHOOL_A, good)) as answer:
            assert answer.status == 200
        async with http.get(f"{base}/healthz") as answer:
            assert (await answer.json())["status"] == "ok"
