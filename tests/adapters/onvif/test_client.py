"""The ONVIF client against simulated cameras over real sockets: every fault a school's cameras show."""

from __future__ import annotations

import asyncio
import socket
import time

import aiohttp
import pytest
from aiohttp import web

from adapters.onvif.client import AuthMemo, check_auth, discover_media, fetch_snapshot, probe
from adapters.onvif.soap import parse
from gateway.domain.errors import AuthFailed, DeviceProtocolError, DeviceTimeout, DeviceUnreachable
from simulators.onvif_camera import HOSTILE_XML, CameraFarm
from tests.fixtures.onvif import farm, http
from tests.fixtures.waiting import eventually

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
    await eventually(lambda: camera.down, what="camera down for its reboot")
    with pytest.raises(DeviceUnreachable):
        await probe(http, camera.id, camera.url, 2.0)
    await rebooting
    second = await discover_media(http, camera.id, camera.url, "admin", PASSWORD, 2.0)
    assert first.profiles[0].token != second.profiles[0].token
    assert second.stream_uri == first.stream_uri


async def test_slow_camera_past_the_timeout_is_a_timeout_naming_it(
    farm: CameraFarm, http: aiohttp.ClientSession
) -> None:
    camera = farm.cameras[0]
    camera.slow_s = 2.0
    with pytest.raises(DeviceTimeout) as caught:
        await probe(http, camera.id, camera.url, 0.3)
    assert caught.value.device == camera.id


async def test_hang_during_the_auth_call_is_a_timeout(farm: CameraFarm, http: aiohttp.ClientSession) -> None:
    camera = farm.cameras[0]
    skew = (await probe(http, camera.id, camera.url, 2.0)).clock_skew_s or 0.0
    camera.hang = True
    with pytest.raises(DeviceTimeout):
        await check_auth(http, camera.id, camera.url, "admin", PASSWORD, 0.3, skew)


async def test_hostile_xml_to_the_auth_call_is_a_protocol_error(farm: CameraFarm, http: aiohttp.ClientSession) -> None:
    camera = farm.cameras[0]
    camera.hostile_xml = True
    with pytest.raises(DeviceProtocolError):
        await check_auth(http, camera.id, camera.url, "admin", PASSWORD, 2.0)


async def test_password_changed_on_the_camera_is_auth_failed_in_two_requests(
    farm: CameraFarm, http: aiohttp.ClientSession
) -> None:
    camera = farm.cameras[0]
    camera.wrong_password = True
    before = camera.requests
    with pytest.raises(AuthFailed):
        await check_auth(http, camera.id, camera.url, "admin", PASSWORD, 2.0)
    # The token, then digest with the nonce the camera's refusal of the token carried: no extra round trip.
    assert camera.requests - before == 2


async def test_digest_only_camera_costs_two_requests_cold_and_one_warm(
    farm: CameraFarm, http: aiohttp.ClientSession
) -> None:
    camera = farm.cameras[0]
    camera.auth_mode = "digest"
    memo = AuthMemo()
    before = camera.requests
    assert (await check_auth(http, camera.id, camera.url, "admin", PASSWORD, 2.0, memo=memo)).method == "digest"
    assert camera.requests - before == 2
    before = camera.requests
    await check_auth(http, camera.id, camera.url, "admin", PASSWORD, 2.0, memo=memo)
    assert camera.requests - before == 1


async def test_prefer_seeds_the_method_to_try_first(farm: CameraFarm, http: aiohttp.ClientSession) -> None:
    camera = farm.cameras[0]
    camera.auth_mode = "digest"
    before = camera.requests
    result = await check_auth(http, camera.id, camera.url, "admin", PASSWORD, 2.0, prefer="digest")
    assert result.method == "digest"
    assert camera.requests - before == 2  # the digest challenge, then the answer: no token tried first
    with pytest.raises(ValueError, match="basic"):
        await check_auth(http, camera.id, camera.url, "admin", PASSWORD, 2.0, prefer="basic")


