"""Simulated ONVIF cameras: real SOAP 1.2 over HTTP, many cameras in one process, each on its own port.

Authentication is checked for real (WS-UsernameToken PasswordDigest and HTTP digest), and faults can be switched
on at run time, per camera: down, slow, hanging after accept, garbage, hostile XML, a changed password, a clock
off by N seconds, a reboot, and the quirks of real firmware (401 to the unauthenticated probe, one auth method
only, a token window of a few seconds).

    async with CameraFarm(count=12, rtsp_base="rtsp://127.0.0.1:8554") as farm:
        farm.cameras[0].url   # http://127.0.0.1:PORT/onvif/device_service
        farm.cameras[1].hang = True

`python -m simulators.onvif_camera --count 20 --base-port 8001` runs a farm for a demo.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import io
import logging
import os
import resource
import signal
import socket
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Literal

import cv2
import numpy as np
from aiohttp import web

from adapters.digest import parse_authorization, verify_authorization
from adapters.onvif.soap import XML_ERRORS, safe_fromstring, texts

logger = logging.getLogger(__name__)

AuthMode = Literal["any", "wsse", "digest"]
REALM = "IP Camera"
MAX_REQUEST_BYTES = 64 * 1024
# Requests that need no credentials, as on most firmware (ONVIF Core's PRE_AUTH class is wider, real cameras
# are stricter).
PRE_AUTH = frozenset({"GetSystemDateAndTime"})

_NS = (
    'xmlns:s="http://www.w3.org/2003/05/soap-envelope" xmlns:tds="http://www.onvif.org/ver10/device/wsdl" '
    'xmlns:trt="http://www.onvif.org/ver10/media/wsdl" xmlns:tt="http://www.onvif.org/ver10/schema" '
    'xmlns:ter="http://www.onvif.org/ver10/error"'
)
_ENVELOPE = '<?xml version="1.0" encoding="UTF-8"?><s:Envelope ' + _NS + "><s:Body>{}</s:Body></s:Envelope>"

_FAULT = _ENVELOPE.format(
    "<s:Fault><s:Code><s:Value>s:Sender</s:Value><s:Subcode><s:Value>ter:{code}</s:Value></s:Subcode></s:Code>"
    '<s:Reason><s:Text xml:lang="en">{text}</s:Text></s:Reason></s:Fault>'
)

# The "billion laughs": a few hundred bytes that expand to gigabytes in a naive parser.
# A firmware bug or an attacker: 32 MB of padding in an otherwise well-formed envelope, made once.
HUGE_ANSWER = (
    b'<?xml version="1.0" encoding="UTF-8"?><s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope"><s:Body>'
    + b" " * (32 * 1024 * 1024)
    + b"</s:Body></s:Envelope>"
)
TRUNCATED_ANSWER = (
    b'<?xml version="1.0" encoding="UTF-8"?><s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope"'
    b' xmlns:tds="http://www.onvif.org/ver10/device/wsdl" xmlns:tt="http://www.onvif.org/ver10/schema"><s:Body>'
    b"<tds:GetSystemDateAndTimeResponse><tds:SystemDateAndTime><tt:DateTimeType>Man"
)
HOSTILE_XML = (
    b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
    + b"".join(
        f'<!ENTITY lol{i} "{("&lol" + (str(i - 1) if i > 1 else "") + ";") * 10}">'.encode() for i in range(1, 10)
    )
    + b']><s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope"><s:Body>&lol9;</s:Body></s:Envelope>'
)


def _date_xml(tag: str, when: datetime) -> str:
    return (
        f"<tt:{tag}><tt:Time><tt:Hour>{when.hour}</tt:Hour><tt:Minute>{when.minute}</tt:Minute>"
        f"<tt:Second>{when.second}</tt:Second></tt:Time><tt:Date><tt:Year>{when.year}</tt:Year>"
        f"<tt:Month>{when.month}</tt:Month><tt:Day>{when.day}</tt:Day></tt:Date></tt:{tag}>"
    )


@dataclass(eq=False)
class SimulatedCamera:
    """One camera; change its fields at any time to switch faults on and off."""

    id: str
    port: int
    username: str = "admin"
    password: str = "admin123"
    rtsp_uri: str | None = None
    manufacturer: str = "Huxiao-Sim"
    model: str = "IPC-S1"
    auth_mode: AuthMode = "any"
    probe_needs_auth: bool = False  # the quirk: 401 even to GetSystemDateAndTime
    token_window_s: float = 5.0  # fussy firmware: reject a token whose Created is further off than this
    clock_skew_s: float = 0.0
    slow_s: float = 0.0
    hang: bool = False
    garbage: bool = False
    hostile_xml: bool = False
    huge: bool = False  # an answer that never ends (tens of MB of whitespace inside a SOAP envelope)
    truncated: bool = False  # an answer cut off mid-element
    wrong_password: bool = False  # someone changed the password on the camera: the configured one is refused
    boot: int = 1
    requests: int = 0
    site: web.BaseSite | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/onvif/device_service"

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def down(self) -> bool:
        return self.site is None

    @property
    def profile_token(self) -> str:
        # A reboot may renumber profiles on real firmware; clients must not cache tokens forever.
        return f"Profile_{self.boot}"

    @property
    def effective_password(self) -> str:
        return self.password + "-changed-on-site" if self.wrong_password else self.password

    def now(self) -> datetime:
        return datetime.now(UTC) + timedelta(seconds=self.clock_skew_s)


class CameraFarm:
    """Many simulated cameras served by one aiohttp app on many 127.0.0.1 ports."""

    def __init__(
        self,
        count: int = 0,
        *,
        rtsp_base: str | None = None,
        base_port: int = 0,
        password: str = "admin123",
    ) -> None:
        self._count = count
        self._rtsp_base = rtsp_base
        self._base_port = base_port
        self._password = password
        self.cameras: list[SimulatedCamera] = []
        self._by_port: dict[int, SimulatedCamera] = {}
        self._by_id: dict[str, SimulatedCamera] = {}
        self._closing = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self._jpegs: dict[str, bytes] = {}
        self._nonce_seed = os.urandom(8).hex()

    def camera(self, camera_id: str) -> SimulatedCamera:
        return self._by_id[camera_id]

    @property
    def urls(self) -> list[str]:
        return [camera.url for camera in self.cameras]

    async def __aenter__(self) -> CameraFarm:
        _raise_file_limit()
        app = web.Application(client_max_size=MAX_REQUEST_BYTES)
        app.router.add_post("/onvif/{service}", self._soap)
        app.router.add_get("/onvif/snapshot.jpg", self._snapshot)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
        await self._runner.setup()
        for index in range(self._count):
            await self.add_camera(f"cam-{index + 1:03d}", port=self._base_port + index if self._base_port else 0)
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._closing.set()
        if self._runner is not None:
            await self._runner.cleanup()

    async def add_camera(self, camera_id: str, *, port: int = 0, **fields: object) -> SimulatedCamera:
        """One more camera on `port` (0: a free port, bound at once so no other process can take it first)."""
        assert self._runner is not None
        listening: socket.socket | None = None
        if not port:
            listening = socket.socket()
            # As TCPSite(reuse_address=True) does: without it the connections this socket accepted (and their
            # TIME_WAIT) would keep the port from being opened again after `down` or a reboot.
            listening.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            listening.bind(("127.0.0.1", 0))
            port = int(listening.getsockname()[1])
        rtsp = f"{self._rtsp_base}/{camera_id}" if self._rtsp_base else None
        camera = SimulatedCamera(camera_id, port, password=self._password, rtsp_uri=rtsp)
        for name, value in fields.items():
            if not hasattr(camera, name):
                raise TypeError(f"SimulatedCamera has no field {name!r}")
            setattr(camera, name, value)
        self.cameras.append(camera)
        self._by_id[camera_id] = camera
        self._by_port[port] = camera
        if listening is None:
            await self.set_down(camera, False)
        else:
            site = web.SockSite(self._runner, listening)
            await site.start()
            camera.site = site
        return camera

    async def set_down(self, camera: SimulatedCamera, down: bool) -> None:
        """Close the camera's port (connections refused) or open it again."""
        assert self._runner is not None
        if down and camera.site is not None:
            await camera.site.stop()
            camera.site = None
        elif not down and camera.site is None:
            site = web.TCPSite(self._runner, "127.0.0.1", camera.port, reuse_address=True)
            await site.start()
            camera.site = site

    async def reboot(self, camera: SimulatedCamera, down_s: float, *, new_stream_uri: str | None = None) -> None:
        """Down for `down_s` seconds, then back with a new boot: new profile tokens, a new digest nonce and,
        when given, a new stream URI (as after a firmware update)."""
        await self.set_down(camera, True)
        await asyncio.sleep(down_s)
        camera.boot += 1
        if new_stream_uri is not None:
            camera.rtsp_uri = new_stream_uri
        await self.set_down(camera, False)

    # -- HTTP handlers --------------------------------------------------------------------------------------

    def _camera_of(self, request: web.Request) -> SimulatedCamera:
        sockname = request.transport.get_extra_info("sockname") if request.transport else None
        camera = self._by_port.get(sockname[1]) if sockname else None
        if camera is None:
            raise web.HTTPNotFound()
        if camera.down and request.transport is not None:
            # A camera that went down drops the connections a client still keeps alive, as a power cut does.
            request.transport.close()
            raise web.HTTPServiceUnavailable()
        return camera

    async def _misbehave(self, camera: SimulatedCamera) -> web.Response | None:
        if camera.hang:
            await self._closing.wait()  # accept, then never answer (until the farm shuts down)
            raise web.HTTPServiceUnavailable()
        if camera.slow_s:
            await asyncio.sleep(camera.slow_s)
        if camera.garbage:
            return web.Response(body=b"\x00\x13\x37 not a SOAP answer \xff\xfe", content_type="application/soap+xml")
        if camera.hostile_xml:
            return web.Response(body=HOSTILE_XML, content_type="application/soap+xml")
        if camera.huge:
            # Streamed from a file-like object: aiohttp warns that raw bytes this large would block its loop.
            return web.Response(body=io.BytesIO(HUGE_ANSWER), content_type="application/soap+xml")
        if camera.truncated:
            return web.Response(body=TRUNCATED_ANSWER, content_type="application/soap+xml")
        return None

    async def _soap(self, request: web.Request) -> web.Response:
        camera = self._camera_of(request)
        camera.requests += 1
        odd = await self._misbehave(camera)
        if odd is not None:
            return odd
        body = await request.read()
        try:
            root = safe_fromstring(body)
        except XML_ERRORS:
            return _fault("InvalidArgVal", "request is not well-formed XML", 400)
        operation, element = _operation(root)
        if operation is None:
            return _fault("ActionNotSupported", "no operation in the SOAP body", 400)
        needs_auth = operation not in PRE_AUTH or camera.probe_needs_auth
        if needs_auth and not self._authorized(camera, request, root):
            return self._refuse(camera)
        answer = self._answer(camera, operation, element)
        if answer is None:
            return _fault("ActionNotSupported", f"{operation} is not supported", 400)
        return web.Response(text=_ENVELOPE.format(answer), content_type="application/soap+xml", charset="utf-8")

    def _nonce(self, camera: SimulatedCamera) -> str:
        # One nonce per camera and boot, derived rather than stored: a thousand cameras keep no nonce tables, and
        # a reboot invalidates the nonce a client kept, as on real firmware.
        return hashlib.sha1(f"{self._nonce_seed}{camera.id}{camera.boot}".encode()).hexdigest()

    def _digest_ok(self, camera: SimulatedCamera, request: web.Request) -> bool:
        params = parse_authorization(request.headers.get("Authorization", ""))
        return bool(
            params
            and params.get("username") == camera.username
            and params.get("nonce") == self._nonce(camera)
            and verify_authorization(params, method=request.method, password=camera.effective_password, realm=REALM)
        )

    def _authorized(self, camera: SimulatedCamera, request: web.Request, root: ET.Element) -> bool:
        if camera.auth_mode in ("any", "digest") and self._digest_ok(camera, request):
            return True
        if camera.auth_mode in ("any", "wsse"):
            return _token_ok(camera, root)
        return False

    def _refuse(self, camera: SimulatedCamera) -> web.Response:
        if camera.auth_mode == "wsse":
            # WS-Security-only firmware answers a SOAP fault and offers no HTTP challenge.
            return _fault("NotAuthorized", "Sender not Authorized", 400)
        response = _fault("NotAuthorized", "Sender not Authorized", 401)
        response.headers["WWW-Authenticate"] = (
            f'Digest realm="{REALM}", qop="auth", nonce="{self._nonce(camera)}", algorithm=MD5'
        )
        return response

    def _answer(self, camera: SimulatedCamera, operation: str, element: ET.Element) -> str | None:
        media = f"{camera.base}/onvif/media_service"
        device = camera.url
        if operation == "GetSystemDateAndTime":
            now = camera.now()
            local = now + timedelta(hours=8)
            return (
                "<tds:GetSystemDateAndTimeResponse><tds:SystemDateAndTime><tt:DateTimeType>NTP</tt:DateTimeType>"
                "<tt:DaylightSavings>false</tt:DaylightSavings><tt:TimeZone><tt:TZ>CST-8</tt:TZ></tt:TimeZone>"
                f"{_date_xml('UTCDateTime', now)}{_date_xml('LocalDateTime', local)}"
                "</tds:SystemDateAndTime></tds:GetSystemDateAndTimeResponse>"
            )
        if operation == "GetDeviceInformation":
            return (
                f"<tds:GetDeviceInformationResponse><tds:Manufacturer>{camera.manufacturer}</tds:Manufacturer>"
                f"<tds:Model>{camera.model}</tds:Model><tds:FirmwareVersion>V5.7.3 build {camera.boot}"
                f"</tds:FirmwareVersion><tds:SerialNumber>SIM{camera.port:08d}</tds:SerialNumber>"
                f"<tds:HardwareId>{camera.id}</tds:HardwareId></tds:GetDeviceInformationResponse>"
            )
        if operation == "GetCapabilities":
            return (
                "<tds:GetCapabilitiesResponse><tds:Capabilities>"
                f"<tt:Device><tt:XAddr>{device}</tt:XAddr></tt:Device>"
                f"<tt:Media><tt:XAddr>{media}</tt:XAddr><tt:StreamingCapabilities>"
                "<tt:RTPMulticast>false</tt:RTPMulticast><tt:RTP_TCP>true</tt:RTP_TCP>"
                "<tt:RTP_RTSP_TCP>true</tt:RTP_RTSP_TCP></tt:StreamingCapabilities></tt:Media>"
                "</tds:Capabilities></tds:GetCapabilitiesResponse>"
            )
        if operation == "GetServices":
            services = [
                ("http://www.onvif.org/ver10/device/wsdl", device),
                ("http://www.onvif.org/ver10/media/wsdl", media),
            ]
            items = "".join(
                f"<tds:Service><tds:Namespace>{ns}</tds:Namespace><tds:XAddr>{addr}</tds:XAddr>"
                "<tds:Version><tt:Major>2</tt:Major><tt:Minor>60</tt:Minor></tds:Version></tds:Service>"
                for ns, addr in services
            )
            return f"<tds:GetServicesResponse>{items}</tds:GetServicesResponse>"
        if operation == "GetProfiles":
            return f"<trt:GetProfilesResponse>{_profile_xml(camera)}</trt:GetProfilesResponse>"
        if operation in ("GetStreamUri", "GetSnapshotUri"):
            token = _child_text(element, "ProfileToken")
            if token != camera.profile_token:
                return None
            if operation == "GetStreamUri":
                if camera.rtsp_uri is None:
                    return None
                uri, tag = camera.rtsp_uri, "GetStreamUriResponse"
            else:
                uri, tag = f"{camera.base}/onvif/snapshot.jpg", "GetSnapshotUriResponse"
            return (
                f"<trt:{tag}><trt:MediaUri><tt:Uri>{uri}</tt:Uri><tt:InvalidAfterConnect>false"
                "</tt:InvalidAfterConnect><tt:InvalidAfterReboot>false</tt:InvalidAfterReboot>"
                f"<tt:Timeout>PT0S</tt:Timeout></trt:MediaUri></trt:{tag}>"
            )
        return None

    async def _snapshot(self, request: web.Request) -> web.Response:
        camera = self._camera_of(request)
        odd = await self._misbehave(camera)
        if odd is not None:
            return odd
        if not self._digest_ok(camera, request):
            # Snapshots are plain HTTP: even WS-Security-only firmware guards them with a digest challenge.
            response = web.Response(status=401, text="Unauthorized")
            response.headers["WWW-Authenticate"] = (
                f'Digest realm="{REALM}", qop="auth", nonce="{self._nonce(camera)}", algorithm=MD5'
            )
            return response
        if camera.id not in self._jpegs:
            self._jpegs[camera.id] = labelled_picture_jpeg(camera.id)
        return web.Response(body=self._jpegs[camera.id], content_type="image/jpeg")


