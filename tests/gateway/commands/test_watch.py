"""`huxiao watch` when it cannot show anything: each case one clear sentence, from a real platform console (the demo's
own, over HTTP on 127.0.0.1) or from no console at all. The working path is the demo test's."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web

from gateway.commands.watch import watch
from gateway.domain.errors import GatewayError
from simulators.gb_platform import GbPlatform
from simulators.gb_platform_console import GbPlatformConsole
from tests.fixtures.ports import free_port

DEVICE = "51040200001180000001"
CHANNEL = "51040200001320000001"


@pytest.fixture
async def console(tmp_path: Path) -> AsyncIterator[str]:
    async with GbPlatform(workdir=tmp_path) as platform:
        runner = web.AppRunner(GbPlatformConsole(platform, DEVICE, {"gate-1": CHANNEL}).app(), access_log=None)
        await runner.setup()
        port = free_port()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        try:
            yield f"http://127.0.0.1:{port}"
        finally:
            await runner.cleanup()


async def test_an_unknown_camera_is_named_with_the_ones_there_are(console: str, tmp_path: Path) -> None:
    with pytest.raises(GatewayError, match=r"404: no camera 'gate-9' \(cameras: gate-1\)"):
        await asyncio.to_thread(watch, console, "gate-9", 1, tmp_path / "x.ps")
    assert not (tmp_path / "x.ps").exists()


async def test_a_device_not_registered_is_said_so(console: str, tmp_path: Path) -> None:
    with pytest.raises(GatewayError, match=f"503: device {DEVICE} is not registered"):
        await asyncio.to_thread(watch, console, "gate-1", 1, tmp_path / "x.ps")


async def test_a_recording_out_of_bounds_is_refused(console: str, tmp_path: Path) -> None:
    with pytest.raises(GatewayError, match="400: seconds: between 1 and 60"):
        await asyncio.to_thread(watch, console, "gate-1", 3600, tmp_path / "x.ps")


async def test_no_console_there_asks_whether_the_demo_runs(tmp_path: Path) -> None:
    with pytest.raises(GatewayError, match="is the demo running"):
        await asyncio.to_thread(watch, f"http://127.0.0.1:{free_port()}", "gate-1", 1, tmp_path / "x.ps")
