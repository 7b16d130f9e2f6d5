"""The whole chain with real processes, as a city runs it: a simulated school (ONVIF cameras, a button on the
school's Mosquitto) → `huxiao run` → the central Mosquitto (or HTTP) → `huxiao center` → the duty officer's ack
through the center's API → `acknowledged` on the button's ack topic, once, under the alarm's own id."""

from __future__ import annotations

import asyncio
import json
import secrets
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml

from simulators.broker import MosquittoBroker
from simulators.buttons import SimulatedButton
from simulators.onvif_camera import CameraFarm
from tests.center.running import until
from tests.fixtures.mosquitto import broker
from tests.fixtures.ports import free_port
from tests.fixtures.processes import huxiao_process

__all__ = ["broker"]
SCHOOL = "51040200001"
# Seconds between a gateway's status reports here (30 s in the field): the http upstream's ack rides on the answer.
REPORT_EVERY_S = 0.5
# The whole chain on loopback takes well under a second; the bound leaves room for a loaded machine.
CHAIN_WITHIN_S = 10.0


@pytest.fixture
def central(tmp_path: Path) -> Iterator[MosquittoBroker]:
    """The city's broker, apart from the school's own."""
    with MosquittoBroker(tmp_path / "central") as running:
        yield running


@pytest.fixture
async def cameras() -> AsyncIterator[CameraFarm]:
    async with CameraFarm(0) as farm:
        for camera_id in ("gate-1", "guard"):
            await farm.add_camera(camera_id)
        yield farm


