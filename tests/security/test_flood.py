"""A button pressed over and over, for real through Mosquitto and the gateway: five alarms, then one flood event
with the count; another button's press in the middle of it is not held back."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

from gateway.domain.config import parse_config
from simulators.broker import MosquittoBroker
from simulators.buttons import SimulatedButton
from simulators.platform import PlatformReceiver
from tests.fixtures.gateway_app import SCHOOL, connected, running
from tests.fixtures.mosquitto import broker
from tests.fixtures.platform import PLATFORM_SECRET, platform

__all__ = ["broker", "platform"]


async def test_a_flooding_button_sends_five_alarms_then_one_flood_event_and_others_pass(
    tmp_path: Path, broker: MosquittoBroker, platform: tuple[PlatformReceiver, str]
) -> None:
    receiver, url = platform
    document = {
        "school": {"id": SCHOOL, "name": "攀枝花市第一小学"},
        "storage": {"path": str(tmp_path / "gw.db")},
        "mqtt": {"url": broker.url, "client_id": f"gw-{tmp_path.name}"},
        # `within` shortened from the default 10 s so the test waits one second of quiet, not ten.
        "buttons": [
            {"id": "stuck", "name": "教学楼", "flood": {"presses": 5, "within": "1s"}},
            {"id": "guard-room", "name": "门卫室"},
        ],
        "upstreams": [{"name": "police", "kind": "http", "url": url, "secret": PLATFORM_SECRET, "retry_first": "50ms"}],
        "web": {"listen": "127.0.0.1:0"},
    }
    async with running(parse_config(json.dumps(document), env={})):
        stuck = await asyncio.to_thread(connected, SimulatedButton("stuck", broker.port, school_id=SCHOOL))
        guard = await asyncio.to_thread(connected, SimulatedButton("guard-room", broker.port, school_id=SCHOOL))
        sent = [stuck.press("panic") for _ in range(8)]
        pressed = time.monotonic()
        real = guard.press("panic")
        sent += [stuck.press("panic") for _ in range(4)]
        assert await asyncio.to_thread(guard.wait_for_ack, real, "delivered")
        assert time.monotonic() - pressed < 2.0  # not held behind the flood
        await receiver.wait_for(1, kind="cn.huxiao.button.flood", timeout=10)
        panics = [e.data["button_event_id"] for e in receiver.events if e.type == "cn.huxiao.alarm.panic"]
        assert [p for p in panics if p != real] == sent[:5]
        floods = [e for e in receiver.events if e.type == "cn.huxiao.button.flood"]
        assert len(floods) == 1
        assert floods[0].data["count"] == 7
        assert floods[0].data["button"]["id"] == "stuck"
        stuck.disconnect()
        guard.disconnect()
