"""A fast ONVIF client for health rounds: a few fixed SOAP calls over one shared aiohttp session.

Camera quirks handled here (each seen in the field, see STANDARDS.md):
- some cameras answer HTTP 401 even to the unauthenticated GetSystemDateAndTime: any HTTP answer still proves the
  camera is reachable;
- some accept only WS-UsernameToken, some only HTTP digest: try the other before calling it a password fault;
- fussy firmware rejects a token whose Created is a few seconds off its own clock: Created is offset by the skew
  the probe measured.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from urllib.parse import urljoin, urlsplit

import aiohttp
from yarl import URL

from adapters.digest import DigestChallenge, answer_challenge, authorization, parse_challenge
from adapters.onvif import soap
from gateway.domain.errors import AuthFailed, DeviceProtocolError, DeviceTimeout, DeviceUnreachable

logger = logging.getLogger(__name__)

# An ONVIF answer for these calls is a few kilobytes; a camera sending more is broken or hostile.
MAX_ANSWER_BYTES = 256 * 1024
# Snapshots from 4K cameras run to a few megabytes.
MAX_SNAPSHOT_BYTES = 8 * 1024 * 1024
# What aiohttp raises when a camera refuses, resets or garbles the HTTP exchange itself (ClientError covers
# refused connections, resets, malformed HTTP and bad URLs; OSError what slips past it from the socket layer).
NETWORK_ERRORS = (aiohttp.ClientError, OSError)
AUTH_METHODS = ("wsse", "digest")
_DEVICE_INFO = frozenset({"Manufacturer", "Model", "FirmwareVersion", "SerialNumber", "HardwareId"})
# Parsed service addresses kept: aiohttp would otherwise parse and encode the same URL string on every request
# (a measurable share of a warm round's CPU). Two per camera (device and media service), room for a few thousand.
URL_CACHE_SIZE = 8192


@dataclass(frozen=True, slots=True)
class ProbeResult:
    rtt_ms: float
    camera_time: datetime | None
    clock_skew_s: float | None  # camera clock minus ours; None when the camera would not tell (401 quirk)


@dataclass(frozen=True, slots=True)
class DeviceInfo:
    manufacturer: str | None
    model: str | None
    firmware: str | None
    serial: str | None
    hardware: str | None


@dataclass(frozen=True, slots=True)
class AuthResult:
    method: str  # "wsse" or "digest"
    device_info: DeviceInfo


@dataclass(frozen=True, slots=True)
class Profile:
    token: str
    name: str | None
    encoding: str | None
    width: int | None
    height: int | None


@dataclass(frozen=True, slots=True)
class MediaInfo:
    profiles: tuple[Profile, ...]
    stream_uri: str | None
    snapshot_uri: str | None
    media_url: str


@dataclass(slots=True)
class AuthMemo:
    """What worked last time with one camera, so a warm round is one request: the method and a digest nonce."""

    method: str | None = None
    challenge: DigestChallenge | None = None
    nc: int = 0


@dataclass(frozen=True, slots=True)
class _Answer:
    status: int
    body: bytes
    challenge: str  # the WWW-Authenticate header of a 401, "" otherwise


async def _post(
    session: aiohttp.ClientSession,
    camera_id: str,
    url: str,
    body: bytes,
    operation: str,
    timeout: float,
    headers: dict[str, str] | None = None,
) -> _Answer:
    all_headers = {"Content-Type": soap.action(operation)}
    if headers:
        all_headers.update(headers)
    try:
        async with asyncio.timeout(timeout):
            target = _parsed(url)
            async with session.post(target, data=body, headers=all_headers, allow_redirects=False) as response:
                data = await response.content.read(MAX_ANSWER_BYTES + 1)
                if len(data) > MAX_ANSWER_BYTES:
                    raise DeviceProtocolError(camera_id, f"{operation}: answer larger than {MAX_ANSWER_BYTES} bytes")
                challenge = response.headers.get("WWW-Authenticate", "") if response.status == 401 else ""
                return _Answer(response.status, data, challenge)
    except TimeoutError:
        raise DeviceTimeout(camera_id, f"{operation}: no answer within {timeout:g} s") from None
    except NETWORK_ERRORS as exc:
        raise DeviceUnreachable(camera_id, f"{operation}: {type(exc).__name__}: {exc}") from None


@functools.lru_cache(maxsize=URL_CACHE_SIZE)
def _parsed(url: str) -> URL:
    try:
        return URL(url)
    except ValueError:  # as aiohttp itself reports a malformed address: a network error naming the camera
        raise aiohttp.InvalidURL(url) from None


async def probe(session: aiohttp.ClientSession, camera_id: str, url: str, timeout: float) -> ProbeResult:
    """The cheap health probe: GetSystemDateAndTime needs no credentials and so cannot lock an account out."""
    sent = time.time()
    started = time.perf_counter()
    answer = await _post(session, camera_id, url, soap.SYSTEM_DATE_AND_TIME, "GetSystemDateAndTime", timeout)
    rtt = time.perf_counter() - started
    if answer.status != 200:
        # Any HTTP answer proves the camera is there: some firmware wants credentials even for its clock (401),
        # others fault on it. The authenticated call that follows tells what is wrong, if anything.
        return ProbeResult(rtt * 1000, None, None)
    root = soap.parse(camera_id, answer.body)
    camera_time = soap.utc_datetime(camera_id, root)
    # Compare with our clock at the middle of the exchange: the camera read its clock somewhere in it.
    midpoint = datetime.fromtimestamp(sent + rtt / 2, UTC)
    return ProbeResult(rtt * 1000, camera_time, (camera_time - midpoint).total_seconds())


async def _call(
    session: aiohttp.ClientSession,
    camera_id: str,
    url: str,
    operation: str,
    body: str,
    username: str,
    password: str,
    timeout: float,
    skew_s: float,
    memo: AuthMemo,
) -> ET.Element:
    """One authenticated call, trying the method that worked before first, then the other."""
    order = ["digest", "wsse"] if memo.method == "digest" else ["wsse", "digest"]
    refused: list[str] = []
    for method in order:
        if method == "wsse":
            created = datetime.now(UTC) + timedelta(seconds=skew_s)
            envelope = soap.envelope(body, soap.username_token(username, password, created))
            answer = await _post(session, camera_id, url, envelope, operation, timeout)
        else:
            answer = await _digest_post(
                session, camera_id, url, soap.envelope(body), operation, timeout, username, password, memo
            )
        if answer.status == 200:
            memo.method = method
            return soap.parse(camera_id, answer.body)
        if method == "wsse" and answer.status == 401 and memo.challenge is None:
            # A camera that refuses the token with an HTTP challenge has just told us its digest nonce: keep it,
            # so the digest attempt is one request, not an unauthenticated one plus the real one.
            memo.challenge = parse_challenge(answer.challenge)
            memo.nc = 0
        root = _try_parse(answer.body)
        # Refusals come as HTTP 401/403, or as a SOAP fault ter:NotAuthorized under 400/500 (WS-Security-only
        # firmware). A 400/500 that is no such fault is a protocol error, not a password problem.
        if answer.status in (401, 403) or (
            answer.status in (400, 500) and root is not None and soap.is_not_authorized(root)
        ):
            refused.append(f"{method}: HTTP {answer.status}")
            continue
        reason = soap.fault_reason(root) if root is not None else None
        raise DeviceProtocolError(camera_id, f"{operation}: HTTP {answer.status} {reason or ''}".strip())
    memo.method = None
    raise AuthFailed(camera_id, f"{operation}: credentials refused ({'; '.join(refused)})")


def _memo(memo: AuthMemo | None, method: str | None) -> AuthMemo:
    if memo is not None:
        return memo
    if method is not None and method not in AUTH_METHODS:
        raise ValueError(f"unknown ONVIF authentication method {method!r} (expected one of {AUTH_METHODS})")
    return AuthMemo(method=method)


def _try_parse(body: bytes) -> ET.Element | None:
    try:
        return soap.parse("", body)
    except DeviceProtocolError:
        return None


async def _digest_post(
    session: aiohttp.ClientSession,
    camera_id: str,
    url: str,
    body: bytes,
    operation: str,
    timeout: float,
    username: str,
    password: str,
    memo: AuthMemo,
) -> _Answer:
    path = urlsplit(url).path or "/"
    kept = memo.challenge
    if kept is not None:
        # Reuse the last nonce with the next nonce count: one request instead of two on a warm round.
        memo.nc += 1
        header = authorization(kept, method="POST", uri=path, username=username, password=password, nc=memo.nc)
        answer = await _post(session, camera_id, url, body, operation, timeout, {"Authorization": header})
    else:
        answer = await _post(session, camera_id, url, body, operation, timeout)
    if answer.status != 401:
        return answer
    challenge = parse_challenge(answer.challenge)
    if challenge is None:
        return answer
    if kept is not None and challenge.nonce == kept.nonce and not challenge.stale:
        return answer  # the same nonce refused again: the password is wrong, asking twice will not help
    memo.challenge, memo.nc = challenge, 1
    header = authorization(challenge, method="POST", uri=path, username=username, password=password, nc=1)
    return await _post(session, camera_id, url, body, operation, timeout, {"Authorization": header})


async def check_auth(
    session: aiohttp.ClientSession,
    camera_id: str,
    url: str,
    username: str,
    password: str,
    timeout: float,
    skew_s: float = 0.0,
    memo: AuthMemo | None = None,
    *,
    prefer: str | None = None,
) -> AuthResult:
    """Prove the credentials with GetDeviceInformation; AuthFailed only when every method was refused.

    Keep one `memo` per camera across rounds: the method that worked (and its digest nonce) is tried first, so a
    warm round is one request. `prefer` seeds a fresh memo with a method known from elsewhere ("wsse"/"digest").
    """
    memo = _memo(memo, prefer)
    root = await _call(
        session,
        camera_id,
        url,
        "GetDeviceInformation",
        soap.BODIES["GetDeviceInformation"],
        username,
        password,
        timeout,
        skew_s,
        memo,
    )
    found = soap.texts(root, _DEVICE_INFO)
    info = DeviceInfo(
        manufacturer=found.get("Manufacturer"),
        model=found.get("Model"),
        firmware=found.get("FirmwareVersion"),
        serial=found.get("SerialNumber"),
        hardware=found.get("HardwareId"),
    )
    return AuthResult(memo.method or "wsse", info)


async def discover_media(
    session: aiohttp.ClientSession,
    camera_id: str,
    url: str,
    username: str,
    password: str,
    timeout: float,
    skew_s: float = 0.0,
    memo: AuthMemo | None = None,
    *,
    auth_method: str | None = None,
) -> MediaInfo:
    """Profiles, stream URI and snapshot URI of the main profile (on first contact, after reboots, now and then).

    GetCapabilities gives the media service's address, GetProfiles the profiles; the first profile is the main
    stream on every camera seen so far, so its stream and snapshot URIs are the ones asked for.
    """
    memo = _memo(memo, auth_method)

    async def call(target: str, operation: str, body: str) -> ET.Element:
        return await _call(session, camera_id, target, operation, body, username, password, timeout, skew_s, memo)

    caps = await call(url, "GetCapabilities", soap.BODIES["GetCapabilities"])
    media = soap.find(caps, "Media")
    media_url = soap.text(media, "XAddr") if media is not None else None
    media_url = _same_host(url, media_url) if media_url else url
    root = await call(media_url, "GetProfiles", soap.BODIES["GetProfiles"])
    profiles = []
    for element in root.iter():
        if soap.local(element.tag) != "Profiles":
            continue
        encoder = soap.find(element, "VideoEncoderConfiguration")
        width = soap.text(encoder, "Width") if encoder is not None else None
        height = soap.text(encoder, "Height") if encoder is not None else None
        profiles.append(
            Profile(
                token=element.get("token", ""),
                name=soap.text(element, "Name"),
                encoding=soap.text(encoder, "Encoding") if encoder is not None else None,
                width=int(width) if width and width.isdigit() else None,
                height=int(height) if height and height.isdigit() else None,
            )
        )
    if not profiles:
        raise DeviceProtocolError(camera_id, "GetProfiles: the camera lists no media profile")
    main = profiles[0]
    stream = await call(media_url, "GetStreamUri", soap.stream_uri_body(main.token))
    try:
        snapshot: str | None = soap.text(
            await call(media_url, "GetSnapshotUri", soap.snapshot_uri_body(main.token)), "Uri"
        )
    except DeviceProtocolError:
        snapshot = None  # optional in ONVIF Profile S; many older cameras lack it
    stream_uri = soap.text(stream, "Uri")
    return MediaInfo(
        profiles=tuple(profiles),
        stream_uri=_same_host(url, stream_uri) if stream_uri else None,
        snapshot_uri=_same_host(url, snapshot) if snapshot else None,
        media_url=media_url,
    )


def _same_host(device_url: str, advertised: str) -> str:
    """Cameras behind NAT or with a stale IP advertise addresses we cannot reach; use the host we polled.

    Only the host is replaced: the scheme, port and path the camera gives are kept.
    """
    device = urlsplit(device_url)
    target = urlsplit(urljoin(device_url, advertised))
    if not target.hostname or target.hostname == device.hostname:
        return target.geturl()
    netloc = device.hostname or ""
    if target.port:
        netloc = f"{netloc}:{target.port}"
    if target.username:
        netloc = f"{target.username}{':' + target.password if target.password else ''}@{netloc}"
    return target._replace(netloc=netloc).geturl()


async def fetch_snapshot(
    session: aiohttp.ClientSession, camera_id: str, uri: str, username: str, password: str, timeout: float
) -> bytes:
    """A JPEG from the camera's snapshot URI, answering whichever challenge it sends (Basic or digest)."""
    try:
        async with asyncio.timeout(timeout):
            async with session.get(uri) as response:
                if response.status == 401 and username:
                    challenges = response.headers.getall("WWW-Authenticate", [])
                    parts = urlsplit(uri)
                    path = parts.path + (f"?{parts.query}" if parts.query else "")
                    header = answer_challenge(challenges, method="GET", uri=path, username=username, password=password)
                    if header is None:
                        raise AuthFailed(camera_id, "snapshot: camera wants an authentication we do not speak")
                    async with session.get(uri, headers={"Authorization": header}) as second:
                        return await _jpeg(camera_id, second)
                return await _jpeg(camera_id, response)
    except TimeoutError:
        raise DeviceTimeout(camera_id, f"snapshot: no picture within {timeout:g} s") from None
    except NETWORK_ERRORS as exc:
        raise DeviceUnreachable(camera_id, f"snapshot: {type(exc).__name__}") from None


async def _jpeg(camera_id: str, response: aiohttp.ClientResponse) -> bytes:
    if response.status in (401, 403):
        raise AuthFailed(camera_id, f"snapshot: HTTP {response.status}")
    if response.status != 200:
        raise DeviceProtocolError(camera_id, f"snapshot: HTTP {response.status}")
    data = await response.content.read(MAX_SNAPSHOT_BYTES + 1)
    if len(data) > MAX_SNAPSHOT_BYTES or not data.startswith(b"\xff\xd8"):
        raise DeviceProtocolError(camera_id, "snapshot: not a JPEG")
    return data
