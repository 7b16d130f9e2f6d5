"""The simulated ONVIF camera on its own, driven with plain HTTP requests and hand-made SOAP.

These tests do not use the gateway's ONVIF client: a simulator that only pleases the client it is meant to test
would prove nothing. The WS-UsernameToken here is computed from the formula in the standard, independently.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import os
import signal
import sys
import time
import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta

import aiohttp
import cv2
import numpy as np
import pytest

from adapters.digest import DigestChallenge, authorization, parse_challenge
from simulators.onvif_camera import CameraFarm, SimulatedCamera
from tests.fixtures.onvif import farm, http
from tests.fixtures.paths import REPO
from tests.fixtures.waiting import eventually

__all__ = ["farm", "http"]

NS = {
    "s": "http://www.w3.org/2003/05/soap-envelope",
    "tds": "http://www.onvif.org/ver10/device/wsdl",
    "trt": "http://www.onvif.org/ver10/media/wsdl",
    "tt": "http://www.onvif.org/ver10/schema",
}
SOAP = "application/soap+xml; charset=utf-8"
WSSE = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"
WSU = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd"
PASSWORD = "admin123"
GET_SERVICES = "<tds:GetServices><tds:IncludeCapability>false</tds:IncludeCapability></tds:GetServices>"
# A hang must be told from a slow answer without waiting long: the test gives up after this.
HANG_PROBE_S = 0.5


def envelope(body: str, header: str = "") -> bytes:
    return (
        f'<?xml version="1.0" encoding="UTF-8"?><s:Envelope xmlns:s="{NS["s"]}" xmlns:tds="{NS["tds"]}" '
        f'xmlns:trt="{NS["trt"]}" xmlns:tt="{NS["tt"]}"><s:Header>{header}</s:Header><s:Body>{body}</s:Body>'
        "</s:Envelope>"
    ).encode()


def token(password: str, created: datetime, username: str = "admin") -> str:
    """WS-UsernameToken: PasswordDigest = Base64(SHA1(nonce + created + password)), written out here on purpose."""
    nonce = os.urandom(16)
    stamp = created.strftime("%Y-%m-%dT%H:%M:%SZ")
    digest = base64.b64encode(hashlib.sha1(nonce + stamp.encode() + password.encode()).digest()).decode()
    return (
        f'<wsse:Security xmlns:wsse="{WSSE}" xmlns:wsu="{WSU}"><wsse:UsernameToken>'
        f"<wsse:Username>{username}</wsse:Username><wsse:Password>{digest}</wsse:Password>"
        f"<wsse:Nonce>{base64.b64encode(nonce).decode()}</wsse:Nonce><wsu:Created>{stamp}</wsu:Created>"
        "</wsse:UsernameToken></wsse:Security>"
    )


async def post(
    http: aiohttp.ClientSession, url: str, body: bytes, headers: dict[str, str] | None = None
) -> tuple[int, bytes, str]:
    async with asyncio.timeout(5):
        async with http.post(url, data=body, headers={"Content-Type": SOAP, **(headers or {})}) as response:
            return response.status, await response.read(), response.headers.get("WWW-Authenticate", "")


async def call(http: aiohttp.ClientSession, camera: SimulatedCamera, body: str, url: str | None = None) -> ET.Element:
    """An operation with a valid token, answered 200 with a SOAP envelope."""
    status, data, _ = await post(http, url or camera.url, envelope(body, token(PASSWORD, camera.now())))
    assert status == 200, data
    return ET.fromstring(data)


async def digest_post(
    http: aiohttp.ClientSession, url: str, body: bytes, password: str = PASSWORD
) -> tuple[int, bytes, str]:
    status, _, challenge_header = await post(http, url, body)
    assert status == 401
    challenge = parse_challenge(challenge_header)
    assert challenge is not None
    path = url.split("127.0.0.1", 1)[1].split("/", 1)[1]
    header = authorization(challenge, method="POST", uri="/" + path, username="admin", password=password)
    return await post(http, url, body, {"Authorization": header})


def fault_code(data: bytes) -> str:
    root = ET.fromstring(data)
    values = [v.text or "" for v in root.iterfind(".//s:Fault//s:Value", NS)]
    return values[-1]


# -- operations --------------------------------------------------------------------------------------------------


async def test_get_system_date_and_time_needs_no_credentials_and_tells_the_camera_clock(
    farm: CameraFarm, http: aiohttp.ClientSession
) -> None:
    camera = farm.cameras[0]
    camera.clock_skew_s = -3600.0
    status, data, _ = await post(http, camera.url, envelope("<tds:GetSystemDateAndTime/>"))
    assert status == 200
    utc = ET.fromstring(data).find(".//tt:UTCDateTime", NS)
    assert utc is not None
    parts = {e.tag.split("}")[1]: int(e.text or "") for e in utc.iter() if e.text and e.text.strip().isdigit()}
    told = datetime(
        parts["Year"], parts["Month"], parts["Day"], parts["Hour"], parts["Minute"], parts["Second"], tzinfo=UTC
    )
    assert abs((told - datetime.now(UTC)).total_seconds() + 3600) < 2


@pytest.mark.parametrize(
    "body",
    [
        "<tds:GetDeviceInformation/>",
        "<tds:GetCapabilities><tds:Category>All</tds:Category></tds:GetCapabilities>",
        GET_SERVICES,
        "<trt:GetProfiles/>",
    ],
)
async def test_other_operations_are_refused_without_credentials(
    farm: CameraFarm, http: aiohttp.ClientSession, body: str
) -> None:
    status, data, challenge = await post(http, farm.cameras[0].url, envelope(body))
    assert status == 401
    assert fault_code(data) == "ter:NotAuthorized"
    assert parse_challenge(challenge) is not None


async def test_device_information(farm: CameraFarm, http: aiohttp.ClientSession) -> None:
    camera = farm.cameras[0]
    root = await call(http, camera, "<tds:GetDeviceInformation/>")
    assert root.findtext(".//tds:Manufacturer", namespaces=NS) == camera.manufacturer
    assert root.findtext(".//tds:Model", namespaces=NS) == camera.model
    assert root.findtext(".//tds:HardwareId", namespaces=NS) == camera.id
    assert root.findtext(".//tds:SerialNumber", namespaces=NS)
    assert root.findtext(".//tds:FirmwareVersion", namespaces=NS)


async def test_capabilities_and_services_advertise_the_media_service(
    farm: CameraFarm, http: aiohttp.ClientSession
) -> None:
    camera = farm.cameras[0]
    caps = await call(http, camera, "<tds:GetCapabilities><tds:Category>All</tds:Category></tds:GetCapabilities>")
    media_url = caps.findtext(".//tt:Media/tt:XAddr", namespaces=NS)
    assert media_url == f"{camera.base}/onvif/media_service"
    services = await call(http, camera, GET_SERVICES)
    advertised = {
        s.findtext("tds:Namespace", namespaces=NS): s.findtext("tds:XAddr", namespaces=NS)
        for s in services.iterfind(".//tds:Service", NS)
    }
    assert advertised[NS["trt"]] == media_url
    assert advertised[NS["tds"]] == camera.url


async def test_profiles_stream_and_snapshot_uris_on_the_media_service(
    farm: CameraFarm, http: aiohttp.ClientSession
) -> None:
    camera = farm.cameras[1]
    media = f"{camera.base}/onvif/media_service"
    profiles = (await call(http, camera, "<trt:GetProfiles/>", media)).findall(".//trt:Profiles", NS)
    assert [p.get("token") for p in profiles] == [camera.profile_token]
    assert profiles[0].findtext(".//tt:Encoding", namespaces=NS) == "H264"
    assert profiles[0].findtext(".//tt:Resolution/tt:Width", namespaces=NS) == "640"
    stream = await call(
        http,
        camera,
        "<trt:GetStreamUri><trt:StreamSetup><tt:Stream>RTP-Unicast</tt:Stream><tt:Transport><tt:Protocol>RTSP"
        f"</tt:Protocol></tt:Transport></trt:StreamSetup><trt:ProfileToken>{camera.profile_token}"
        "</trt:ProfileToken></trt:GetStreamUri>",
        media,
    )
    assert stream.findtext(".//tt:Uri", namespaces=NS) == camera.rtsp_uri == f"rtsp://127.0.0.1:8554/{camera.id}"
    snapshot_body = (
        f"<trt:GetSnapshotUri><trt:ProfileToken>{camera.profile_token}</trt:ProfileToken></trt:GetSnapshotUri>"
    )
    snapshot = await call(http, camera, snapshot_body, media)
    assert snapshot.findtext(".//tt:Uri", namespaces=NS) == f"{camera.base}/onvif/snapshot.jpg"


async def test_unknown_profile_token_operation_and_malformed_requests_are_faults(
    farm: CameraFarm, http: aiohttp.ClientSession
) -> None:
    camera = farm.cameras[0]
    auth = token(PASSWORD, camera.now())
    body = "<trt:GetStreamUri><trt:ProfileToken>nope</trt:ProfileToken></trt:GetStreamUri>"
    status, data, _ = await post(http, camera.url, envelope(body, auth))
    assert (status, fault_code(data)) == (400, "ter:ActionNotSupported")
    status, data, _ = await post(http, camera.url, envelope("<tds:Reboot/>", auth))
    assert (status, fault_code(data)) == (400, "ter:ActionNotSupported")
    status, data, _ = await post(http, camera.url, b"<s:Envelope><unclosed>")
    assert (status, fault_code(data)) == (400, "ter:InvalidArgVal")
    # A client sending entities gets a fault too: the camera does not expand them.
    hostile = b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa">]><x>&a;</x>'
    status, data, _ = await post(http, camera.url, hostile)
    assert (status, fault_code(data)) == (400, "ter:InvalidArgVal")


async def test_snapshot_is_a_digest_protected_jpeg_made_once(farm: CameraFarm, http: aiohttp.ClientSession) -> None:
    camera = farm.cameras[2]
    url = f"{camera.base}/onvif/snapshot.jpg"
    async with http.get(url) as refused:
        assert refused.status == 401
        challenge = parse_challenge(refused.headers["WWW-Authenticate"])
    assert challenge is not None
    pictures = []
    for _ in range(2):
        header = authorization(challenge, method="GET", uri="/onvif/snapshot.jpg", username="admin", password=PASSWORD)
        async with http.get(url, headers={"Authorization": header}) as response:
            assert response.status == 200
            assert response.content_type == "image/jpeg"
            pictures.append(await response.read())
    assert pictures[0] == pictures[1]
    picture = cv2.imdecode(np.frombuffer(pictures[0], np.uint8), cv2.IMREAD_COLOR)
    assert picture is not None
    assert picture.shape == (360, 640, 3)


# -- authentication --------------------------------------------------------------------------------------------


async def test_username_token_with_a_created_off_by_more_than_the_window_is_refused(
    farm: CameraFarm, http: aiohttp.ClientSession
) -> None:
    camera = farm.cameras[0]
    body = "<tds:GetDeviceInformation/>"
    ok, _, _ = await post(http, camera.url, envelope(body, token(PASSWORD, camera.now() - timedelta(seconds=2))))
    assert ok == 200
    late = camera.now() - timedelta(seconds=camera.token_window_s + 5)
    status, data, _ = await post(http, camera.url, envelope(body, token(PASSWORD, late)))
    assert (status, fault_code(data)) == (401, "ter:NotAuthorized")
    status, _, _ = await post(http, camera.url, envelope(body, token("guess", camera.now())))
    assert status == 401
    status, _, _ = await post(http, camera.url, envelope(body, token(PASSWORD, camera.now(), username="root")))
    assert status == 401


async def test_a_skewed_camera_judges_created_by_its_own_clock(farm: CameraFarm, http: aiohttp.ClientSession) -> None:
    camera = farm.cameras[0]
    camera.clock_skew_s = 600.0
    body = "<tds:GetDeviceInformation/>"
    status, _, _ = await post(http, camera.url, envelope(body, token(PASSWORD, datetime.now(UTC))))
    assert status == 401
    status, _, _ = await post(http, camera.url, envelope(body, token(PASSWORD, camera.now())))
    assert status == 200


async def test_http_digest_is_checked_against_the_nonce_the_camera_gave(
    farm: CameraFarm, http: aiohttp.ClientSession
) -> None:
    camera = farm.cameras[0]
    body = envelope("<tds:GetDeviceInformation/>")
    assert (await digest_post(http, camera.url, body))[0] == 200
    assert (await digest_post(http, camera.url, body, password="guess"))[0] == 401
    made_up = authorization(
        DigestChallenge(realm="IP Camera", nonce="0123abcd", qop="auth"),
        method="POST",
        uri="/onvif/device_service",
        username="admin",
        password=PASSWORD,
    )
    assert (await post(http, camera.url, body, {"Authorization": made_up}))[0] == 401


async def test_wsse_only_camera_refuses_digest_and_offers_no_challenge(
    farm: CameraFarm, http: aiohttp.ClientSession
) -> None:
    camera = farm.cameras[0]
    camera.auth_mode = "wsse"
    status, data, challenge = await post(http, camera.url, envelope("<tds:GetDeviceInformation/>"))
    assert (status, fault_code(data), challenge) == (400, "ter:NotAuthorized", "")
    assert (await call(http, camera, "<tds:GetDeviceInformation/>")).find(".//tds:Model", NS) is not None


async def test_digest_only_camera_refuses_a_valid_token(farm: CameraFarm, http: aiohttp.ClientSession) -> None:
    camera = farm.cameras[0]
    camera.auth_mode = "digest"
    status, _, _ = await post(http, camera.url, envelope("<tds:GetDeviceInformation/>", token(PASSWORD, camera.now())))
    assert status == 401
    assert (await digest_post(http, camera.url, envelope("<tds:GetDeviceInformation/>")))[0] == 200


async def test_the_401_quirk_guards_even_the_clock(farm: CameraFarm, http: aiohttp.ClientSession) -> None:
    camera = farm.cameras[0]
    camera.probe_needs_auth = True
    status, _, _ = await post(http, camera.url, envelope("<tds:GetSystemDateAndTime/>"))
    assert status == 401
    assert (await call(http, camera, "<tds:GetSystemDateAndTime/>")).find(".//tt:UTCDateTime", NS) is not None


async def test_wrong_password_fault_refuses_the_configured_password(
    farm: CameraFarm, http: aiohttp.ClientSession
) -> None:
    camera = farm.cameras[0]
    camera.wrong_password = True
    body = envelope("<tds:GetDeviceInformation/>", token(PASSWORD, camera.now()))
    assert (await post(http, camera.url, body))[0] == 401
    assert (await digest_post(http, camera.url, envelope("<tds:GetDeviceInformation/>")))[0] == 401
    camera.wrong_password = False
    assert (await post(http, camera.url, envelope("<tds:GetDeviceInformation/>", token(PASSWORD, camera.now()))))[
        0
    ] == 200


# -- faults ----------------------------------------------------------------------------------------------------


async def test_down_closes_the_port_and_up_opens_it_again(farm: CameraFarm, http: aiohttp.ClientSession) -> None:
    camera = farm.cameras[0]
    probe = envelope("<tds:GetSystemDateAndTime/>")
    assert (await post(http, camera.url, probe))[0] == 200  # leaves a kept-alive connection behind
    await farm.set_down(camera, True)
    assert camera.down
    with pytest.raises(aiohttp.ClientConnectionError):
        await post(http, camera.url, probe)
    with pytest.raises(aiohttp.ClientConnectorError):
        await post(http, camera.url, probe)
    await farm.set_down(camera, False)
    assert (await post(http, camera.url, probe))[0] == 200
    # The other cameras never noticed.
    assert (await post(http, farm.cameras[1].url, probe))[0] == 200


async def test_hang_accepts_and_never_answers(farm: CameraFarm, http: aiohttp.ClientSession) -> None:
    camera = farm.cameras[0]
    camera.hang = True
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(HANG_PROBE_S):
            await http.post(camera.url, data=envelope("<tds:GetSystemDateAndTime/>"))
    assert camera.requests == 1  # the request did arrive: this is not a closed port
    camera.hang = False
    assert (await post(http, camera.url, envelope("<tds:GetSystemDateAndTime/>")))[0] == 200


async def test_slow_delays_the_answer(farm: CameraFarm, http: aiohttp.ClientSession) -> None:
    camera = farm.cameras[0]
    camera.slow_s = 0.4
    started = time.monotonic()
    assert (await post(http, camera.url, envelope("<tds:GetSystemDateAndTime/>")))[0] == 200
    assert time.monotonic() - started >= 0.4


async def test_garbage_and_hostile_xml_bodies(farm: CameraFarm, http: aiohttp.ClientSession) -> None:
    garbage, hostile = farm.cameras[0], farm.cameras[1]
    garbage.garbage = True
    hostile.hostile_xml = True
    _, data, _ = await post(http, garbage.url, envelope("<tds:GetSystemDateAndTime/>"))
    with pytest.raises(ET.ParseError):
        ET.fromstring(data)
    _, data, _ = await post(http, hostile.url, envelope("<tds:GetSystemDateAndTime/>"))
    assert b"<!ENTITY lol9" in data
    assert len(data) < 2000  # a few hundred bytes that would expand to gigabytes


async def test_reboot_is_down_for_a_while_then_back_with_new_tokens_and_uri(
    farm: CameraFarm, http: aiohttp.ClientSession
) -> None:
    camera = farm.cameras[3]
    old_token, old_boot = camera.profile_token, camera.boot
    probe = envelope("<tds:GetSystemDateAndTime/>")
    rebooting = asyncio.create_task(farm.reboot(camera, 0.3, new_stream_uri="rtsp://127.0.0.1:8554/after"))
    await eventually(lambda: camera.down, what="camera down for its reboot")
    with pytest.raises(aiohttp.ClientConnectionError):
        await post(http, camera.url, probe)
    await rebooting
    assert (await post(http, camera.url, probe))[0] == 200
    assert camera.boot == old_boot + 1
    profiles = (await call(http, camera, "<trt:GetProfiles/>")).findall(".//trt:Profiles", NS)
    assert [p.get("token") for p in profiles] == [camera.profile_token] != [old_token]
    stream = await call(
        http,
        camera,
        f"<trt:GetStreamUri><trt:ProfileToken>{camera.profile_token}</trt:ProfileToken></trt:GetStreamUri>",
    )
    assert stream.findtext(".//tt:Uri", namespaces=NS) == "rtsp://127.0.0.1:8554/after"


# -- scale and entry point -------------------------------------------------------------------------------------


async def test_a_thousand_cameras_start_fast_each_on_its_own_port(http: aiohttp.ClientSession) -> None:
    started = time.monotonic()
    async with CameraFarm(1000) as farm:
        elapsed = time.monotonic() - started
        assert len({c.port for c in farm.cameras}) == 1000
        sample = farm.cameras[::97]
        for camera in sample:
            root = await call(http, camera, "<tds:GetDeviceInformation/>")
            assert root.findtext(".//tds:HardwareId", namespaces=NS) == camera.id
        assert farm.camera("cam-500").port == farm.cameras[499].port
    assert elapsed < 5.0, elapsed  # about 0.2 s on an idle 2-core machine; generous for a loaded one


async def test_command_line_farm_serves_until_sigterm(http: aiohttp.ClientSession) -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "simulators.onvif_camera", "--count", "3", cwd=REPO, stdout=asyncio.subprocess.PIPE
    )
    assert proc.stdout is not None
    try:
        async with asyncio.timeout(30):
            assert (await proc.stdout.readline()).startswith(b"READY 3 cameras")
            ports = [int(p) for p in (await proc.stdout.readline()).split()[1].split(b",")]
        assert len(ports) == 3
        url = f"http://127.0.0.1:{ports[2]}/onvif/device_service"
        assert (await post(http, url, envelope("<tds:GetSystemDateAndTime/>")))[0] == 200
    finally:
        proc.send_signal(signal.SIGTERM)
        async with asyncio.timeout(10):
            assert await proc.wait() == 0