def _profile_xml(camera: SimulatedCamera) -> str:
    token = camera.profile_token
    return (
        f'<trt:Profiles token="{token}" fixed="true"><tt:Name>mainStream</tt:Name>'
        '<tt:VideoSourceConfiguration token="VideoSource_1"><tt:Name>VideoSource_1</tt:Name>'
        "<tt:UseCount>1</tt:UseCount><tt:SourceToken>VideoSourceToken</tt:SourceToken>"
        '<tt:Bounds x="0" y="0" width="640" height="360"/></tt:VideoSourceConfiguration>'
        '<tt:VideoEncoderConfiguration token="VideoEncoder_1"><tt:Name>VideoEncoder_1</tt:Name>'
        "<tt:UseCount>1</tt:UseCount><tt:Encoding>H264</tt:Encoding><tt:Resolution><tt:Width>640</tt:Width>"
        "<tt:Height>360</tt:Height></tt:Resolution><tt:Quality>4</tt:Quality><tt:RateControl>"
        "<tt:FrameRateLimit>10</tt:FrameRateLimit><tt:EncodingInterval>1</tt:EncodingInterval>"
        "<tt:BitrateLimit>1024</tt:BitrateLimit></tt:RateControl><tt:H264><tt:GovLength>10</tt:GovLength>"
        "<tt:H264Profile>Main</tt:H264Profile></tt:H264><tt:Multicast><tt:Address><tt:Type>IPv4</tt:Type>"
        "<tt:IPv4Address>0.0.0.0</tt:IPv4Address></tt:Address><tt:Port>0</tt:Port><tt:TTL>1</tt:TTL>"
        "<tt:AutoStart>false</tt:AutoStart></tt:Multicast><tt:SessionTimeout>PT60S</tt:SessionTimeout>"
        "</tt:VideoEncoderConfiguration></trt:Profiles>"
    )


