"""The alarm path in one process: real Mosquitto, the gateway app, a real HTTP platform, simulated buttons."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
import signal
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from adapters.upstreams.signing import verify
from gateway.app import ALARMS, create_app
from gateway.domain.config import GatewayConfig, parse_config
from gateway.services.alarm_path import AlarmPath
from gateway.services.alarms import RecentIds
from simulators.broker import MosquittoBroker
from simulators.buttons import SimulatedButton
from simulators.onvif_camera import CameraFarm
from simulators.platform import PlatformReceiver
from tests.fixtures.mosquitto import broker
from tests.fixtures.paths import REPO
from tests.fixtures.platform import PLATFORM_SECRET, platform, serve_platform
from tests.fixtures.waiting import eventually

__all__ = ["broker", "platform"]
SCHOOL = "51040200001"


def school_config(
    tmp_path: Path,
    broker: MosquittoBroker,
    upstreams: list[dict[str, Any]],
    buttons: list[dict[str, Any]],
    cameras: list[dict[str, Any]] | None = None,
) -> GatewayConfig:
    document = {
        "school": {"id": SCHOOL, "name": "攀枝花市第一小学", "students": 300, "guards": 2},
        "storage": {"path": str(tmp_path / "gw.db")},
        "mqtt": {"url": broker.url, "client_id": f"gw-{tmp_path.name}"},
        "polling": {"interval": "30s", "timeout": "1s"},
        "cameras": cameras or [],
        "buttons": buttons,
        "upstreams": upstreams,
        "web": {"listen": "127.0.0.1:0"},
    }
    return parse_config(json.dumps(document), env={})


def police(url: str, **extra: Any) -> dict[str, Any]:
    return {
        "name": "police",
        "kind": "http",
        "url": url,
        "secret": PLATFORM_SECRET,
        "retry_first": "50ms",
        "retry_max": "200ms",
        **extra,
    }


@contextlib.asynccontextmanager
async def running(config: GatewayConfig) -> AsyncIterator[TestServer]:
    server = TestServer(create_app(config), host="127.0.0.1")
    await server.start_server()
    try:
        await asyncio.wait_for(server.app[ALARMS].listener.connected.wait(), 10)
        yield server
    finally:
        await server.close()


def connect(button: SimulatedButton) -> SimulatedButton:
    button.connect()
    return button


async def test_a_press_reaches_the_platform_signed_and_the_button_hears_delivered(
    tmp_path: Path, broker: MosquittoBroker, platform: tuple[PlatformReceiver, str], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    receiver, url = platform
    config = school_config(
        tmp_path, broker, [police(url)], [{"id": "guard-room", "name": "门卫室一键报警", "location": "南门"}]
    )
    async with running(config):
        button = await asyncio.to_thread(connect, SimulatedButton("guard-room", broker.port, school_id=SCHOOL))
        pressed = time.time()
        event_id = button.press("panic")
        await receiver.wait_for(1, kind="cn.huxiao.alarm.panic")
        got = receiver.events[0]
        assert got.at - pressed < 2.0  # the police policy; the bench measures the real figure
        assert got.data["button_event_id"] == event_id
        assert got.data["button"] == {"id": "guard-room", "name": "门卫室一键报警", "location": "南门"}
        assert got.data["school"]["name"] == "攀枝花市第一小学"
        document = json.loads(got.body)
        assert document["specversion"] == "1.0"
        assert document["source"] == f"huxiao/{SCHOOL}"
        assert receiver.refused == 0
        assert await asyncio.to_thread(button.wait_for_ack, event_id, "received")
        assert await asyncio.to_thread(button.wait_for_ack, event_id, "delivered")
        button.disconnect()
    # The console shows the alarm once as it arrives and once as each platform takes it, with its latency.
    lines = [r.getMessage() for r in caplog.records]
    received = [line for line in lines if "alarm received" in line]
    assert received == [f"guard-room: panic alarm received from 门卫室一键报警, button event {event_id}"]
    # (The button's goodbye may be delivered too before the gateway stops: it is another event.)
    delivered = [line for line in lines if " delivered in " in line and "alarm.panic" in line]
    assert len(delivered) == 1, lines
    assert delivered[0].startswith("police: cn.huxiao.alarm.panic from guard-room delivered in ")
    assert delivered[0].endswith(" ms (attempt 1)")
    # A clean stop is not a fault: nothing at WARNING or above on the way out (nor on the way in).
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == []


async def test_the_same_press_twice_is_one_alarm(
    tmp_path: Path, broker: MosquittoBroker, platform: tuple[PlatformReceiver, str]
) -> None:
    receiver, url = platform
    config = school_config(tmp_path, broker, [police(url)], [{"id": "b1", "name": "门卫室"}])
    async with running(config) as server:
        button = await asyncio.to_thread(connect, SimulatedButton("b1", broker.port, school_id=SCHOOL))
        first = button.press("panic", event_id="press-1")
        button.press("panic", event_id="press-1")
        button.press("test", event_id="press-2")
        await receiver.wait_for(2)
        await asyncio.to_thread(button.wait_for_ack, "press-2", "delivered")
        assert sorted(e.data["button_event_id"] for e in receiver.events) == [first, "press-2"]
        alarms = server.app[ALARMS].outbox.recent_alarms(10)
        assert [a["type"] for a in alarms] == ["test", "panic"]
        button.disconnect()


async def test_platform_down_then_up_delivers_everything_in_order_per_button(
    tmp_path: Path, broker: MosquittoBroker, platform: tuple[PlatformReceiver, str]
) -> None:
    receiver, url = platform
    receiver.fail_with = 503
    buttons: list[dict[str, Any]] = [{"id": f"b{i}", "name": f"按钮{i}", "flood": {"presses": 100}} for i in range(3)]
    config = school_config(tmp_path, broker, [police(url)], buttons)
    async with running(config) as server:
        sims = [
            await asyncio.to_thread(connect, SimulatedButton(b["id"], broker.port, school_id=SCHOOL)) for b in buttons
        ]
        sent = {s.button_id: [s.press("panic") for _ in range(20)] for s in sims}
        forwarder = server.app[ALARMS].forwarders[0]
        await eventually(lambda: forwarder.pending == 60 and forwarder.upstream.state.link == "down", what="queued")
        receiver.fail_with = None
        await receiver.wait_for(60)
        for button_id, ids in sent.items():
            arrived = [e.data["button_event_id"] for e in receiver.events if e.data["button"]["id"] == button_id]
            assert arrived == ids  # nothing lost, nothing reordered for any one button
        assert forwarder.upstream.state.link == "up"
        for sim in sims:
            sim.disconnect()


async def test_one_upstream_down_does_not_hold_back_the_other(
    tmp_path: Path, broker: MosquittoBroker, platform: tuple[PlatformReceiver, str]
) -> None:
    receiver, url = platform
    education = PlatformReceiver(secret=PLATFORM_SECRET, fail_with=500)
    runner, education_url = await serve_platform(education)
    upstreams = [police(url), {**police(education_url), "name": "education", "role": "education"}]
    config = school_config(tmp_path, broker, upstreams, [{"id": "b1", "name": "门卫室"}])
    try:
        async with running(config) as server:
            button = await asyncio.to_thread(connect, SimulatedButton("b1", broker.port, school_id=SCHOOL))
            ids = [button.press() for _ in range(5)]
            await receiver.wait_for(5)
            assert [e.data["button_event_id"] for e in receiver.events] == ids
            assert education.events == []
            outbox = server.app[ALARMS].outbox
            await eventually(lambda: outbox.counts()["police"] == {"pending": 0, "delivered": 5}, what="delivered")
            assert outbox.counts()["education"]["pending"] == 5
            education.fail_with = None
            await education.wait_for(5)
            button.disconnect()
    finally:
        await runner.cleanup()


async def test_button_will_and_heartbeat_timeout_become_offline_events(
    tmp_path: Path, broker: MosquittoBroker, platform: tuple[PlatformReceiver, str]
) -> None:
    receiver, url = platform
    buttons = [{"id": "willing", "name": "门卫室"}, {"id": "quiet", "name": "办公室", "heartbeat_timeout": "1s"}]
    config = school_config(tmp_path, broker, [police(url)], buttons)
    async with running(config) as server:
        willing = await asyncio.to_thread(connect, SimulatedButton("willing", broker.port, school_id=SCHOOL))
        quiet = await asyncio.to_thread(connect, SimulatedButton("quiet", broker.port, school_id=SCHOOL))
        service = server.app[ALARMS]
        await eventually(lambda: all(s.online for s in service.buttons.values()), what="buttons online")
        started = time.time()  # "quiet" sends nothing from now on
        willing.disconnect(clean=False)  # power cut: the broker sees the socket drop and publishes the Will
        await receiver.wait_for(2, timeout=20, kind="cn.huxiao.button.offline")
        reasons = {e.data["button"]["id"]: e.data["reason"] for e in receiver.events}
        assert reasons == {"quiet": "heartbeat_timeout", "willing": "will"}
        quiet_offline = next(e for e in receiver.events if e.data["button"]["id"] == "quiet")
        assert quiet_offline.at - started <= 1.0 + 5.0  # heartbeat timeout + 5 s
        quiet.heartbeat()
        await receiver.wait_for(1, timeout=10, kind="cn.huxiao.button.online")
        quiet.disconnect()


async def test_a_restart_does_not_replay_a_button_status_already_reported(
    tmp_path: Path, broker: MosquittoBroker, platform: tuple[PlatformReceiver, str], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="gateway.services.button_supervision")
    receiver, url = platform
    config = school_config(tmp_path, broker, [police(url)], [{"id": "guard-room", "name": "门卫室一键报警"}])
    async with running(config) as server:
        button = await asyncio.to_thread(connect, SimulatedButton("guard-room", broker.port, school_id=SCHOOL))
        await eventually(lambda: server.app[ALARMS].buttons["guard-room"].online is True, what="button online")
        button.disconnect()  # says "offline" itself (retained): the police hear it once
        await receiver.wait_for(1, kind="cn.huxiao.button.offline")
    caplog.clear()

    # The same gateway again: the broker hands its session the retained "offline" once more.
    async with running(config):
        # The broker sends the retained status before anything the button publishes later, in order.
        button = await asyncio.to_thread(connect, SimulatedButton("guard-room", broker.port, school_id=SCHOOL))
        await receiver.wait_for(1, kind="cn.huxiao.button.online")
        button.disconnect()
        await receiver.wait_for(2, kind="cn.huxiao.button.offline")
    offline_events = [e for e in receiver.events if e.type == "cn.huxiao.button.offline"]
    assert len(offline_events) == 2  # one per real goodbye, none for the replay
    lines = [r.getMessage() for r in caplog.records if ": button " in r.getMessage()]
    # Not "online (message)" for an offline status, not the replayed offline: only the changes that happened.
    assert lines == ["guard-room: button online (status)", "guard-room: button offline (will)"]


@pytest.mark.parametrize("profile", ["plain", "zigbee2mqtt", "shelly", "tasmota"])
async def test_third_party_buttons_raise_alarms(
    tmp_path: Path, broker: MosquittoBroker, platform: tuple[PlatformReceiver, str], profile: str
) -> None:
    receiver, url = platform
    config = school_config(tmp_path, broker, [police(url)], [{"id": "b1", "name": "门卫室", "profile": profile}])
    async with running(config):
        button = await asyncio.to_thread(connect, SimulatedButton("b1", broker.port, school_id=SCHOOL, profile=profile))
        button.press("panic")
        button.press("test")
        await receiver.wait_for(2)
        # A plain contact knows no test press: every message is an alarm.
        second = "panic" if profile == "plain" else "test"
        assert [e.type for e in receiver.events] == ["cn.huxiao.alarm.panic", f"cn.huxiao.alarm.{second}"]
        button.disconnect()


async def test_garbage_on_button_topics_is_counted_and_valid_alarms_still_pass(
    tmp_path: Path, broker: MosquittoBroker, platform: tuple[PlatformReceiver, str]
) -> None:
    receiver, url = platform
    config = school_config(tmp_path, broker, [police(url)], [{"id": "b1", "name": "门卫室"}])
    async with running(config) as server:
        button = await asyncio.to_thread(connect, SimulatedButton("b1", broker.port, school_id=SCHOOL))
        alarm_topic = f"huxiao/{SCHOOL}/buttons/b1/alarm"
        for payload in (
            b"",
            b"{",
            b"[]",
            b'{"type":"panic"}',
            b'{"id":"x","type":"fire"}',
            b"\xff\xfe" * 50,
            b'{"id":' + b"9" * 20000 + b"}",
        ):
            button.publish_raw(alarm_topic, payload)
        good = button.press()
        await receiver.wait_for(1)
        assert receiver.events[0].data["button_event_id"] == good
        assert server.app[ALARMS].intake.bad_payloads == 7
        button.disconnect()


async def test_linked_camera_pictures_come_with_the_alarm_and_a_dead_camera_does_not_delay_it(
    tmp_path: Path, broker: MosquittoBroker, platform: tuple[PlatformReceiver, str]
) -> None:
    receiver, url = platform
    async with CameraFarm(2) as farm:
        good, dead = farm.cameras
        cameras = [
            {
                "id": c.id,
                "name": c.id,
                "onvif": c.url,
                "username": "admin",
                "password": "admin123",
                "snapshot": f"{c.base}/onvif/snapshot.jpg",
            }
            for c in farm.cameras
        ]
        buttons = [{"id": "b1", "name": "门卫室", "cameras": [good.id, dead.id]}]
        config = school_config(tmp_path, broker, [police(url)], buttons, cameras)
        async with running(config):
            dead.hang = True
            button = await asyncio.to_thread(connect, SimulatedButton("b1", broker.port, school_id=SCHOOL))
            pressed = time.time()
            button.press()
            await receiver.wait_for(1)
            alarm = receiver.events[0]
            assert alarm.at - pressed < 1.0  # a hanging camera costs the alarm at most the 300 ms picture wait
            pictures = {c["id"]: c["snapshot_jpeg_base64"] for c in alarm.data["cameras"]}
            assert base64.b64decode(pictures[good.id]).startswith(b"\xff\xd8")
            assert pictures[dead.id] is None
            button.disconnect()


def test_signature_window_is_enforced() -> None:
    body = b'{"id":"1"}'
    from adapters.upstreams.signing import sign

    now = time.time()
    assert verify(PLATFORM_SECRET, body, sign(PLATFORM_SECRET, body, int(now)), now) is None
    assert verify(PLATFORM_SECRET, body, sign(PLATFORM_SECRET, body, int(now) - 301), now) is not None
    assert verify(PLATFORM_SECRET, body, sign("other-secret", body, int(now)), now) == "signature does not match"


# -- the alarm path on its own (gateway.alarms_only), with pictures from a tiny real HTTP camera --------------

JPEG = b"\xff\xd8\xff\xe0" + b"\x00" * 64 + b"\xff\xd9"
SLOW_CAMERA_S = 0.8  # longer than the 300 ms an alarm waits for pictures, well inside the late-picture window


class HttpSnapshots:
    """A `SnapshotSource` reading `<base>/<camera id>.jpg` from a real HTTP server."""

    def __init__(self, session: aiohttp.ClientSession, base: str) -> None:
        self._session, self._base = session, base

    async def snapshot(self, camera_id: str) -> bytes | None:
        async with self._session.get(f"{self._base}/{camera_id}.jpg") as response:
            return await response.read() if response.status == 200 else None


@contextlib.asynccontextmanager
async def camera_server() -> AsyncIterator[str]:
    async def fast(_request: web.Request) -> web.Response:
        return web.Response(body=JPEG, content_type="image/jpeg")

    async def slow(_request: web.Request) -> web.Response:
        await asyncio.sleep(SLOW_CAMERA_S)  # the camera's own slowness, not a wait in the test
        return web.Response(body=JPEG, content_type="image/jpeg")

    async def dead(_request: web.Request) -> web.Response:
        await asyncio.Event().wait()  # accepts and never answers
        raise AssertionError("unreachable")

    app = web.Application()
    app.router.add_get("/fast.jpg", fast)
    app.router.add_get("/slow.jpg", slow)
    app.router.add_get("/dead.jpg", dead)
    runner = web.AppRunner(app, shutdown_timeout=0.1)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}"
    finally:
        await runner.cleanup()


async def test_a_slow_camera_picture_follows_the_alarm_and_a_dead_one_never_delays_it(
    tmp_path: Path, broker: MosquittoBroker, platform: tuple[PlatformReceiver, str]
) -> None:
    receiver, url = platform
    cameras = [{"id": c, "name": c, "rtsp": f"rtsp://admin:pw@127.0.0.1:8554/{c}"} for c in ("fast", "slow", "dead")]
    buttons = [{"id": "b1", "name": "门卫室", "cameras": ["fast", "slow", "dead"]}]
    config = school_config(tmp_path, broker, [police(url)], buttons, cameras)
    async with (
        camera_server() as base,
        aiohttp.ClientSession() as session,
        AlarmPath(config, snapshots=HttpSnapshots(session, base)) as path,
    ):
        await asyncio.wait_for(path.service.listener.connected.wait(), 10)
        button = await asyncio.to_thread(connect, SimulatedButton("b1", broker.port, school_id=SCHOOL))
        pressed = time.time()
        event_id = button.press()
        await receiver.wait_for(1, kind="cn.huxiao.alarm.panic")
        alarm = receiver.events[0]
        assert alarm.at - pressed < 1.0  # a camera that never answers costs at most the 300 ms picture wait
        shots = {c["id"]: c for c in alarm.data["cameras"]}
        assert base64.b64decode(shots["fast"]["snapshot_jpeg_base64"]) == JPEG
        assert shots["slow"]["snapshot_jpeg_base64"] is None
        assert shots["dead"]["snapshot_jpeg_base64"] is None
        assert shots["fast"]["stream_uri"] == "rtsp://127.0.0.1:8554/fast"  # no credentials leave the school
        await receiver.wait_for(1, timeout=10, kind="cn.huxiao.alarm.pictures")
        late = next(e for e in receiver.events if e.type == "cn.huxiao.alarm.pictures")
        assert late.data["button_event_id"] == event_id
        assert [c["id"] for c in late.data["cameras"]] == ["slow"]
        button.disconnect()


async def test_a_retained_press_is_not_replayed_as_an_alarm_when_the_gateway_subscribes(
    tmp_path: Path, broker: MosquittoBroker, platform: tuple[PlatformReceiver, str]
) -> None:
    receiver, url = platform
    device = await asyncio.to_thread(
        connect, SimulatedButton("z1", broker.port, school_id=SCHOOL, profile="zigbee2mqtt")
    )
    # zigbee2mqtt with `retain: true` leaves the device's last state, action included, in the retained store.
    stored = device.publish_raw("zigbee2mqtt/z1", b'{"action":"single","battery":100}', qos=1, retain=True)
    await asyncio.to_thread(stored.wait_for_publish, 5)  # in the broker's retained store before we subscribe
    config = school_config(tmp_path, broker, [police(url)], [{"id": "z1", "name": "楼梯", "profile": "zigbee2mqtt"}])
    async with AlarmPath(config) as path:
        await asyncio.wait_for(path.service.listener.connected.wait(), 10)
        device.press()  # a real press after the subscription: it must be the only alarm
        await receiver.wait_for(1, kind="cn.huxiao.alarm.panic")
        forwarder = path.service.forwarders[0]
        await eventually(lambda: forwarder.pending == 0, what="delivered")
        assert len([e for e in receiver.events if e.type == "cn.huxiao.alarm.panic"]) == 1
        outbox = path.service.outbox
        await eventually(lambda: outbox.counts()["police"] == {"pending": 0, "delivered": 1}, what="recorded")
    device.disconnect()


async def test_a_configured_button_never_heard_from_is_reported_offline(
    tmp_path: Path, broker: MosquittoBroker, platform: tuple[PlatformReceiver, str]
) -> None:
    receiver, url = platform
    config = school_config(tmp_path, broker, [police(url)], [{"id": "ghost", "name": "操场", "heartbeat_timeout": 1}])
    async with AlarmPath(config):
        started = time.time()
        await receiver.wait_for(1, timeout=10, kind="cn.huxiao.button.offline")
        offline = receiver.events[0]
        assert offline.data["button"]["id"] == "ghost"
        assert offline.data["reason"] == "heartbeat_timeout"
        assert offline.at - started <= 1.0 + 5.0


async def test_the_alarm_path_runs_as_a_process_and_stops_cleanly_on_sigterm(
    tmp_path: Path, broker: MosquittoBroker, platform: tuple[PlatformReceiver, str]
) -> None:
    receiver, url = platform
    config_file = tmp_path / "school.yaml"
    document = {
        "school": {"id": SCHOOL, "name": "一小"},
        "storage": {"path": str(tmp_path / "gw.db")},
        "mqtt": {"url": broker.url},
        "buttons": [{"id": "b1", "name": "门卫室"}],
        "upstreams": [police(url)],
    }
    config_file.write_text(json.dumps(document), encoding="utf-8")
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "gateway.alarms_only",
        "-c",
        str(config_file),
        "--log-level",
        "WARNING",
        cwd=REPO,
        stdout=asyncio.subprocess.PIPE,
    )
    try:
        assert process.stdout is not None
        async with asyncio.timeout(30):
            assert (await process.stdout.readline()).strip() == b"READY"
        button = await asyncio.to_thread(connect, SimulatedButton("b1", broker.port, school_id=SCHOOL))
        event_id = button.press()
        await receiver.wait_for(1, kind="cn.huxiao.alarm.panic")
        assert receiver.events[0].data["button_event_id"] == event_id
        assert await asyncio.to_thread(button.wait_for_ack, event_id, "delivered")
        button.disconnect()
        process.send_signal(signal.SIGTERM)
        async with asyncio.timeout(5):  # the spec: a SIGTERM stops the gateway within 5 s
            assert await process.wait() == 0
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


def test_the_ids_told_delivered_are_bounded_and_keep_the_newest() -> None:
    """A gateway running for months remembers the last alarms it told `delivered`, not every one."""
    told = RecentIds(3)
    for event_id in ("a", "b", "c", "a", "d"):
        told.add(event_id)
    assert len(told) == 3
    # "a" added again counts as new, so "b" is the oldest, forgotten.
    assert [event_id for event_id in "abcd" if event_id in told] == ["a", "c", "d"]
