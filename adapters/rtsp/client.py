"""An asyncio RTSP probe: OPTIONS then DESCRIBE, with digest (or basic) auth, no subprocess and no decoder.

It answers "does this stream exist, and what is it?" in two small requests on one TCP connection, so a round of
a thousand cameras costs milliseconds of CPU; decoding a picture is the patrol's job, not the health poll's.

A `StreamMemo` kept per camera across rounds makes a warm probe one request: once a stream has answered, the next
probe sends DESCRIBE alone (OPTIONS only told us the server and, on some cameras, the challenge) with credentials
built from the last challenge. A camera that refuses the shortcut (a stale nonce, firmware that wants OPTIONS
first) is answered with the full exchange on the same connection, so the memo can only save requests.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import os
import time
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

from adapters.digest import DigestChallenge, authorization, parse_challenge
from adapters.rtsp.sdp import parse_sdp
from gateway.domain.errors import AuthFailed, DeviceProtocolError, DeviceTimeout, DeviceUnreachable

logger = logging.getLogger(__name__)

USER_AGENT = "huxiao-gateway"
# RFC 2326 section 3.2 (rtsp) and the IANA registration of rtsps.
DEFAULT_PORTS = {"rtsp": 554, "rtsps": 322}
# An RTSP answer head is a few hundred bytes and an SDP a few kilobytes; refuse more, it is not a camera.
MAX_HEAD_BYTES = 16 * 1024
MAX_BODY_BYTES = 64 * 1024
# A 503 from a camera at its client limit or restarting its encoder: ask once more after this pause.
BUSY_RETRY_S = 0.2
# The socket is closed after every probe; a peer that never finishes the TCP goodbye is not waited for longer.
CLOSE_WAIT_S = 1.0


@dataclass(frozen=True, slots=True)
class StreamInfo:
    """What the camera's DESCRIBE says of its video; `rtt_ms` covers connect, OPTIONS and DESCRIBE."""

    ok: bool
    codec: str | None
    width: int | None
    height: int | None
    rtt_ms: float
    framerate: float | None = None
    server: str | None = None  # the Server header: tells the vendor/firmware at commissioning


@dataclass(slots=True)
class StreamMemo:
    """What the last probe of one stream learnt (mutable, one per camera, owned by the poller)."""

    known: bool = False  # it answered DESCRIBE before: the next probe skips OPTIONS
    challenge: DigestChallenge | None = None  # its last digest challenge, for credentials sent up front
    basic: bool = False  # it asked for Basic instead
    nc: int = 0


@dataclass(frozen=True, slots=True)
class _Reply:
    status: int
    headers: dict[str, list[str]]
    body: bytes

    def header(self, name: str) -> str:
        values = self.headers.get(name.lower())
        return values[0] if values else ""


def split_credentials(uri: str, username: str | None, password: str | None) -> tuple[str, str | None, str | None]:
    """The URI without `user:pass@` (never sent on the request line), and the credentials to use."""
    parts = urlsplit(uri)
    if parts.username is None:
        return uri, username, password
    netloc = parts.hostname or ""
    if parts.port:
        netloc = f"{netloc}:{parts.port}"
    clean = parts._replace(netloc=netloc).geturl()
    return clean, unquote(parts.username), unquote(parts.password or "")


async def _read_reply(camera_id: str, reader: asyncio.StreamReader) -> _Reply:
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.LimitOverrunError:
        raise DeviceProtocolError(camera_id, "RTSP answer head is too long") from None
    except asyncio.IncompleteReadError as exc:
        if not exc.partial:
            raise DeviceUnreachable(camera_id, "RTSP connection closed without an answer") from None
        raise DeviceProtocolError(camera_id, "RTSP answer cut short") from None
    lines = head.decode("latin-1").split("\r\n")
    status_line = lines[0].split(" ", 2)
    if len(status_line) < 2 or not status_line[0].startswith("RTSP/") or not status_line[1].isdigit():
        raise DeviceProtocolError(camera_id, f"not an RTSP answer: {lines[0][:60]!r}")
    headers: dict[str, list[str]] = {}
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if sep:
            headers.setdefault(name.strip().lower(), []).append(value.strip())
    length_text = headers.get("content-length", ["0"])[0]
    if not length_text.isdigit() or int(length_text) > MAX_BODY_BYTES:
        raise DeviceProtocolError(camera_id, f"RTSP body length {length_text[:20]!r} refused")
    try:
        body = await reader.readexactly(int(length_text))
    except asyncio.IncompleteReadError:
        raise DeviceProtocolError(camera_id, "RTSP body cut short") from None
    return _Reply(int(status_line[1]), headers, body)


