"""The ONVIF client against simulated cameras over real sockets: every fault a school's cameras show."""

from __future__ import annotations

import asyncio
import time

import aiohttp
import pytest

from adapters.onvif_client import AuthMemo, check_auth, discover_media, fetch_snapshot, probe
from gateway.errors import AuthFailed, DeviceProtocolError, DeviceTimeout, DeviceUnreachable
from simulators.onvif_camera import CameraFarm
from tests.fixtures.onvif import farm, http

__all__ = ["farm", "http"]
PASSWORD = "admin123"


async def test_probe_measures_round_trip_and_clock(farm: CameraFarm, http: aiohttp.ClientSession) -> None:
    camera = farm.cameras[0]
    result = await probe(http, camera.id, camera.url, 2.0)
    assert 0 < result.rtt_ms < 2000
    assert result.clock_skew_s is not None
    assert abs(result.clock_skew_s) < 1.5  # the simulator reports whole seconds


async def test_probe_reports_clock_skew(farm: CameraFarm, http: aiohttp.ClientSession) -> None:
    camera = farm.cameras[0]
    camera.clock_skew_s = -120.0
    result = await probe(http, camera.id, camera.url, 2.0)
    assert result.clock_skew_s == pytest.approx(-120.0, abs=1.5)


async def test_auth_with_skewed_clock_passes_because_created_is_offset(
    farm: CameraFarm, http: aiohttp.ClientSession
) -> None:
    camera = farm.cameras[0]
    camera.auth_mode = "wsse"
    camera.clock_skew_s = 300.0
    skew = (await probe(http, camera.id, camera.url, 2.0)).clock_skew_s
    assert skew is not None
    with pytest.raises(AuthFailed):
        await check_auth(http, camera.id, camera.url, "admin", PASSWORD, 2.0, skew_s=0.0)
    result = await check_auth(http, camera.id, camera.url, "admin", PASSWORD, 2.0, skew_s=skew)
    assert result.method == "wsse"
    assert result.device_info.manufacturer == "Huxiao-Sim"


@pytest.mark.parametrize(("mode", "method"), [("any", "wsse"), ("wsse", "wsse"), ("digest", "digest")])
async def test_auth_finds_the_method_the_camera_speaks(
    farm: CameraFarm, http: aiohttp.ClientSession, mode: str, method: str
) -> None:
    camera = farm.cameras[1]
    camera.auth_mode = mode  # type: ignore[assignment]
    memo = AuthMemo()
    result = await check_auth(http, camera.id, camera.url, "admin", PASSWORD, 2.0, memo=memo)
    assert result.method == method
    # Warm round: the remembered method (and digest nonce) answer in one request.
    before = camera.requests
    await check_auth(http, camera.id, camera.url, "admin", PASSWORD, 2.0, memo=memo)
    assert camera.requests - before == 1


async def test_wrong_password_is_auth_failed_after_both_methods(farm: CameraFarm, http: aiohttp.ClientSession) -> None:
    camera = farm.cameras[0]
    camera.password = "changed-by-someone"
    with pytest.raises(AuthFailed) as caught:
        await check_auth(http, camera.id, camera.url, "admin", PASSWORD, 2.0)
    assert caught.value.device == camera.id
    assert "wsse" in str(caught.value)
    assert "digest" in str(caught.value)


async def test_401_to_the_probe_still_proves_the_camera_reachable(
    farm: CameraFarm, http: aiohttp.ClientSession
) -> None:
    camera = farm.cameras[0]
    camera.probe_needs_auth = True
    result = await probe(http, camera.id, camera.url, 2.0)
    assert result.clock_skew_s is None
    assert result.rtt_ms > 0


async def test_down_camera_is_unreachable_fast(farm: CameraFarm, http: aiohttp.ClientSession) -> None:
    camera = farm.cameras[0]
    await farm.set_down(camera, True)
    started = time.monotonic()
    with pytest.raises(DeviceUnreachable):
        await probe(http, camera.id, camera.url, 5.0)
    assert time.monotonic() - started < 1.0


async def test_hanging_camera_times_out_without_delaying_the_others(
    farm: CameraFarm, http: aiohttp.ClientSession
) -> None:
    hanging, *others = farm.cameras
    hanging.hang = True
    finished: dict[str, float] = {}
    started = time.monotonic()

    async def one(camera_id: str, url: str) -> None:
        try:
            await probe(http, camera_id, url, 1.0)
        finally:
            finished[camera_id] = time.monotonic() - started

    results = await asyncio.gather(*(one(c.id, c.url) for c in farm.cameras), return_exceptions=True)
    assert isinstance(results[0], DeviceTimeout)
    assert results[0].device == hanging.id
    assert all(r is None for r in results[1:])
    assert all(finished[c.id] < 0.9 for c in others), finished
    assert 1.0 <= finished[hanging.id] < 2.0


async def test_slow_camera_within_the_timeout_answers(farm: CameraFarm, http: aiohttp.ClientSession) -> None:
    camera = farm.cameras[0]
    camera.slow_s = 0.3
    result = await probe(http, camera.id, camera.url, 2.0)
    assert result.rtt_ms >= 300


async def test_garbage_and_hostile_xml_are_protocol_errors(farm: CameraFarm, http: aiohttp.ClientSession) -> None:
    garbage, hostile = farm.cameras[0], farm.cameras[1]
    garbage.garbage = True
    hostile.hostile_xml = True
    with pytest.raises(DeviceProtocolError):
        await probe(http, garbage.id, garbage.url, 2.0)
    started = time.monotonic()
    with pytest.raises(DeviceProtocolError):
        await probe(http, hostile.id, hostile.url, 2.0)
    assert time.monotonic() - started < 1.0  # refused, not expanded


async def test_media_discovery_and_snapshot(farm: CameraFarm, http: aiohttp.ClientSession) -> None:
    camera = farm.cameras[2]
    media = await discover_media(http, camera.id, camera.url, "admin", PASSWORD, 2.0)
    assert media.stream_uri == f"rtsp://127.0.0.1:8554/{camera.id}"
    assert media.profiles[0].encoding == "H264"
    assert (media.profiles[0].width, media.profiles[0].height) == (640, 360)
    assert media.snapshot_uri is not None
    jpeg = await fetch_snapshot(http, camera.id, media.snapshot_uri, "admin", PASSWORD, 2.0)
    assert jpeg.startswith(b"\xff\xd8")
    with pytest.raises(AuthFailed):
        await fetch_snapshot(http, camera.id, media.snapshot_uri, "admin", "wrong", 2.0)


async def test_reboot_changes_profile_tokens_and_discovery_follows(
    farm: CameraFarm, http: aiohttp.ClientSession
) -> None:
    camera = farm.cameras[3]
    first = await discover_media(http, camera.id, camera.url, "admin", PASSWORD, 2.0)
    rebooting = asyncio.create_task(farm.reboot(camera, 0.3))
    await asyncio.sleep(0.05)
    with pytest.raises(DeviceUnreachable):
        await probe(http, camera.id, camera.url, 2.0)
    await rebooting
    second = await discover_media(http, camera.id, camera.url, "admin", PASSWORD, 2.0)
    assert first.profiles[0].token != second.profiles[0].token
    assert second.stream_uri == first.stream_uri