def soap_ns(service: str) -> str:
    return f"http://www.onvif.org/ver10/{service}/wsdl"


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _operation(root: ET.Element) -> tuple[str | None, ET.Element]:
    for element in root:
        if _local(element.tag) == "Body":
            for child in element:
                return _local(child.tag), child
    return None, root


def _child_text(element: ET.Element, name: str) -> str | None:
    for child in element.iter():
        if _local(child.tag) == name and child.text:
            return child.text.strip()
    return None


_TOKEN_PARTS = frozenset({"Username", "Password", "Nonce", "Created"})


def _token_ok(camera: SimulatedCamera, root: ET.Element) -> bool:
    header = next((e for e in root if _local(e.tag) == "Header"), None)
    if header is None:
        return False
    found = texts(header, _TOKEN_PARTS)
    username, digest = found.get("Username"), found.get("Password")
    nonce, created = found.get("Nonce"), found.get("Created")
    if not (username and digest and nonce and created) or username != camera.username:
        return False
    try:
        nonce_raw = base64.b64decode(nonce, validate=True)
        stamp = datetime.fromisoformat(created.replace("Z", "+00:00"))
    except ValueError:
        return False
    if abs((stamp - camera.now()).total_seconds()) > camera.token_window_s:
        return False
    expected = base64.b64encode(
        hashlib.sha1(nonce_raw + created.encode() + camera.effective_password.encode()).digest()
    )
    return expected.decode() == digest


