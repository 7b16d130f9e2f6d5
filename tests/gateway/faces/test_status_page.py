"""The status page in a real browser (Debian's Chromium driven by Playwright) against a running gateway with
simulated cameras: the right numbers, the language switch, and an update when a camera goes down."""

from __future__ import annotations

import json
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp.test_utils import TestServer
from playwright.async_api import Browser, async_playwright

from gateway.app import STATUS, create_app
from gateway.domain.config import parse_config
from simulators.onvif_camera import CameraFarm
from simulators.rtsp import RtspServer
from tests.fixtures.paths import REPO
from tests.fixtures.rtsp import rtsp_server
from tests.fixtures.waiting import eventually

__all__ = ["rtsp_server"]
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
