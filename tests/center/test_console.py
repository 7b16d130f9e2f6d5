"""The duty officer's console in a real browser (Debian's Chromium through Playwright) against a running center:
the city table shows the right rates, an alarm appears live with its picture and a sound, one click acknowledges
it, and the language switches."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import cv2
import numpy as np
import pytest
from playwright.async_api import Browser, async_playwright, expect

from tests.center.running import center_config, running_center
from tests.center.senders import SCHOOL_A, SCHOOL_B, alarm_event, report_event, signed
from tests.gateway.faces.test_status_page import CHROMIUM, CHROMIUM_ARGS, HAVE_CHROMIUM

UI_WAIT_MS = 10_000


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    if not HAVE_CHROMIUM:
        pytest.fail("chromium is not installed: run ./dev setup as root, or: sudo apt-get install chromium")
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(
            executable_path=CHROMIUM, args=[*CHROMIUM_ARGS, "--autoplay-policy=no-user-gesture-required"]
        )
        yield launched
        await launched.close()


def small_jpeg() -> str:
    picture = np.zeros((48, 64, 3), np.uint8)
    picture[:, :32] = (0, 0, 255)
    ok, encoded = cv2.imencode(".jpg", picture)
    assert ok
    return base64.b64encode(encoded.tobytes()).decode()


async def test_console_shows_city_rates_a_live_alarm_and_acknowledges_it(browser: Browser, tmp_path: Path) -> None:
    config = center_config(f"sqlite:///{tmp_path / 'center.db'}")
    async with running_center(config) as base, aiohttp.ClientSession() as http:
        for school, rate, compliant in ((SCHOOL_A, 0.9, True), (SCHOOL_B, 0.5, False)):
            report = report_event(school, rate, total=10, compliant=compliant)
            async with http.post(f"{base}/reports", data=report, headers=signed(school, report)) as answer:
                assert answer.status == 200
        page = await browser.new_page()
        await page.goto(base + "/")
        await expect(page.locator("#feed.up")).to_be_visible(timeout=UI_WAIT_MS)
        city_row = page.locator('#city tr[data-district="全市"]')
        await expect(city_row).to_contain_text("70.0%", timeout=UI_WAIT_MS)  # 14 of 20 cameras
        await expect(city_row).to_contain_text("50.0%")  # one of two schools compliant
        await expect(page.locator('#city tr[data-district="西区"] td.below').first).to_have_text("50.0%")

        cameras = [{"id": "gate-1", "name": "校门口", "stream_uri": "", "snapshot_jpeg_base64": small_jpeg()}]
        body = alarm_event(SCHOOL_A, "browser-press", cameras=cameras)
        async with http.post(f"{base}/alarms", data=body, headers=signed(SCHOOL_A, body)) as answer:
            assert answer.status == 200
        alarm = page.locator("#alarms li.alarm").first
        await expect(alarm).to_contain_text("紧急报警", timeout=UI_WAIT_MS)
        await expect(alarm).to_contain_text("攀枝花市第一小学")
        await expect(alarm).to_contain_text("南门")
        picture = alarm.locator('img[alt="校门口"]')
        await expect(picture).to_be_visible()
        await page.wait_for_function("document.querySelector('#alarms img').naturalWidth === 64", timeout=UI_WAIT_MS)
        assert await page.evaluate("window.huxiaoSirens") == 1

        await alarm.locator("button.ack").click()
        await expect(page.locator("#alarms li.alarm.acked")).to_contain_text("已确认", timeout=UI_WAIT_MS)
        async with http.get(f"{base}/api/alarms") as answer:
            rows = await answer.json()
        assert rows[0]["acknowledged"] is not None

        await page.locator("#lang").click()
        await expect(page.locator("h1")).to_have_text("School security command center")
        await expect(page.locator("#alarms li.alarm.acked")).to_contain_text("Acknowledged")
        await expect(page.locator('#city tr[data-district="City"]')).to_contain_text("70.0%")
        await page.close()
