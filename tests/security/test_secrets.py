"""Secrets never leave the gateway: a real `huxiao run` process with every kind of secret configured (from the
environment and from `${file:...}`), driven through a signed press, failing upstreams and a camera, its API and
metrics read, then crashed at start and fed a broken config. No secret appears in any output."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import aiohttp
import pytest

from simulators.broker import MosquittoBroker
from simulators.buttons import SimulatedButton
from simulators.onvif_camera import CameraFarm
from simulators.platform import PlatformReceiver
from tests.fixtures.mosquitto import broker
from tests.fixtures.paths import REPO
from tests.fixtures.platform import PLATFORM_SECRET, platform
from tests.fixtures.ports import free_port

__all__ = ["broker", "platform"]
SCHOOL = "51040200001"
SECRETS = {
    "MQTT_PASSWORD": "mqtt-Secret-7Qx1",
    "RTSP_PASSWORD": "rtsp-Secret-3Lk9",
    "BTN_SECRET": "button-Secret-8Vn2",
    "URL_PASSWORD": "url-Secret-5Tr4",
    "GB_PASSWORD": "gb-Secret-1Zc6",
    "CITY_PASSWORD": "city-Secret-2Wm8",
    "PATROL_TOKEN": "patrol-Secret-4Hb3",
    "ADMIN_TOKEN": "admin-Secret-6Jd5",
}
CAM_PASSWORD = "camera-Secret-9Pf7"  # read from a file through ${file:...}, like /run/secrets/NAME
EVERY_SECRET = [*SECRETS.values(), CAM_PASSWORD, PLATFORM_SECRET]


@pytest.fixture
async def farm() -> AsyncIterator[CameraFarm]:
    async with CameraFarm(1) as running:
        running.cameras[0].password = CAM_PASSWORD
        yield running


def write_config(tmp_path: Path, broker: MosquittoBroker, url: str, farm: CameraFarm, port: int, db: Path) -> Path:
    secret_file = tmp_path / "run-secrets" / "cam_password"
    secret_file.parent.mkdir(exist_ok=True)
    secret_file.write_text(CAM_PASSWORD + "\n", encoding="utf-8")
    closed = free_port()
    camera = farm.cameras[0]
    text = f"""
school: {{id: "{SCHOOL}", name: 攀枝花市第一小学}}
storage: {{path: "{db}"}}
mqtt: {{url: "{broker.url}", username: gw, password: "${{MQTT_PASSWORD}}", client_id: gw-secrets}}
polling: {{interval: 1s, timeout: 1s}}
cameras:
  - {{id: gate-1, name: 校门口, onvif: "{camera.url}", username: admin, password: "${{file:{secret_file}}}"}}
  - {{id: hall, name: 大厅, rtsp: "rtsp://admin:${{RTSP_PASSWORD}}@127.0.0.1:{closed}/live"}}
buttons:
  - {{id: guard-room, name: 门卫室, secret: "${{BTN_SECRET}}"}}
upstreams:
  - {{name: police, kind: http, url: "{url}", secret: "{PLATFORM_SECRET}", retry_first: 50ms}}
  - {{name: education, kind: http, role: education, url: "http://edu:${{URL_PASSWORD}}@127.0.0.1:{closed}/alarms",
     retry_first: 50ms}}
  - {{name: police-gb, kind: gb28181, server: "sip:34020000002000000001@127.0.0.1:{closed}",
     device_id: "51040200001180000001", password: "${{GB_PASSWORD}}"}}
  - {{name: city, kind: mqtt, url: "mqtt://127.0.0.1:{closed}", username: gw, password: "${{CITY_PASSWORD}}"}}