def _write(path: Path, document: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump(document, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


def school_config(tmp_path: Path, broker: MosquittoBroker, farm: CameraFarm, upstream: dict[str, Any]) -> Path:
    return _write(
        tmp_path / "school.yaml",
        {
            "school": {"id": SCHOOL, "name": "攀枝花市第一小学", "district": "东区", "students": 300, "guards": 2},
            "storage": {"path": str(tmp_path / "gateway.db")},
            "mqtt": {"url": broker.url},
            "polling": {"interval": "2s", "timeout": "1s"},
            "cameras": [
                {
                    "id": camera.id,
                    "name": camera.id,
                    "area": "entrance",
                    "onvif": camera.url,
                    "username": "admin",
                    "password": "admin123",
                    "snapshot": f"{camera.base}/onvif/snapshot.jpg",
                }
                for camera in farm.cameras
            ],
            "buttons": [{"id": "guard-room", "name": "门卫室一键报警", "location": "南门", "cameras": ["gate-1"]}],
            "upstreams": [
                {"name": "city", "retry_first": "100ms", "retry_max": "1s", "reports": True, **upstream},
            ],
            "web": {"listen": f"127.0.0.1:{free_port()}"},
        },
    )


def center_config(tmp_path: Path, port: int, duty: str, secret: str, mqtt_url: str | None) -> Path:
    document: dict[str, Any] = {
        "center": {"listen": f"127.0.0.1:{port}"},
        "storage": {"url": f"sqlite:///{tmp_path / 'center.db'}"},
        "schools": [{"id": SCHOOL, "name": "攀枝花市第一小学", "district": "东区", "secret": secret}],
        "web": {"tokens": {"duty": duty}},
    }
    if mqtt_url is not None:
        document["mqtt"] = {"url": mqtt_url, "topic": "huxiao/events", "share": "center"}
    return _write(tmp_path / "center.yaml", document)


async def _the_operator_acknowledges_and_the_button_hears_it_once(
    tmp_path: Path, broker: MosquittoBroker, farm: CameraFarm, central: MosquittoBroker | None
) -> None:
    port = free_port()
    center_url = f"http://127.0.0.1:{port}"
    duty, secret = secrets.token_urlsafe(16), secrets.token_urlsafe(16)
    upstream = (
        {"kind": "mqtt", "url": central.url, "report_every": REPORT_EVERY_S}
        if central is not None
        else {"kind": "http", "url": f"{center_url}/alarms", "secret": secret, "report_every": REPORT_EVERY_S}
    )
    center_yaml = center_config(tmp_path, port, duty, secret, central.url if central else None)
    school_yaml = school_config(tmp_path, broker, farm, upstream)
    gateway_url = f"http://{yaml.safe_load(school_yaml.read_text(encoding='utf-8'))['web']['listen']}"
    button = SimulatedButton("guard-room", broker.port, school_id=SCHOOL)
    await asyncio.to_thread(button.connect)
    async with (
        huxiao_process("center", center_yaml, center_url, tmp_path / "center.log"),
        huxiao_process("run", school_yaml, gateway_url, tmp_path / "gateway.log"),
        aiohttp.ClientSession() as http,
    ):

        async def alarms() -> list[dict[str, Any]]:
            async with http.get(f"{center_url}/api/alarms") as answer:
                assert answer.status == 200
                rows: list[dict[str, Any]] = await answer.json()
                return rows

        async def school_reporting() -> bool:
            async with http.get(f"{center_url}/api/schools") as answer:
                return any(row["id"] == SCHOOL and row["reporting"] for row in await answer.json())

        await until(school_reporting, CHAIN_WITHIN_S, "the school's gateway reporting to the center")
        pressed = button.press("panic")
        assert await asyncio.to_thread(button.wait_for_ack, pressed, "delivered", CHAIN_WITHIN_S)

        async def arrived() -> bool:
            return any(row["button_event_id"] == pressed for row in await alarms())

        await until(arrived, CHAIN_WITHIN_S, "the alarm on the center")
        alarm = next(row for row in await alarms() if row["button_event_id"] == pressed)
        assert alarm["school"]["id"] == SCHOOL
        assert alarm["button"]["id"] == "guard-room"
        assert alarm["type"] == "panic"
        assert alarm["acknowledged"] is None

        async def with_picture() -> bool:  # the gate camera's snapshot, with the alarm or just after it
            return any(row["button_event_id"] == pressed and row["pictures"] for row in await alarms())

        await until(with_picture, CHAIN_WITHIN_S, "the gate camera's picture on the center")
        picture = next(row for row in await alarms() if row["button_event_id"] == pressed)["pictures"][0]
        assert picture["camera"]["id"] == "gate-1"
        async with http.get(f"{center_url}{picture['url']}") as answer:
            assert answer.status == 200
            assert (await answer.read())[:2] == b"\xff\xd8"  # a JPEG, as the simulated camera served it

        url = f"{center_url}/api/alarms/{alarm['id']}/ack"
        async with http.post(url, json={"by": "值班员张三"}) as refused:
            assert refused.status in (401, 403)  # an ack needs the duty token
        headers = {"Authorization": f"Bearer {duty}"}
        async with http.post(url, json={"by": "值班员张三"}, headers=headers) as answer:
            assert answer.status == 200, await answer.text()
            assert (await answer.json())["acknowledged"]["by"] == "值班员张三"

        assert await asyncio.to_thread(button.wait_for_ack, pressed, "acknowledged", CHAIN_WITHIN_S)
        # Several more reports (and, over MQTT, the retained list) go by: the button is still told once.
        async with http.get(f"{center_url}/api/schools") as answer:
            before = next(row for row in await answer.json() if row["id"] == SCHOOL)["last_report_at"]

        async def reported_again() -> bool:
            async with http.get(f"{center_url}/api/schools") as answer:
                row = next(row for row in await answer.json() if row["id"] == SCHOOL)
                return bool(row["last_report_at"] != before)

        for _ in range(3):
            await until(reported_again, CHAIN_WITHIN_S, "another report")
            async with http.get(f"{center_url}/api/schools") as answer:
                before = next(row for row in await answer.json() if row["id"] == SCHOOL)["last_report_at"]
        async with http.get(f"{gateway_url}/api/alarms") as answer:
            on_gateway = next(a for a in await answer.json() if a["button_event_id"] == pressed)
        assert on_gateway["acknowledged"]["by"] == "值班员张三"
    button.disconnect()
    # Same alarm id for all three, each said once, in order.
    assert button.acks[pressed] == ["received", "delivered", "acknowledged"], json.dumps(button.acks)


async def test_over_the_mqtt_upstream_an_operator_ack_reaches_the_button_once(
    tmp_path: Path, broker: MosquittoBroker, central: MosquittoBroker, cameras: CameraFarm
) -> None:
    await _the_operator_acknowledges_and_the_button_hears_it_once(tmp_path, broker, cameras, central)


async def test_over_the_http_upstream_an_operator_ack_reaches_the_button_once(
    tmp_path: Path, broker: MosquittoBroker, cameras: CameraFarm
) -> None:
    await _the_operator_acknowledges_and_the_button_hears_it_once(tmp_path, broker, cameras, None)
