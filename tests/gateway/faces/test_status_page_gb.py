"""The status page in a real browser shows the GB/T 28181 link: registered, with a live viewer named by camera,
Chinese first; and not registered, with the reason, once the platform stops."""

from __future__ import annotations

import json
from pathlib import Path

from aiohttp.test_utils import TestServer
from playwright.async_api import Browser

from adapters.gb28181.channels import camera_ids
from gateway.app import STATUS, create_app
from gateway.domain.config import parse_config
from simulators.broker import MosquittoBroker
from simulators.gb_platform import GbPlatform
from simulators.rtsp import RtspServer
from tests.fixtures.mosquitto import broker
from tests.fixtures.rtsp import rtsp_server
from tests.fixtures.waiting import eventually
from tests.gateway.faces.test_status_page import ARTIFACTS, browser
from tests.gateway.test_gb28181_link import DEVICE, PASSWORD, gb_config

__all__ = ["broker", "browser", "rtsp_server"]


async def test_the_page_shows_the_gb_link_and_its_viewers(
    browser: Browser, tmp_path: Path, broker: MosquittoBroker, rtsp_server: RtspServer
) -> None:
    platform = GbPlatform(workdir=tmp_path, password=PASSWORD)
    await platform.__aenter__()
    stopped = False
    config = parse_config(json.dumps(gb_config(tmp_path, broker, rtsp_server, platform.server_uri)), env={})
    server = TestServer(create_app(config), host="127.0.0.1")
    await server.start_server()
    try:
        status = server.app[STATUS]
        await eventually(lambda: status.summary()["networking_rate"] == 1.0, timeout=20, what="registered")
        play = await platform.invite(DEVICE, camera_ids(DEVICE, config.cameras)["gate-1"], "udp")
        await eventually(lambda: status.summary()["gb28181"][0]["live"]["viewers"] == 1, what="a viewer")
        page = await browser.new_page(viewport={"width": 1100, "height": 900})
        await page.goto(str(server.make_url("/")))
        link = page.locator('[data-gb="police-gb"]')
        await link.wait_for(timeout=15000)
        text = await link.inner_text()
        assert "已注册" in text, text
        assert "实时观看 1 (校门口 ×1)" in text, text
        await page.click("#lang")
        assert "police-gb: registered ·" in await link.inner_text()
        assert "live viewers 1" in await link.inner_text()
        await page.click("#lang")
        ARTIFACTS.mkdir(exist_ok=True)
        await page.screenshot(path=str(ARTIFACTS / "status-page-gb.png"), full_page=True)
        await platform.bye(DEVICE, play)

        await platform.__aexit__(None, None, None)
        stopped = True
        await eventually(lambda: status.summary()["networking_rate"] == 0.0, timeout=15, what="unregistered")
        await page.reload()  # the page refreshes itself every 5 s; a reload shows it at once
        await page.wait_for_selector('[data-gb="police-gb"].bad', timeout=15000)
        text = await link.inner_text()
        assert "未注册" in text, text
        assert "keepalives unanswered" in text, text
        assert "GB/T 28181 平台未注册" in await page.inner_text("#criteria")
    finally:
        await server.close()
        if not stopped:
            await platform.__aexit__(None, None, None)