class _Session:
    def __init__(self, camera_id: str, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.camera_id = camera_id
        self.reader = reader
        self.writer = writer
        self.cseq = 0

    async def request(self, method: str, uri: str, headers: dict[str, str]) -> _Reply:
        self.cseq += 1
        lines = [f"{method} {uri} RTSP/1.0", f"CSeq: {self.cseq}", f"User-Agent: {USER_AGENT}"]
        lines += [f"{k}: {v}" for k, v in headers.items()]
        self.writer.write(("\r\n".join(lines) + "\r\n\r\n").encode())
        await self.writer.drain()
        return await _read_reply(self.camera_id, self.reader)


def _auth_header(
    reply: _Reply, method: str, uri: str, username: str, password: str, memo: StreamMemo | None = None
) -> str | None:
    for value in reply.headers.get("www-authenticate", []):
        challenge = parse_challenge(value)
        if challenge is not None:
            if memo is not None:
                memo.challenge, memo.basic, memo.nc = challenge, False, 1
            return authorization(challenge, method=method, uri=uri, username=username, password=password)
    if any(v.lower().startswith("basic") for v in reply.headers.get("www-authenticate", [])):
        if memo is not None:
            memo.challenge, memo.basic = None, True
        return _basic(username, password)
    return None


def _basic(username: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()


def _remembered_auth(memo: StreamMemo, uri: str, username: str | None, password: str | None) -> dict[str, str]:
    """Credentials for a DESCRIBE sent before any challenge, from what the stream asked for last time."""
    if not username:
        return {}
    if memo.challenge is not None:
        memo.nc += 1
        header = authorization(
            memo.challenge, method="DESCRIBE", uri=uri, username=username, password=password or "", nc=memo.nc
        )
        return {"Authorization": header}
    if memo.basic:
        return {"Authorization": _basic(username, password or "")}
    return {}


async def _closed(writer: asyncio.StreamWriter) -> None:
    """Wait briefly for the socket to close; a camera that will not finish the TCP goodbye costs us nothing."""
    try:
        async with asyncio.timeout(CLOSE_WAIT_S):
            await writer.wait_closed()
    except (TimeoutError, OSError):
        pass


def connect_failure(exc: OSError) -> str:
    """Why a TCP connect failed, in the kernel's words with the address: asyncio's own text ("Connect call
    failed (host, port)") leaves out whether it was refused, unreachable or out of local ports."""
    if exc.errno is not None:
        return f"{os.strerror(exc.errno)} ({exc.strerror or exc})"
    return str(exc.strerror or exc)


async def probe_stream(
    camera_id: str,
    uri: str,
    username: str | None,
    password: str | None,
    timeout: float,
    memo: StreamMemo | None = None,
) -> StreamInfo:
    """OPTIONS + DESCRIBE the stream (DESCRIBE alone when `memo` knows it); codec and size from its SDP.

    Raises a DeviceError naming the camera."""
    try:
        clean, username, password = split_credentials(uri, username, password)
        parts = urlsplit(clean)
        port = parts.port or DEFAULT_PORTS.get(parts.scheme, 0)
    except ValueError:  # a port that is not a number, an unbalanced IPv6 bracket
        raise DeviceProtocolError(camera_id, "stream URI is malformed") from None
    if parts.scheme not in DEFAULT_PORTS or not parts.hostname:
        raise DeviceProtocolError(camera_id, "stream URI is not an rtsp:// URL")
    started = time.perf_counter()
    writer: asyncio.StreamWriter | None = None
    options: _Reply | None = None
    try:
        async with asyncio.timeout(timeout):
            try:
                reader, writer = await asyncio.open_connection(
                    parts.hostname, port, limit=MAX_HEAD_BYTES, ssl=parts.scheme == "rtsps"
                )
            except OSError as exc:
                raise DeviceUnreachable(camera_id, f"RTSP connect failed: {connect_failure(exc)}") from None
            session = _Session(camera_id, reader, writer)
            reply: _Reply | None = None
            if memo is not None and memo.known:
                reply = await _describe_known(session, clean, username, password, memo)
                if reply.status != 200:
                    reply = None  # the shortcut was refused: the full exchange below decides, as on first contact
            if reply is None:
                if memo is not None:
                    memo.known = False
                options, reply = await _describe_full(session, clean, username, password, memo)
            if reply.status != 200:
                raise DeviceProtocolError(camera_id, f"RTSP DESCRIBE answered {reply.status}")
            # Measured before the goodbye: closing the socket is our cost, not the camera's answer time.
            rtt_ms = (time.perf_counter() - started) * 1000
    except TimeoutError:
        raise DeviceTimeout(camera_id, f"RTSP: no answer within {timeout:g} s") from None
    except (ConnectionError, OSError) as exc:
        raise DeviceUnreachable(camera_id, f"RTSP connection lost: {type(exc).__name__}") from None
    finally:
        if writer is not None:
            writer.close()
            await _closed(writer)
    video = next((m for m in parse_sdp(reply.body.decode("utf-8", "replace")) if m.kind == "video"), None)
    if video is None:
        raise DeviceProtocolError(camera_id, "RTSP stream has no video in its SDP")
    server = reply.header("server") or (options.header("server") if options is not None else "") or None
    if memo is not None:
        memo.known = True
    logger.debug("%s: RTSP %s %sx%s in %.1f ms", camera_id, video.codec, video.width, video.height, rtt_ms)
    return StreamInfo(True, video.codec, video.width, video.height, rtt_ms, video.framerate, server)


async def _describe_known(
    session: _Session, uri: str, username: str | None, password: str | None, memo: StreamMemo
) -> _Reply:
    """A warm probe: DESCRIBE with the credentials the stream wanted last time; a fresh challenge answered once."""
    headers = {"Accept": "application/sdp", **_remembered_auth(memo, uri, username, password)}
    reply = await session.request("DESCRIBE", uri, headers)
    if reply.status == 401 and username:
        kept = memo.challenge
        fresh = next(filter(None, map(parse_challenge, reply.headers.get("www-authenticate", []))), None)
        if kept is not None and fresh is not None and fresh.nonce == kept.nonce and not fresh.stale:
            # The same nonce refused: the password is wrong. Asking again would only add a failed login, and
            # cameras lock accounts after a few of those.
            raise AuthFailed(session.camera_id, "RTSP credentials refused")
        # The nonce went stale (many cameras issue one per connection) or the stream now wants credentials:
        # answer the new challenge, once; refused again, the credentials are wrong.
        header = _auth_header(reply, "DESCRIBE", uri, username, password or "", memo)
        if header is not None:
            reply = await session.request("DESCRIBE", uri, {"Accept": "application/sdp", "Authorization": header})
            if reply.status == 401:
                raise AuthFailed(session.camera_id, "RTSP credentials refused")
    if reply.status == 503:
        await asyncio.sleep(BUSY_RETRY_S)  # as in the full exchange: a camera at its client limit, asked once more
        reply = await session.request(
            "DESCRIBE", uri, {"Accept": "application/sdp", **_remembered_auth(memo, uri, username, password)}
        )
    return reply


async def _describe_full(
    session: _Session, uri: str, username: str | None, password: str | None, memo: StreamMemo | None
) -> tuple[_Reply, _Reply]:
    """First contact: OPTIONS, DESCRIBE, the challenge answered; returns (OPTIONS reply, last DESCRIBE reply)."""
    camera_id = session.camera_id
    options = await session.request("OPTIONS", uri, {})
    describe_headers = {"Accept": "application/sdp"}
    reply = await session.request("DESCRIBE", uri, describe_headers)
    credentials: dict[str, str] = {}
    if reply.status == 401 or options.status == 401:
        if not username:
            raise AuthFailed(camera_id, "RTSP stream wants credentials and none are configured")
        challenge = reply if reply.status == 401 else options
        header = _auth_header(challenge, "DESCRIBE", uri, username, password or "", memo)
        if header is None:
            raise AuthFailed(camera_id, "RTSP stream wants an authentication we do not speak")
        credentials = {"Authorization": header}
        reply = await session.request("DESCRIBE", uri, {**describe_headers, **credentials})
        if reply.status == 401:
            raise AuthFailed(camera_id, "RTSP credentials refused")
    if reply.status == 503:
        # "Service unavailable": a camera at its client limit, or one (re)starting its encoder. RFC 2326 lets the
        # client come back; once, briefly, within the same deadline.
        await asyncio.sleep(BUSY_RETRY_S)
        reply = await session.request("DESCRIBE", uri, {**describe_headers, **credentials})
    return options, reply
