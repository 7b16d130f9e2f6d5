"""/healthz says the truth: each failure made real, and the gateway back to ok once it clears.

A broker stopped for real, a disk filled for real (a small tmpfs, as root), a listener crashed by a poisoned
dependency, a platform that is not there. The gateway runs in-process on a real socket.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from adapters.mqtt.buttons import ButtonListener
from gateway.domain.config import GatewayConfig, parse_config
from gateway.services.health import BROKER_GRACE_S
from simulators.broker import MosquittoBroker
from simulators.buttons import SimulatedButton
from simulators.platform import PlatformReceiver
from tests.fixtures.gateway_app import running
from tests.fixtures.mosquitto import broker
from tests.fixtures.paths import REPO
from tests.fixtures.platform import PLATFORM_SECRET, platform
from tests.fixtures.ports import free_port

__all__ = ["broker", "platform"]
SCHOOL = "51040200001"


def config_for(db: Path, broker: MosquittoBroker, platform_url: str) -> GatewayConfig:
    document = {
        "school": {"id": SCHOOL, "name": "一小"},
        "storage": {"path": str(db)},
        "mqtt": {"url": broker.url, "client_id": f"gw-{db.parent.name}"},
        "buttons": [{"id": "b1", "name": "门卫室", "heartbeat_timeout": "1h"}],
        "upstreams": [
            {"name": "police", "kind": "http", "url": platform_url, "secret": PLATFORM_SECRET, "retry_max": "1s"}
        ],
        "web": {"listen": "127.0.0.1:0"},
    }
    return parse_config(json.dumps(document), env={})


@contextlib.asynccontextmanager
async def gateway(config: GatewayConfig, *, session: bool = True) -> AsyncIterator[str]:
    """The gateway's base URL, served as `tests.fixtures.gateway_app.running` serves it."""
    async with running(config, session=session) as server:
        yield f"http://127.0.0.1:{server.port}"


async def health(base: str) -> tuple[int, dict[str, Any]]:
    async with aiohttp.ClientSession() as http, http.get(base + "/healthz") as response:
        return response.status, await response.json()


async def becomes(base: str, status: str, timeout: float, what: str) -> dict[str, Any]:
    seen: dict[str, Any] = {}

    async def check() -> bool:
        nonlocal seen
        _code, seen = await health(base)
        return bool(seen["status"] == status)

    deadline = time.monotonic() + timeout
    while not await check():
        assert time.monotonic() < deadline, f"{what}: still {seen}"
        await asyncio.sleep(0.1)
    return seen


async def test_a_healthy_gateway_names_every_part(
    tmp_path: Path, broker: MosquittoBroker, platform: tuple[PlatformReceiver, str]
) -> None:
    async with gateway(config_for(tmp_path / "gw.db", broker, platform[1])) as base:
        body = await becomes(base, "ok", 10, "healthy")
        assert set(body["parts"]) == {"storage", "buttons", "cameras", "patrol", "upstream:police"}
        for part in body["parts"].values():
            assert part["ok"] is True
            assert part["since"].endswith("Z")


async def test_the_broker_gone_for_longer_than_the_grace_is_failing_and_back_within_5_s(
    tmp_path: Path, broker: MosquittoBroker, platform: tuple[PlatformReceiver, str]
) -> None:
    async with gateway(config_for(tmp_path / "gw.db", broker, platform[1])) as base:
        await becomes(base, "ok", 10, "healthy")
        await asyncio.to_thread(broker.stop)
        stopped = time.monotonic()
        # Within the grace a broker restart is not a failure...
        code, body = await health(base)
        assert code == 200
        body = await becomes(base, "failing", BROKER_GRACE_S + 5, "failing without a broker")
        assert time.monotonic() - stopped >= BROKER_GRACE_S - 1
        code, _ = await health(base)
        assert code == 503
        assert body["parts"]["buttons"]["ok"] is False
        assert "broker" in body["parts"]["buttons"]["detail"]
        await asyncio.to_thread(broker.start)
        back = time.monotonic()
        await becomes(base, "ok", 8, "healthy again")
        assert time.monotonic() - back <= 5 + 1  # the listener retries at least every 5 s