web: {{listen: "127.0.0.1:{port}", tokens: {{patrol: "${{PATROL_TOKEN}}", admin: "${{ADMIN_TOKEN}}"}}}}
"""
    path = tmp_path / "school.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def start(config: Path, log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as sink:
        return subprocess.Popen(
            [sys.executable, "-m", "gateway", "--log-level", "DEBUG", "run", "-c", str(config)],
            cwd=REPO,
            stdout=sink,
            stderr=subprocess.STDOUT,
            env={**os.environ, **SECRETS, "PYTHONUNBUFFERED": "1"},
        )


def leaks(text: str) -> list[str]:
    return [secret for secret in EVERY_SECRET if secret in text]


async def test_no_secret_in_logs_api_metrics_or_crash_output(
    tmp_path: Path, broker: MosquittoBroker, platform: tuple[PlatformReceiver, str], farm: CameraFarm
) -> None:
    receiver, url = platform
    port = free_port()
    config = write_config(tmp_path, broker, url, farm, port, tmp_path / "gw.db")
    log = tmp_path / "gateway.log"
    proc = start(config, log)
    base = f"http://127.0.0.1:{port}"
    answers: dict[str, str] = {}
    try:
        async with aiohttp.ClientSession() as http:

            async def up() -> bool:
                try:
                    async with http.get(base + "/healthz") as answer:
                        return answer.status == 200
                except aiohttp.ClientError:
                    return False

            deadline = time.monotonic() + 20
            while not await up():
                assert proc.poll() is None, log.read_text()
                assert time.monotonic() < deadline, log.read_text()
                await asyncio.sleep(0.05)
            button = SimulatedButton("guard-room", broker.port, school_id=SCHOOL, secret=SECRETS["BTN_SECRET"])
            await asyncio.to_thread(button.connect)
            event_id = button.press("panic")
            await receiver.wait_for(1, kind="cn.huxiao.alarm.panic")
            assert receiver.events[0].data["button_event_id"] == event_id
            button.publish_raw(f"huxiao/{SCHOOL}/buttons/guard-room/alarm", b'{"id": "forged"}').wait_for_publish(5)
            admin = {"Authorization": f"Bearer {SECRETS['ADMIN_TOKEN']}"}

            async def polled() -> bool:
                async with http.get(base + "/api/cameras", headers=admin) as answer:
                    states = {c["id"]: c["state"] for c in await answer.json()}
                return states.get("hall") == "offline" and states.get("gate-1") in ("online", "degraded")

            await eventually_async(polled, what="both cameras polled")
            for path in (
                "/api/summary",
                "/api/cameras",
                "/api/alarms",
                "/metrics",
                "/api/openapi.json",
                "/",
                "/healthz",
                "/api/cameras/gate-1/snapshot.jpg",
            ):
                async with http.get(base + path, headers=admin) as answer:
                    answers[path] = (await answer.read()).decode("utf-8", "replace")
            async with http.get(base + "/api/summary", headers={"Authorization": "Bearer wrong"}) as answer:
                answers["refused"] = await answer.text()
            button.disconnect()
        proc.send_signal(signal.SIGTERM)
        await asyncio.to_thread(proc.wait, 10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    ran = log.read_text(encoding="utf-8")
    assert "delivery" in ran or "education" in ran  # the failing upstream was logged about, without its password
    assert leaks(ran) == []
    for path, text in answers.items():
        assert leaks(text) == [], path
    assert "huxiao_refused_messages_total" in answers["/metrics"]

    # Crash at start: the database path lies under a plain file.
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("", encoding="utf-8")
    crashing = write_config(tmp_path, broker, url, farm, free_port(), blocker / "gw.db")
    crash_log = tmp_path / "crash.log"
    crashed = start(crashing, crash_log)
    assert await asyncio.to_thread(crashed.wait, 30) != 0
    crash = crash_log.read_text(encoding="utf-8")
    assert "not-a-folder" in crash  # it says what is wrong
    assert leaks(crash) == []

    # A broken config echoes no secret either, even one inside a URL it refuses.
    broken = config.read_text(encoding="utf-8").replace(f'url: "{broker.url}"', 'url: "ftp://gw:${MQTT_PASSWORD}@host"')
    broken += "unknown_section: {token: x}\n"
    bad = tmp_path / "broken.yaml"
    bad.write_text(broken, encoding="utf-8")
    checked = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "gateway", "check-config", "-c", str(bad)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **SECRETS},
        check=False,
    )
    assert checked.returncode == 2
    assert "mqtt.url" in checked.stderr
    assert leaks(checked.stdout + checked.stderr) == []


async def eventually_async(check: Callable[[], Awaitable[bool]], what: str, timeout: float = 15.0) -> None:
    """`eventually` for a condition that must itself await (an HTTP request to the gateway process)."""
    deadline = time.monotonic() + timeout
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not reached within {timeout} s")
        await asyncio.sleep(0.05)
