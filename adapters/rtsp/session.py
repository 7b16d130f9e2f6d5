"""An asyncio RTSP player: DESCRIBE, SETUP (RTP interleaved on the RTSP connection), PLAY, RTP packets, TEARDOWN.

Interleaved TCP (RFC 2326 section 10.12) rather than RTP over UDP: one connection per camera, no port pairs to
open through a school's NAT, and a dead camera shows as a closed socket at once. Every wait is bounded and becomes a
DeviceError naming the camera. Nothing is decoded here: `packets()` yields the raw RTP packets of the video track.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from types import TracebackType
from urllib.parse import urljoin, urlsplit

from adapters.digest import DigestChallenge, authorization, parse_challenge
from adapters.rtsp.client import DEFAULT_PORTS, USER_AGENT, connect_failure, split_credentials
from adapters.rtsp.sdp import MediaDescription, parse_sdp
from gateway.domain.errors import AuthFailed, DeviceError, DeviceProtocolError, DeviceTimeout, DeviceUnreachable

logger = logging.getLogger(__name__)

# Interleaved channel numbers we ask for: RTP on 0, RTCP on 1 (RTCP is read and passed over).
RTP_CHANNEL = 0
# An answer head is a few hundred bytes and an SDP a few kilobytes; more is not a camera.
MAX_HEAD_BYTES = 16 * 1024
MAX_BODY_BYTES = 64 * 1024
# One read takes what the socket holds, up to this: dozens of RTP packets per wake-up at a few Mbit/s.
READ_CHUNK = 256 * 1024
# RFC 2326 section 12.37: the session timeout when the camera names none.
DEFAULT_SESSION_TIMEOUT_S = 60.0
# Keep-alive at a third of the session timeout: two may be lost or late before the camera drops the session.
KEEPALIVE_FRACTION = 1 / 3
# A camera playing sends a frame at least every second or so; five seconds of silence is a dead stream, well
# inside the platform's own 15 s no-data limit so the viewer gets BYE from us first.
READ_TIMEOUT_S = 5.0
# TEARDOWN is a courtesy: a camera that does not answer it in a second frees the session on its own timeout.
TEARDOWN_TIMEOUT_S = 1.0


@dataclass(frozen=True, slots=True)
class _Answer:
    status: int
    headers: dict[str, str]
    body: bytes


@dataclass(frozen=True, slots=True)
class _Interleaved:
    channel: int
    data: bytes


class RtspPlayer:
    """Plays one camera's video track. `async with RtspPlayer(...) as player: async for packet in player.packets()`.

    `video` (codec, parameter sets) is known once the context is entered.
    """

    def __init__(
        self,
        camera_id: str,
        uri: str,
        username: str | None = None,
        password: str | None = None,
        *,
        timeout: float = 5.0,
        read_timeout: float = READ_TIMEOUT_S,
    ) -> None:
        self.camera_id = camera_id
        self._uri, self._username, self._password = split_credentials(uri, username, password)
        self._timeout = timeout
        self._read_timeout = read_timeout
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._cseq = 0
        self._session = ""
        self._session_timeout = DEFAULT_SESSION_TIMEOUT_S
        self._challenge: DigestChallenge | None = None
        self._basic = False
        self._nc = 0
        self._base = self._uri
        self._last_keepalive = 0.0
        self._buffer = bytearray()
        self._pos = 0
        self.video: MediaDescription | None = None

    async def __aenter__(self) -> RtspPlayer:
        try:
            async with asyncio.timeout(self._timeout):
                await self._start()
        except TimeoutError:
            await self._close()
            raise DeviceTimeout(self.camera_id, f"RTSP play: no answer within {self._timeout:g} s") from None
        except (ConnectionError, OSError) as exc:
            await self._close()
            raise DeviceUnreachable(self.camera_id, f"RTSP connection lost: {type(exc).__name__}") from None
        except BaseException:
            await self._close()
            raise
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.teardown()

    async def _start(self) -> None:
        try:
            parts = urlsplit(self._uri)
            port = parts.port or DEFAULT_PORTS.get(parts.scheme, 0)
        except ValueError:
            raise DeviceProtocolError(self.camera_id, "stream URI is malformed") from None
        if parts.scheme not in DEFAULT_PORTS or not parts.hostname:
            raise DeviceProtocolError(self.camera_id, "stream URI is not an rtsp:// URL")
        try:
            self._reader, self._writer = await asyncio.open_connection(
                parts.hostname, port, limit=MAX_HEAD_BYTES, ssl=parts.scheme == "rtsps"
            )
        except OSError as exc:
            raise DeviceUnreachable(self.camera_id, f"RTSP connect failed: {connect_failure(exc)}") from None
        status, headers, body = await self._request("DESCRIBE", self._uri, {"Accept": "application/sdp"})
        if status != 200:
            raise DeviceProtocolError(self.camera_id, f"RTSP DESCRIBE answered {status}")
        base = headers.get("content-base") or headers.get("content-location") or self._uri
        self._base = base if base.endswith("/") else base + "/"
        video = next((m for m in parse_sdp(body.decode("utf-8", "replace")) if m.kind == "video"), None)
        if video is None:
            raise DeviceProtocolError(self.camera_id, "RTSP stream has no video in its SDP")
        if video.codec not in ("H264", "H265"):
            raise DeviceProtocolError(self.camera_id, f"RTSP video is {video.codec}, not H.264 or H.265")
        self.video = video
        track = self._track_uri(video.control)
        transport = f"RTP/AVP/TCP;unicast;interleaved={RTP_CHANNEL}-{RTP_CHANNEL + 1}"
        status, headers, _ = await self._request("SETUP", track, {"Transport": transport})
        if status != 200:
            raise DeviceProtocolError(self.camera_id, f"RTSP SETUP answered {status}")
        session, _, params = headers.get("session", "").partition(";")
        if not session.strip():
            raise DeviceProtocolError(self.camera_id, "RTSP SETUP answered without a Session")
        self._session = session.strip()
        for param in params.split(";"):
            key, _, value = param.strip().partition("=")
            if key.lower() == "timeout" and value.strip().isdigit() and int(value) > 0:
                self._session_timeout = float(value)
        status, _, _ = await self._request("PLAY", self._base.rstrip("/"), {"Range": "npt=0.000-"})
        if status != 200:
            raise DeviceProtocolError(self.camera_id, f"RTSP PLAY answered {status}")
        self._last_keepalive = time.monotonic()
        logger.debug("%s: RTSP playing %s (session timeout %g s)", self.camera_id, video.codec, self._session_timeout)

    def _track_uri(self, control: str | None) -> str:
        if not control or control == "*":
            return self._base.rstrip("/")
        if control.startswith(("rtsp://", "rtsps://")):
            return control
        return urljoin(self._base, control)

    def _auth_headers(self, method: str, uri: str) -> dict[str, str]:
        if self._challenge is not None and self._username:
            self._nc += 1
            value = authorization(
                self._challenge,
                method=method,
                uri=uri,
                username=self._username,
                password=self._password or "",
                nc=self._nc,
            )
            return {"Authorization": value}
        if self._basic and self._username:
            token = base64.b64encode(f"{self._username}:{self._password or ''}".encode()).decode()
            return {"Authorization": "Basic " + token}
        return {}

    def _send(self, method: str, uri: str, headers: dict[str, str]) -> None:
        assert self._writer is not None
        self._cseq += 1
        lines = [f"{method} {uri} RTSP/1.0", f"CSeq: {self._cseq}", f"User-Agent: {USER_AGENT}"]
        if self._session:
            lines.append(f"Session: {self._session}")
        lines += [f"{k}: {v}" for k, v in {**headers, **self._auth_headers(method, uri)}.items()]
        self._writer.write(("\r\n".join(lines) + "\r\n\r\n").encode())

    async def _request(self, method: str, uri: str, headers: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
        """Send a request and read its answer (skipping interleaved data), answering one digest challenge."""
        assert self._writer is not None
        self._send(method, uri, headers)
        await self._writer.drain()
        status, reply_headers, body = await self._read_answer()
        if status == 401:
            if not self._username:
                raise AuthFailed(self.camera_id, "RTSP stream wants credentials and none are configured")
            if self._challenge is not None or self._basic:
                raise AuthFailed(self.camera_id, "RTSP credentials refused")
            challenge = parse_challenge(reply_headers.get("www-authenticate", ""))
            if challenge is None and not reply_headers.get("www-authenticate", "").lower().startswith("basic"):
                raise AuthFailed(self.camera_id, "RTSP stream wants an authentication we do not speak")
            self._challenge = challenge
            self._basic = challenge is None
            self._send(method, uri, headers)
            await self._writer.drain()
            status, reply_headers, body = await self._read_answer()
            if status == 401:
                raise AuthFailed(self.camera_id, "RTSP credentials refused")
        return status, reply_headers, body

    async def _read_answer(self) -> tuple[int, dict[str, str], bytes]:
        while True:
            item = await self._read_item()
            if isinstance(item, _Answer):
                return item.status, item.headers, item.body

    async def _read_item(self) -> _Answer | _Interleaved:
        """The next thing on the connection: an RTSP answer or an interleaved (`$`) frame."""
        while True:
            item = self._parse_item()
            if item is not None:
                return item
            await self._fill()

    async def _fill(self) -> None:
        reader = self._reader
        assert reader is not None
        chunk = await reader.read(READ_CHUNK)
        if not chunk:
            raise DeviceUnreachable(self.camera_id, "RTSP connection closed by the camera")
        # Compact once per read rather than once per frame: a read holds dozens of RTP packets.
        del self._buffer[: self._pos]
        self._pos = 0
        self._buffer += chunk

    def _parse_item(self) -> _Answer | _Interleaved | None:
        """One complete item from the buffer, or None when more bytes are needed."""
        buf, pos = self._buffer, self._pos
        available = len(buf) - pos
        if available <= 0:
            return None
        if buf[pos] == 0x24:  # "$": RFC 2326 section 10.12 interleaved binary data
            if available < 4:
                return None
            size = (buf[pos + 2] << 8) | buf[pos + 3]
            if available < 4 + size:
                return None
            self._pos = pos + 4 + size
            return _Interleaved(buf[pos + 1], bytes(buf[pos + 4 : pos + 4 + size]))
        end = buf.find(b"\r\n\r\n", pos)
        if end < 0:
            if available > MAX_HEAD_BYTES:
                raise DeviceProtocolError(self.camera_id, "RTSP answer head is too long")
            return None
        lines = bytes(buf[pos:end]).decode("latin-1").split("\r\n")
        status_line = lines[0].split(" ", 2)
        if len(status_line) < 2 or not status_line[0].startswith("RTSP/") or not status_line[1].isdigit():
            raise DeviceProtocolError(self.camera_id, f"not an RTSP answer: {lines[0][:60]!r}")
        headers: dict[str, str] = {}
        for line in lines[1:]:
            name, sep, value = line.partition(":")
            if sep:
                headers.setdefault(name.strip().lower(), value.strip())
        length_text = headers.get("content-length", "0")
        if not length_text.isdigit() or int(length_text) > MAX_BODY_BYTES:
            raise DeviceProtocolError(self.camera_id, f"RTSP body length {length_text[:20]!r} refused")
        body_start = end + 4
        if len(buf) < body_start + int(length_text):
            return None
        self._pos = body_start + int(length_text)
        return _Answer(int(status_line[1]), headers, bytes(buf[body_start : self._pos]))

    async def packets(self) -> AsyncIterator[bytes]:
        """RTP packets of the video track until the camera stops; DeviceError when it dies or goes silent."""
        if self._writer is None:
            raise DeviceError(self.camera_id, "RTSP player used before it was started")
        keepalive_every = self._session_timeout * KEEPALIVE_FRACTION
        while True:
            item = self._parse_item()
            if item is None:
                now = time.monotonic()
                if now - self._last_keepalive >= keepalive_every:
                    # GET_PARAMETER with no body: the keep-alive RFC 2326 section 10.8 suggests; its answer
                    # arrives between RTP frames and is passed over below.
                    self._last_keepalive = now
                    self._send("GET_PARAMETER", self._base.rstrip("/"), {})
                try:
                    async with asyncio.timeout(self._read_timeout):
                        await self._fill()
                except TimeoutError:
                    raise DeviceTimeout(self.camera_id, f"RTSP: no video for {self._read_timeout:g} s") from None
                except (ConnectionError, OSError) as exc:
                    raise DeviceUnreachable(self.camera_id, f"RTSP connection lost: {type(exc).__name__}") from None
                continue
            if isinstance(item, _Interleaved) and item.channel == RTP_CHANNEL:
                yield item.data

    async def teardown(self) -> None:
        """TEARDOWN (bounded, best effort) and close the connection."""
        if self._writer is not None and self._session and not self._writer.is_closing():
            try:
                async with asyncio.timeout(TEARDOWN_TIMEOUT_S):
                    self._send("TEARDOWN", self._base.rstrip("/"), {})
                    await self._writer.drain()
            except (TimeoutError, ConnectionError, OSError):
                logger.debug("%s: RTSP TEARDOWN not delivered", self.camera_id)
        await self._close()

    async def _close(self) -> None:
        writer, self._writer = self._writer, None
        if writer is None:
            return
        writer.close()
        try:
            async with asyncio.timeout(TEARDOWN_TIMEOUT_S):
                await writer.wait_closed()
        except (TimeoutError, ConnectionError, OSError):
            pass
