"""Signed buttons for real: a Mosquitto, the gateway app, an HTTP platform. Forged, replayed and stale presses are
refused and counted in /metrics; a replay stays refused after a restart; a device clock far off never becomes the
alarm's press time."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp.test_utils import TestServer
from prometheus_client.parser import text_string_to_metric_families

from gateway.app import ALARMS
from gateway.domain.config import GatewayConfig, parse_config
from simulators.broker import MosquittoBroker
from simulators.buttons import SimulatedButton
from simulators.platform import PlatformReceiver
from tests.fixtures.gateway_app import SCHOOL, connected, running
from tests.fixtures.mosquitto import broker
from tests.fixtures.platform import PLATFORM_SECRET, platform
from tests.fixtures.waiting import eventually

__all__ = ["broker", "platform"]
SECRET = "guard-room-secret-9f2"


def config(tmp_path: Path, broker: MosquittoBroker, url: str) -> GatewayConfig:
    document = {
        "school": {"id": SCHOOL, "name": "攀枝花市第一小学"},
        "storage": {"path": str(tmp_path / "gw.db")},
        "mqtt": {"url": broker.url, "client_id": f"gw-{tmp_path.name}"},
        "buttons": [
            {"id": "guard-room", "name": "门卫室", "secret": "${BTN_SECRET}"},
            {"id": "office", "name": "校长室"},
        ],
        "upstreams": [{"name": "police", "kind": "http", "url": url, "secret": PLATFORM_SECRET, "retry_first": "50ms"}],
        "web": {"listen": "127.0.0.1:0"},
    }
    return parse_config(json.dumps(document), env={"BTN_SECRET": SECRET})


async def refused(server: TestServer) -> dict[tuple[str, str], float]:
    async with aiohttp.ClientSession() as session, session.get(server.make_url("/metrics")) as answer:
        text = await answer.text()
    found: dict[tuple[str, str], float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "huxiao_refused_messages_total":
                found[(sample.labels["button"], sample.labels["reason"])] = sample.value
    return found


def topic(button_id: str) -> str:
    return f"huxiao/{SCHOOL}/buttons/{button_id}/alarm"


async def test_forged_replayed_and_stale_presses_are_refused_and_counted(
    tmp_path: Path, broker: MosquittoBroker, platform: tuple[PlatformReceiver, str]
) -> None:
    receiver, url = platform
    cfg = config(tmp_path, broker, url)
    async with running(cfg) as server:
        guard = await asyncio.to_thread(
            connected, SimulatedButton("guard-room", broker.port, school_id=SCHOOL, secret=SECRET)
        )
        good = guard.press("panic")
        await receiver.wait_for(1, kind="cn.huxiao.alarm.panic")
        first = guard.huxiao_payload("kept-for-replay", "panic", datetime.now(UTC).isoformat())
        guard.publish_raw(topic("guard-room"), json.dumps(first).encode()).wait_for_publish(5)
        await receiver.wait_for(2, kind="cn.huxiao.alarm.panic")
        # The attacks: unsigned, signed with a guessed key, the captured message again under a new id, stale.
        unsigned = {"id": "u1", "type": "panic", "ts": datetime.now(UTC).isoformat()}
        guessed = SimulatedButton("guard-room", broker.port, school_id=SCHOOL, secret="guessed", first_seq=100)
        forged = guessed.huxiao_payload("f1", "panic", datetime.now(UTC).isoformat())
        replay = {**first, "id": "r1"}
        old = guard.huxiao_payload("s1", "panic", (datetime.now(UTC) - timedelta(minutes=5)).isoformat())
        for attack in (unsigned, forged, replay, old):
            guard.publish_raw(topic("guard-room"), json.dumps(attack).encode()).wait_for_publish(5)
        last = guard.press("panic")  # a genuine press after the attacks: it goes through
        assert await asyncio.to_thread(guard.wait_for_ack, last, "delivered")
        ids = [e.data["button_event_id"] for e in receiver.events if e.type == "cn.huxiao.alarm.panic"]
        assert ids == [good, "kept-for-replay", last]
        counts = await refused(server)
        assert counts == {
            ("guard-room", "no_mac"): 1,
            ("guard-room", "bad_mac"): 1,
            ("guard-room", "replay"): 1,  # the mac does not cover the id: a new id on a captured seq is a replay
            ("guard-room", "stale"): 1,
        }
        guard.disconnect()
    # After a restart, the captured message (still within the time window) is a replay.
    async with running(cfg) as server:
        intruder = await asyncio.to_thread(connected, SimulatedButton("office", broker.port, school_id=SCHOOL))
        intruder.publish_raw(topic("guard-room"), json.dumps(first).encode()).wait_for_publish(5)
        await eventually(
            lambda: server.app[ALARMS].intake.refused[("guard-room", "replay")] == 1,
            what="the replay refused after restart",
        )
        intruder.disconnect()


async def test_a_device_clock_far_off_is_kept_as_its_claim_not_as_the_press_time(
    tmp_path: Path, broker: MosquittoBroker, platform: tuple[PlatformReceiver, str]
) -> None:
    receiver, url = platform
    async with running(config(tmp_path, broker, url)):
        office = await asyncio.to_thread(connected, SimulatedButton("office", broker.port, school_id=SCHOOL))
        before = datetime.now(UTC)
        for event_id, ts in (("y9999", "9999-12-31T23:59:59Z"), ("y1970", "1970-01-01T00:00:00Z")):
            payload: dict[str, Any] = {"id": event_id, "type": "panic", "ts": ts}
            office.publish_raw(topic("office"), json.dumps(payload).encode()).wait_for_publish(5)
        close = (datetime.now(UTC) - timedelta(seconds=3)).isoformat()
        office.publish_raw(topic("office"), json.dumps({"id": "near", "ts": close}).encode()).wait_for_publish(5)
        await receiver.wait_for(3, kind="cn.huxiao.alarm.panic")
        by_id = {e.data["button_event_id"]: e.data for e in receiver.events}
        for event_id, year in (("y9999", "9999"), ("y1970", "1970")):
            data = by_id[event_id]
            assert data["pressed_at"] == data["received_at"]
            pressed = datetime.fromisoformat(data["pressed_at"].replace("Z", "+00:00"))
            assert abs((pressed - before).total_seconds()) < 10
            assert data["device_time"].startswith(year)
        near = by_id["near"]
        assert near["pressed_at"] == near["device_time"]  # a device clock a few seconds behind is believed
        assert near["pressed_at"] < near["received_at"]
        office.disconnect()
