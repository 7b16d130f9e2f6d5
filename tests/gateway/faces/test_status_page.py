"""The status page in a real browser (Debian's Chromium driven by Playwright) against a running gateway with
simulated cameras: the right numbers, the language switch, and an update when a camera goes down."""

from __future__ import annotations

import asyncio
import json
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp.test_utils import TestServer
from playwright.async_api import Browser, async_playwright

from gateway.app import STATUS, create_app
from gateway.domain.config import parse_config
from simulators.broker import MosquittoBroker
from simulators.buttons import SimulatedButton
from simulators.onvif_camera import CameraFarm
from simulators.rtsp import RtspServer
from tests.fixtures.mosquitto import broker
from tests.fixtures.paths import REPO
from tests.fixtures.platform import PLATFORM_SECRET, platform
from tests.fixtures.rtsp import rtsp_server
from tests.fixtures.waiting import eventually

__all__ = ["broker", "platform", "rtsp_server"]
SCHOOL = "51040200001"
ARTIFACTS = REPO / "test-artifacts"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
HAVE_CHROMIUM = Path(CHROMIUM).exists()
# A headless browser on a machine without internet: no background fetches, no sandbox (CI runs as root).
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    if not HAVE_CHROMIUM:
        pytest.fail("chromium is not installed: run ./dev setup as root, or: sudo apt-get install chromium")
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield launched
        await launched.close()


async def test_status_page_shows_the_school_switches_language_and_follows_a_camera_down(
    browser: Browser, rtsp_server: RtspServer, tmp_path: Path
) -> None:
    async with CameraFarm(3) as farm:
        names = ["南门校门口", "操场", "食堂"]
        cameras = [
            {
                "id": c.id,
                "name": name,
                "area": "entrance",
                "onvif": c.url,
                "username": "admin",
                "password": "admin123",
                "rtsp": rtsp_server.url("moving"),
            }
            for c, name in zip(farm.cameras, names, strict=True)
        ]
        document = {
            "school": {"id": "51040200001", "name": "攀枝花市第一小学", "students": 300, "guards": 2},
            "storage": {"path": str(tmp_path / "gw.db")},
            "mqtt": {"url": "mqtt://127.0.0.1:9"},  # no broker: the page must work without buttons
            "polling": {"interval": "1s", "timeout": "1s", "offline_after": 2},
            "patrol": {"interval": "1h", "open_timeout": "1s"},
            "cameras": cameras,
        }
        server = TestServer(create_app(parse_config(json.dumps(document), env={})), host="127.0.0.1")
        await server.start_server()
        try:
            status = server.app[STATUS]
            await eventually(lambda: status.summary()["cameras"]["online"] == 3, timeout=20, what="cameras online")
            page = await browser.new_page(viewport={"width": 1100, "height": 900})
            await page.goto(str(server.make_url("/")))
            await page.wait_for_selector("article.cam.online", timeout=15000)
            assert await page.inner_text("#school") == "攀枝花市第一小学"
            assert await page.locator("article.cam").count() == 3
            assert "在线 3" in await page.inner_text("#camera-counts")
            # No platform is configured: the rate is 0% and the page says the school falls short.
            assert await page.inner_text("#rate") == "0.0%"
            assert await page.inner_text("#compliant") == "未达标"
            await page.click("#lang")
            assert await page.inner_text("#compliant") == "not compliant"
            assert "Networking rate" in await page.inner_text("#rate-tile")
            await page.click("#lang")

            await farm.set_down(farm.cameras[1], True)
            down = page.locator(f'article.cam[data-camera="{farm.cameras[1].id}"]')
            await down.locator(".badge.offline").wait_for(timeout=20000)
            assert "离线" in await down.inner_text()
            assert "无法连接" in await down.inner_text()
            ARTIFACTS.mkdir(exist_ok=True)
            await page.screenshot(path=str(ARTIFACTS / "status-page.png"), full_page=True)
        finally:
            await server.close()


