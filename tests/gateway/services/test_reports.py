"""Status reports to a command center and its acknowledgements back to the button, through the whole gateway:
a real Mosquitto for the buttons (and a second one as the central broker), a real aiohttp center that verifies
signatures, the app served for real. The center here is written from DESIGN.md, not from `center/`."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from gateway.app import ALARMS, REPORTS, create_app
from gateway.domain.config import GatewayConfig, parse_config
from gateway.services.acknowledgements import parse_answer
from simulators.broker import MosquittoBroker
from simulators.buttons import SimulatedButton
from tests.fixtures.center import CenterSubscriber, ReportReceiver
from tests.fixtures.mosquitto import broker
from tests.fixtures.ports import free_port
from tests.fixtures.waiting import eventually

__all__ = ["broker"]
SCHOOL = "51040200001"
SECRET = "center-test-secret"
EVERY = 0.3  # seconds between reports in these tests (30 s in the field)


@pytest.fixture
async def center() -> AsyncIterator[tuple[ReportReceiver, str]]:
    receiver = ReportReceiver(secret=SECRET)
    runner = web.AppRunner(receiver.app(), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    yield receiver, f"http://127.0.0.1:{runner.addresses[0][1]}/center/alarms"
    await runner.cleanup()


@pytest.fixture
def central(tmp_path: Path) -> Iterator[MosquittoBroker]:
    with MosquittoBroker(tmp_path / "central") as running:
        yield running


def school(tmp_path: Path, broker: MosquittoBroker, upstream: dict[str, Any]) -> GatewayConfig:
    document = {
        "school": {"id": SCHOOL, "name": "攀枝花市第一小学", "district": "东区", "students": 300, "guards": 2},
        "storage": {"path": str(tmp_path / "gw.db")},
        "mqtt": {"url": broker.url, "client_id": f"gw-{tmp_path.name}"},
        "cameras": [{"id": "gate-1", "name": "校门口", "area": "entrance", "rtsp": "rtsp://127.0.0.1:1/none"}],
        "buttons": [{"id": "guard-room", "name": "门卫室一键报警"}],
        "upstreams": [
            {"retry_first": "50ms", "retry_max": "200ms", "reports": True, "report_every": EVERY, **upstream}
        ],
        "polling": {"interval": "30s", "timeout": "500ms"},
        "web": {"listen": "127.0.0.1:0"},
    }
    return parse_config(json.dumps(document), env={})


@contextlib.asynccontextmanager
async def running(config: GatewayConfig) -> AsyncIterator[TestServer]:
    server = TestServer(create_app(config), host="127.0.0.1")
    await server.start_server()
    try:
        await asyncio.wait_for(server.app[ALARMS].listener.connected.wait(), 10)
        yield server
    finally:
        await server.close()


async def api(server: TestServer, path: str) -> Any:
    async with aiohttp.ClientSession() as session, session.get(server.make_url(path)) as response:
        assert response.status == 200
        return await response.json()


async def test_reports_go_to_the_report_url_on_schedule_signed_with_the_summary_and_cameras(
    tmp_path: Path, broker: MosquittoBroker, center: tuple[ReportReceiver, str]
) -> None:
    receiver, url = center
    config = school(tmp_path, broker, {"name": "city", "kind": "http", "url": url, "secret": SECRET})
    async with running(config):
        await eventually(lambda: len(receiver.reports) >= 4, 10, "four reports")
    assert receiver.refused == []  # every one verified with the school's secret (signing.verify)
    report = receiver.reports[-1]
    assert report["type"] == "cn.huxiao.status"
    assert report["source"] == f"huxiao/{SCHOOL}"
    data = report["data"]
    assert data["school"] == {"id": SCHOOL, "name": "攀枝花市第一小学", "district": "东区"}
    assert data["cameras"] == [{"id": "gate-1", "state": "unknown", "reasons": []}]
    assert data["camera_counts"]["total"] == 1  # the summary's counts, beside the list
    assert data["report_every_s"] == EVERY
    assert {"networking_rate", "target", "compliant", "compliance", "buttons", "upstreams"} <= set(data)
    assert len({r["id"] for r in receiver.reports}) == len(receiver.reports)  # each report is a new event
    gaps = [b - a for a, b in zip(receiver.report_times, receiver.report_times[1:], strict=False)]
    # Each gap is report_every plus the send times around it (noisy on a shared machine); on average, the cadence.
    assert all(EVERY * 0.5 <= gap <= EVERY * 10 for gap in gaps), gaps
    assert EVERY * 0.9 <= sum(gaps) / len(gaps) <= EVERY * 3, gaps


async def test_an_ack_in_the_answer_reaches_the_button_once_even_after_a_restart_and_shows_in_the_api(
    tmp_path: Path, broker: MosquittoBroker, center: tuple[ReportReceiver, str]
) -> None:
    receiver, url = center
    config = school(tmp_path, broker, {"name": "police", "kind": "http", "url": url, "secret": SECRET})
    button = SimulatedButton("guard-room", broker.port, school_id=SCHOOL)
    await asyncio.to_thread(button.connect)
    async with running(config) as server:
        pressed = button.press("panic")
        assert await asyncio.to_thread(button.wait_for_ack, pressed, "delivered")
        assert receiver.alarms[0]["data"]["button_event_id"] == pressed
        receiver.acks = [{"button_event_id": pressed, "by": "值班员张三", "at": "2026-12-01T23:59:00Z"}]
        receiver.acks.append({"button_event_id": "not-ours", "by": "x", "at": "2026-12-01T23:59:00Z"})
        receiver.hazards = [{"id": "h-1", "title": "南侧围墙破损", "level": "high", "at": "2026-12-01T08:00:00Z"}]
        assert await asyncio.to_thread(button.wait_for_ack, pressed, "acknowledged")
        seen = len(receiver.reports)
        await eventually(lambda: len(receiver.reports) >= seen + 3, 10, "three more reports listing the ack")
        alarms = await api(server, "/api/alarms")
        assert alarms[0]["acknowledged"] == {"by": "值班员张三", "at": "2026-12-01T23:59:00Z"}
        summary = await api(server, "/api/summary")
        assert summary["hazards"] == [
            {"id": "h-1", "text": "南侧围墙破损", "level": "high", "at": "2026-12-01T08:00:00Z"}
        ]
    async with running(config) as server:
        seen = len(receiver.reports)
        await eventually(lambda: len(receiver.reports) >= seen + 3, 10, "three reports after the restart")
        alarms = await api(server, "/api/alarms")
        assert alarms[0]["acknowledged"] == {"by": "值班员张三", "at": "2026-12-01T23:59:00Z"}
    assert button.acks[pressed].count("acknowledged") == 1
    assert button.acks[pressed] == ["received", "delivered", "acknowledged"]
    button.disconnect()


async def test_a_retained_acks_message_on_the_central_broker_reaches_the_button_once(
    tmp_path: Path, broker: MosquittoBroker, central: MosquittoBroker
) -> None:
    subscriber = await asyncio.to_thread(CenterSubscriber(central.port).connect)
    config = school(tmp_path, broker, {"name": "city", "kind": "mqtt", "url": central.url})
    button = SimulatedButton("guard-room", broker.port, school_id=SCHOOL)
    await asyncio.to_thread(button.connect)
    async with running(config) as server:
        pressed = button.press("panic")
        assert await asyncio.to_thread(button.wait_for_ack, pressed, "delivered")
        await eventually(lambda: len(subscriber.events("cn.huxiao.status")) >= 2, 10, "reports on the broker")
        assert f"huxiao/events/{SCHOOL}/status" in subscriber.topics()
        acks = [{"button_event_id": pressed, "by": "值班员李四", "at": "2026-12-01T23:59:30Z"}]
        await asyncio.to_thread(subscriber.publish_acks, SCHOOL, acks)
        assert await asyncio.to_thread(button.wait_for_ack, pressed, "acknowledged")
        alarms = await api(server, "/api/alarms")
        assert alarms[0]["acknowledged"] == {"by": "值班员李四", "at": "2026-12-01T23:59:30Z"}
        assert server.app[REPORTS].sent["city"] >= 2
    async with running(config):  # the retained list is handed over again on the new session: not published again
        seen = len(subscriber.events("cn.huxiao.status"))
        await eventually(lambda: len(subscriber.events("cn.huxiao.status")) >= seen + 2, 10, "reports again")
    assert button.acks[pressed].count("acknowledged") == 1
    button.disconnect()
    subscriber.disconnect()


def test_the_center_answer_is_read_as_a_list_or_an_object_and_garbage_is_a_clear_error() -> None:
    listed = parse_answer(b'[{"button_event_id": "e1", "by": "duty", "at": "t"}, {"nope": 1}]')
    assert [a.button_event_id for a in listed.acks] == ["e1"]
    assert listed.hazards is None
    wrapped = parse_answer('{"acks": [], "hazards": [{"id": 3, "description": "消防通道堵塞"}]}'.encode())
    assert [h.text for h in wrapped.hazards or ()] == ["消防通道堵塞"]
    with pytest.raises(ValueError, match="not JSON"):
        parse_answer(b"<html>")
    with pytest.raises(ValueError, match="not a list"):
        parse_answer(b'{"acks": 5}')


async def test_reports_missed_while_the_center_is_down_are_dropped_not_queued(
    tmp_path: Path, broker: MosquittoBroker
) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}/center/alarms"
    config = school(tmp_path, broker, {"name": "city", "kind": "http", "url": url, "secret": SECRET, "timeout": "1s"})
    async with running(config) as server:
        sender = server.app[REPORTS]
        await eventually(lambda: sender.failed["city"] >= 3, 10, "three reports missed")
        receiver = ReportReceiver(secret=SECRET)
        runner = web.AppRunner(receiver.app(), access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        try:
            await eventually(lambda: len(receiver.reports) >= 2, 10, "reports once the center is back")
            gaps = [b - a for a, b in zip(receiver.report_times, receiver.report_times[1:], strict=False)]
            assert all(gap >= EVERY * 0.5 for gap in gaps), gaps  # no backlog flushed at once: latest wins
        finally:
            await runner.cleanup()
        kinds = server.app[ALARMS].outbox.counts()
        assert kinds["city"] == {"pending": 0, "delivered": 0}  # reports never went through the alarm outbox
