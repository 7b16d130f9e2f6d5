"""The RTSP player against the real GStreamer RTSP server, and against a scripted camera on a real socket for
what GStreamer will not do on demand (a short session timeout, a camera that goes silent)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from typing import Any

import pytest

from adapters.rtsp.depacketize import parse_rtp
from adapters.rtsp.session import RtspPlayer
from gateway.domain.errors import AuthFailed, DeviceTimeout, DeviceUnreachable
from simulators.rtsp import RtspServer
from tests.fixtures.paths import DATA
from tests.fixtures.rtsp import H265_MOUNT, RTSP_PASSWORD, rtsp_server

__all__ = ["rtsp_server"]

SDP = (DATA / "gstreamer_moving.sdp").read_bytes()
# A tiny RTP packet (V=2, PT 96, marker) with a one-byte H.264 non-IDR slice as payload.
RTP = bytes([0x80, 0xE0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 7, 0x41, 0x9A])


async def collect(player: RtspPlayer, count: int) -> list[bytes]:
    packets = []
    async for packet in player.packets():
        packets.append(packet)
        if len(packets) >= count:
            break
    return packets


@pytest.mark.parametrize(("mount", "codec"), [("moving", "H264"), (H265_MOUNT, "H265")])
async def test_plays_rtp_of_the_video_track_with_digest_auth(rtsp_server: RtspServer, mount: str, codec: str) -> None:
    url = rtsp_server.url(mount, auth=True).replace("rtsp://", f"rtsp://admin:{RTSP_PASSWORD}@")
    async with RtspPlayer("gate-1", url, timeout=10) as player:
        assert player.video is not None
        assert player.video.codec == codec
        assert player.video.parameter_sets, "sprop parameter sets from the SDP"
        packets = await collect(player, 20)
    headers = [parse_rtp(p) for p in packets]
    assert all(h is not None and h[0].payload_type == 96 for h in headers)


async def test_wrong_password_is_auth_failed_naming_the_camera(rtsp_server: RtspServer) -> None:
    with pytest.raises(AuthFailed) as caught:
        async with RtspPlayer("gate-1", rtsp_server.url("moving", auth=True), "admin", "nope", timeout=10):
            pass
    assert caught.value.device == "gate-1"
    assert "nope" not in str(caught.value)


Script = Callable[[asyncio.StreamWriter], Coroutine[Any, Any, None]]


@pytest.fixture
async def scripted_camera() -> AsyncIterator[tuple[Callable[[Script], Awaitable[str]], list[str]]]:
    """A camera that answers DESCRIBE/SETUP (session timeout 3 s)/PLAY, then runs `script`; requests are recorded."""
    requests: list[str] = []
    servers: list[asyncio.Server] = []
    handlers: set[asyncio.Task[object]] = set()
    writers: list[asyncio.StreamWriter] = []

    async def start(after_play: Script) -> str:
        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            task = asyncio.current_task()
            assert task is not None
            handlers.add(task)
            writers.append(writer)
            streaming: asyncio.Task[None] | None = None
            try:
                while True:
                    head = (await reader.readuntil(b"\r\n\r\n")).decode()
                    method = head.split(" ", 1)[0]
                    requests.append(method)
                    cseq = next(line for line in head.split("\r\n") if line.startswith("CSeq"))
                    extra, body = "", b""
                    if method == "DESCRIBE":
                        extra, body = "Content-Type: application/sdp\r\n", SDP
                    elif method == "SETUP":
                        extra = "Session: 12345678;timeout=3\r\nTransport: RTP/AVP/TCP;unicast;interleaved=0-1\r\n"
                    writer.write(
                        f"RTSP/1.0 200 OK\r\n{cseq}\r\n{extra}Content-Length: {len(body)}\r\n\r\n".encode() + body
                    )
                    await writer.drain()
                    if method == "PLAY":
                        streaming = asyncio.create_task(after_play(writer))
            except (asyncio.IncompleteReadError, ConnectionError):
                pass
            finally:
                if streaming is not None:
                    streaming.cancel()
                    await asyncio.wait({streaming})
                writer.close()

        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        servers.append(server)
        return f"rtsp://127.0.0.1:{server.sockets[0].getsockname()[1]}/stream"

    yield start, requests
    for server in servers:
        server.close()
        await server.wait_closed()
    for writer in writers:
        writer.close()
    if handlers:
        await asyncio.wait(handlers, timeout=2)  # the handlers finish their goodbye before the loop closes


async def test_keeps_the_session_alive_within_its_timeout_and_tears_down(
    scripted_camera: tuple[Callable[[Script], Awaitable[str]], list[str]],
) -> None:
    start, requests = scripted_camera

    async def frames(writer: asyncio.StreamWriter) -> None:
        while True:
            writer.write(b"$\x00" + len(RTP).to_bytes(2, "big") + RTP)
            writer.write(b"$\x01\x00\x04abcd")  # RTCP on channel 1: read and passed over
            await writer.drain()
            await asyncio.sleep(0.1)  # a camera's frame interval

    url = await start(frames)
    started = time.monotonic()
    async with RtspPlayer("gate-1", url, timeout=5) as player:
        async for packet in player.packets():
            assert packet == RTP
            if "GET_PARAMETER" in requests or time.monotonic() - started > 5:
                break
    assert "GET_PARAMETER" in requests, "keep-alive within the 3 s session timeout"
    assert time.monotonic() - started < 3
    for _ in range(100):  # the TEARDOWN crosses a real socket: give the server's reader its turn
        if "TEARDOWN" in requests:
            break
        await asyncio.sleep(0.01)
    assert requests[:3] == ["DESCRIBE", "SETUP", "PLAY"]
    assert "TEARDOWN" in requests


async def test_a_camera_that_goes_silent_is_a_timeout_naming_it(
    scripted_camera: tuple[Callable[[Script], Awaitable[str]], list[str]],
) -> None:
    start, _ = scripted_camera

    async def silence(writer: asyncio.StreamWriter) -> None:
        await asyncio.Event().wait()

    url = await start(silence)
    async with RtspPlayer("gate-1", url, timeout=5, read_timeout=0.3) as player:
        with pytest.raises(DeviceTimeout, match="gate-1: RTSP: no video"):
            await collect(player, 1)


async def test_a_closed_port_is_unreachable() -> None:
    server = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    server.close()
    await server.wait_closed()
    with pytest.raises(DeviceUnreachable, match="gate-1"):
        async with RtspPlayer("gate-1", f"rtsp://127.0.0.1:{port}/x", timeout=2):
            pass
