"""The status page in a real browser shows what the command center sent back: the operator's acknowledgement on
the alarm's row and the school's open hazards (Chinese first)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from playwright.async_api import Browser

from simulators.broker import MosquittoBroker
from simulators.buttons import SimulatedButton
from tests.fixtures.center import ReportReceiver
from tests.fixtures.mosquitto import broker
from tests.gateway.faces.test_status_page import ARTIFACTS, browser
from tests.gateway.services.test_reports import SCHOOL, SECRET, center, running, school

__all__ = ["broker", "browser", "center"]


async def test_the_page_shows_the_centers_acknowledgement_and_hazards(
    browser: Browser, tmp_path: Path, broker: MosquittoBroker, center: tuple[ReportReceiver, str]
) -> None:
    receiver, url = center
    config = school(tmp_path, broker, {"name": "police", "kind": "http", "url": url, "secret": SECRET})
    button = SimulatedButton("guard-room", broker.port, school_id=SCHOOL)
    await asyncio.to_thread(button.connect)
    async with running(config) as server:
        pressed = button.press("panic")
        assert await asyncio.to_thread(button.wait_for_ack, pressed, "delivered")
        page = await browser.new_page(viewport={"width": 1100, "height": 900})
        await page.goto(str(server.make_url("/")))
        await page.wait_for_selector("#alarms tbody tr", timeout=15000)
        assert "未确认" in await page.inner_text("#alarms tbody tr")
        assert "暂无隐患" in await page.inner_text("#hazards")
        receiver.acks = [{"button_event_id": pressed, "by": "值班员张三", "at": "2026-12-01T23:59:00Z"}]
        receiver.hazards = [{"id": "h-1", "title": "南侧围墙破损", "level": "high"}]
        assert await asyncio.to_thread(button.wait_for_ack, pressed, "acknowledged")
        await page.reload()  # the page refreshes itself every 5 s; a reload shows it at once
        row = page.locator("#alarms tbody tr").first
        await page.wait_for_function("document.querySelector('#alarms tbody tr .ack').textContent.includes('张三')")
        assert "值班员张三" in await row.inner_text()
        assert "南侧围墙破损 (高)" in await page.inner_text("#hazards")
        await page.click("#lang")
        assert "南侧围墙破损 (high)" in await page.inner_text("#hazards")
        ARTIFACTS.mkdir(exist_ok=True)
        await page.screenshot(path=str(ARTIFACTS / "status-page-center.png"), full_page=True)
    button.disconnect()