def _fault(code: str, text: str, status: int) -> web.Response:
    return web.Response(
        text=_FAULT.format(code=code, text=text), status=status, content_type="application/soap+xml", charset="utf-8"
    )


def labelled_picture_jpeg(label: str, width: int = 640, height: int = 360) -> bytes:
    """A recognisable picture with the camera's id on it: what a snapshot URI returns."""
    y, x = np.mgrid[0:height, 0:width]
    picture = np.dstack([(x * 255 // width), (y * 255 // height), ((x + y) * 127 // (width + height))])
    picture = picture.astype(np.uint8)
    cv2.putText(picture, label, (20, height // 2), cv2.FONT_HERSHEY_SIMPLEX, 1.6, (255, 255, 255), 3)
    ok, encoded = cv2.imencode(".jpg", picture, [cv2.IMWRITE_JPEG_QUALITY, 80])
    assert ok
    return bytes(encoded.tobytes())


def _raise_file_limit() -> None:
    """A thousand cameras need a thousand listening sockets: lift the soft limit to the hard one."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


async def _serve(count: int, base_port: int, rtsp_base: str | None) -> None:
    async with CameraFarm(count, base_port=base_port, rtsp_base=rtsp_base) as farm:
        print(f"READY {len(farm.cameras)} cameras: {farm.cameras[0].url} ... {farm.cameras[-1].url}", flush=True)
        print("PORTS " + ",".join(str(c.port) for c in farm.cameras), flush=True)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description="simulated ONVIF cameras on 127.0.0.1")
    parser.add_argument("--count", type=int, default=12)
    parser.add_argument("--base-port", type=int, default=0, help="first port (0: any free ports)")
    parser.add_argument("--rtsp-base", default=None, help="e.g. rtsp://127.0.0.1:8554 (stream = base/<camera id>)")
    args = parser.parse_args()
    asyncio.run(_serve(args.count, args.base_port, args.rtsp_base))


if __name__ == "__main__":
    main()