async def test_on_a_phone_faults_come_first_and_alarms_read_as_names_with_panic_apart_from_test(
    browser: Browser, rtsp_server: RtspServer, tmp_path: Path, broker: MosquittoBroker, platform: tuple[object, str]
) -> None:
    _receiver, url = platform
    async with CameraFarm(4) as farm:
        names = ["南门校门口", "操场", "食堂", "东侧围墙"]
        cameras = [
            {
                "id": c.id,
                "name": name,
                "area": "entrance",
                "onvif": c.url,
                "username": "admin",
                "password": "admin123",
                "rtsp": rtsp_server.url("moving"),
            }
            for c, name in zip(farm.cameras, names, strict=True)
        ]
        await farm.set_down(farm.cameras[3], True)  # the last in config order: it must come first on the page
        document = {
            "school": {"id": SCHOOL, "name": "攀枝花市第一小学", "students": 300, "guards": 2},
            "storage": {"path": str(tmp_path / "gw.db")},
            "mqtt": {"url": broker.url, "client_id": f"gw-{tmp_path.name}"},
            "polling": {"interval": "1s", "timeout": "1s", "offline_after": 1},
            "patrol": {"interval": "1h", "open_timeout": "1s"},
            "cameras": cameras,
            "buttons": [{"id": "guard-room", "name": "门卫室一键报警", "cameras": []}],
            "upstreams": [{"name": "police", "kind": "http", "url": url, "secret": PLATFORM_SECRET}],
        }
        server = TestServer(create_app(parse_config(json.dumps(document), env={})), host="127.0.0.1")
        await server.start_server()
        button = SimulatedButton("guard-room", broker.port, school_id=SCHOOL)
        try:
            status = server.app[STATUS]
            await eventually(lambda: status.summary()["cameras"]["offline"] == 1, timeout=20, what="camera down")
            await asyncio.to_thread(button.connect)
            for kind in ("test", "panic"):
                event_id = button.press(kind)
                assert await asyncio.to_thread(button.wait_for_ack, event_id, "delivered")

            page = await browser.new_page(viewport={"width": 390, "height": 844}, device_scale_factor=2)
            await page.goto(str(server.make_url("/")))
            await page.wait_for_selector("#alarms tr.alarm.panic", timeout=15000)
            await page.wait_for_selector("article.cam.offline", timeout=15000)
            # Faults first: every offline card before every other, the downed camera (last in config) among them.
            # (Under load another camera may time out too; the order, not the count, is what is checked.)
            cards = page.locator("article.cam")
            shown = [
                (
                    await cards.nth(i).get_attribute("data-camera"),
                    "offline" in (await cards.nth(i).get_attribute("class") or ""),
                )
                for i in range(await cards.count())
            ]
            offline = [cid for cid, down in shown if down]
            assert farm.cameras[3].id in offline
            assert [down for _cid, down in shown] == sorted((down for _cid, down in shown), reverse=True), shown
            victim = page.locator(f'article.cam[data-camera="{farm.cameras[3].id}"]')
            assert "东侧围墙" in await victim.inner_text()

            panic, test = page.locator("#alarms tr.alarm.panic"), page.locator("#alarms tr.alarm.test")
            assert await panic.count() == 1
            assert await test.count() == 1
            assert "门卫室一键报警" in await panic.inner_text()
            assert "guard-room" not in await page.inner_text("#alarms")
            assert "公安平台" in await panic.inner_text()
            assert "公安平台" in await page.inner_text("#upstreams")
            # Distinct at a glance: the two type labels are painted differently.
            colours = [
                await row.locator(".kind").evaluate("e => getComputedStyle(e).backgroundColor") for row in (panic, test)
            ]
            assert colours[0] != colours[1]
            # Narrow screen: the button's name stays on one line (it broke one character per line).
            name_cell = panic.locator("td").nth(1)
            box = await name_cell.bounding_box()
            assert box is not None
            line_height = await name_cell.evaluate("e => parseFloat(getComputedStyle(e).fontSize) * 2")
            assert box["height"] < line_height, box
            assert await page.evaluate("document.documentElement.scrollWidth") <= 390

            assert "在线率" in (await page.locator(".uptime").first.get_attribute("title") or "")
            ARTIFACTS.mkdir(exist_ok=True)
            await page.screenshot(path=str(ARTIFACTS / "status-page-phone.png"), full_page=True)

            await page.click("#lang")
            assert "police platform" in await page.inner_text("#upstreams")
        finally:
            await asyncio.to_thread(button.disconnect)
            await server.close()