async def test_401_quirk_camera_still_passes_auth_with_unknown_skew(
    farm: CameraFarm, http: aiohttp.ClientSession
) -> None:
    camera = farm.cameras[0]
    camera.probe_needs_auth = True
    result = await probe(http, camera.id, camera.url, 2.0)
    assert result.clock_skew_s is None
    auth = await check_auth(http, camera.id, camera.url, "admin", PASSWORD, 2.0, result.clock_skew_s or 0.0)
    assert auth.device_info.hardware == camera.id


async def test_reboot_invalidates_the_kept_digest_nonce_and_the_client_recovers(
    farm: CameraFarm, http: aiohttp.ClientSession
) -> None:
    camera = farm.cameras[0]
    camera.auth_mode = "digest"
    memo = AuthMemo()
    await check_auth(http, camera.id, camera.url, "admin", PASSWORD, 2.0, memo=memo)
    await farm.reboot(camera, 0.0, new_stream_uri="rtsp://127.0.0.1:8554/after-update")
    auth = await check_auth(http, camera.id, camera.url, "admin", PASSWORD, 2.0, memo=memo)
    assert auth.method == "digest"
    assert auth.device_info.firmware is not None
    assert auth.device_info.firmware.endswith("build 2")
    media = await discover_media(http, camera.id, camera.url, "admin", PASSWORD, 2.0, memo=memo)
    assert media.stream_uri == "rtsp://127.0.0.1:8554/after-update"
    assert media.profiles[0].token == camera.profile_token


async def test_any_http_answer_to_the_probe_proves_reachability(http: aiohttp.ClientSession) -> None:
    async def busy(request: web.Request) -> web.Response:
        return web.Response(status=503, text="encoder restarting")

    app = web.Application()
    app.router.add_post("/onvif/device_service", busy)
    runner = web.AppRunner(app)
    await runner.setup()
    listening = socket.socket()
    listening.bind(("127.0.0.1", 0))
    port = listening.getsockname()[1]
    await web.SockSite(runner, listening).start()
    try:
        result = await probe(http, "busy", f"http://127.0.0.1:{port}/onvif/device_service", 2.0)
    finally:
        await runner.cleanup()
    assert (result.camera_time, result.clock_skew_s) == (None, None)


def test_parser_refuses_entities_in_any_encoding_and_reads_plain_answers() -> None:
    plain = (
        b'<?xml version="1.0" encoding="UTF-8"?><s:Envelope xmlns:s="urn:s"><s:Body>\xe6\xb5\xb7</s:Body></s:Envelope>'
    )
    assert (parse("cam", plain)[0].text or "") == "海"
    with pytest.raises(DeviceProtocolError):
        parse("cam", HOSTILE_XML)
    # A DTD spelled in UTF-7 passes a byte check for "<!DOCTYPE": it must still not be expanded.
    utf7 = (
        b'<?xml version="1.0" encoding="UTF-7"?>+ADw-!DOCTYPE x +AFs-+ADw-!ENTITY a +ACI-boom+ACI-+AD4-+AF0-+AD4-'
        b"+ADw-x+AD4-+ACY-a+ADs-+ADw-/x+AD4-"
    )
    with pytest.raises(DeviceProtocolError):
        parse("cam", utf7)
    external = b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]><x>&e;</x>'
    with pytest.raises(DeviceProtocolError):
        parse("cam", external)


@pytest.mark.parametrize("url", ["http://[127.0.0.1/onvif/device_service", "http://127.0.0.1:99999/onvif"])
async def test_a_malformed_camera_address_is_unreachable_naming_the_camera(
    http: aiohttp.ClientSession, url: str
) -> None:
    with pytest.raises(DeviceUnreachable) as caught:
        await probe(http, "gate-1", url, 2.0)
    assert caught.value.device == "gate-1"