async def test_a_platform_that_cannot_take_alarms_is_degraded_not_failing(
    tmp_path: Path, broker: MosquittoBroker
) -> None:
    dead_platform = f"http://127.0.0.1:{free_port()}/alarms"
    async with gateway(config_for(tmp_path / "gw.db", broker, dead_platform)) as base:
        await becomes(base, "ok", 10, "ok before any delivery")  # an upstream starts ok until a delivery fails
        button = SimulatedButton("b1", broker.port, school_id=SCHOOL)
        await asyncio.to_thread(button.connect)
        try:
            button.press()
            body = await becomes(base, "degraded", 10, "degraded")
        finally:
            button.disconnect()
        code, _ = await health(base)
        assert code == 200
        assert body["parts"]["upstream:police"]["ok"] is False
        assert "1 pending" in body["parts"]["upstream:police"]["detail"]


async def test_a_listener_that_keeps_crashing_is_failing_and_counted(
    tmp_path: Path, broker: MosquittoBroker, platform: tuple[PlatformReceiver, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def poisoned(_self: ButtonListener) -> None:
        raise RuntimeError("poisoned MQTT client factory")

    monkeypatch.setattr(ButtonListener, "_new_client", poisoned)
    async with gateway(config_for(tmp_path / "gw.db", broker, platform[1]), session=False) as base:
        body = await becomes(base, "failing", 10, "failing with a crashed listener")
        assert "poisoned" in body["parts"]["buttons"]["detail"]
        async with aiohttp.ClientSession() as http, http.get(base + "/metrics") as response:
            text = await response.text()
        crashes = {
            s.labels["part"]: s.value
            for family in text_string_to_metric_families(text)
            for s in family.samples
            if s.name == "huxiao_part_crashes_total"
        }
        assert crashes["buttons"] >= 1


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 4 MiB tmpfs of our own, so that 'disk full' is real and touches nothing else."""
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("mounting a tmpfs needs root (CI and the dev machine run as root)")
    mount = tmp_path / "disk"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mount)], check=True)
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


async def test_a_full_disk_is_failing_and_clears_when_room_is_made(
    small_disk: Path, broker: MosquittoBroker, platform: tuple[PlatformReceiver, str]
) -> None:
    async with gateway(config_for(small_disk / "gw.db", broker, platform[1])) as base:
        await becomes(base, "ok", 10, "healthy")
        filler = small_disk / "filler"
        with contextlib.suppress(OSError), filler.open("wb") as sink:
            while True:
                sink.write(b"\0" * 65536)
        # A press now: the outbox cannot store it either, and says so too.
        button = SimulatedButton("b1", broker.port, school_id=SCHOOL)
        await asyncio.to_thread(button.connect)
        try:
            button.press()
            body = await becomes(base, "failing", 10, "failing on a full disk")
            assert body["parts"]["storage"]["ok"] is False
            assert "full" in body["parts"]["storage"]["detail"]
            filler.unlink()
            await becomes(base, "ok", 10, "healthy after room was made")
        finally:
            button.disconnect()
        # The press the full disk refused stayed with the broker and arrives now.
        receiver = platform[0]
        await receiver.wait_for(1, timeout=15, kind="cn.huxiao.alarm.panic")


def test_a_database_on_a_read_only_disk_stops_the_start_with_a_clear_line(tmp_path: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("mounting a read-only tmpfs needs root")
    mount = tmp_path / "ro"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m,ro", "tmpfs", str(mount)], check=True)
    try:
        config = tmp_path / "school.yaml"
        config.write_text(
            json.dumps({"school": {"id": SCHOOL, "name": "一小"}, "storage": {"path": str(mount / "gw.db")}}),
            encoding="utf-8",
        )
        run = subprocess.run(
            [sys.executable, "-m", "gateway", "run", "-c", str(config)],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=30,
        )
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)
    assert run.returncode == 1
    assert "cannot open the database" in run.stderr
    assert "Traceback" not in run.stderr
