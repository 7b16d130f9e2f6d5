"""The RTSP probe against the real GStreamer RTSP server, and against sockets that misbehave."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from adapters.rtsp.client import StreamMemo, probe_stream, split_credentials
from gateway.domain.errors import AuthFailed, DeviceProtocolError, DeviceTimeout, DeviceUnreachable
from simulators.rtsp import PATTERNS, RtspServer
from tests.fixtures.paths import DATA
from tests.fixtures.ports import free_port
from tests.fixtures.rtsp import H265_MOUNT, RTSP_PASSWORD, rtsp_server

__all__ = ["rtsp_server"]

CAPTURED_SDP = DATA / "gstreamer_moving.sdp"
Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


@pytest.fixture
async def fake_camera() -> AsyncIterator[Callable[[Handler], Awaitable[str]]]:
    """A TCP server on 127.0.0.1 whose behaviour the test chooses."""
    servers: list[asyncio.Server] = []

    async def start(handler: Handler) -> str:
        async def closing(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            try:
                await handler(reader, writer)
            finally:
                writer.close()

        server = await asyncio.start_server(closing, "127.0.0.1", 0)
        servers.append(server)
        return f"rtsp://127.0.0.1:{server.sockets[0].getsockname()[1]}/stream"

    yield start
    for server in servers:
        server.close()
        await server.wait_closed()


@pytest.mark.parametrize("pattern", PATTERNS)
async def test_every_mount_is_h264_640x360(rtsp_server: RtspServer, pattern: str) -> None:
    info = await probe_stream("cam", rtsp_server.url(pattern), None, None, 10.0)
    assert (info.ok, info.codec, info.width, info.height) == (True, "H264", 640, 360)
    assert info.server is not None
    assert "GStreamer" in info.server
    assert 0 < info.rtt_ms < 10_000


async def test_h265_mount_size_from_its_sps(rtsp_server: RtspServer) -> None:
    info = await probe_stream("cam", rtsp_server.url(H265_MOUNT), None, None, 10.0)
    assert (info.codec, info.width, info.height, info.framerate) == (
        "H265",
        640,
        360,
        15.0,
    )  # the simulator sends 15 fps, as cameras do


async def test_digest_auth_with_credentials_in_uri_or_config(rtsp_server: RtspServer) -> None:
    url = rtsp_server.url("moving", auth=True)
    info = await probe_stream("cam", url, "admin", RTSP_PASSWORD, 10.0)
    assert info.codec == "H264"
    with_userinfo = url.replace("rtsp://", f"rtsp://admin:{RTSP_PASSWORD}@")
    assert (await probe_stream("cam", with_userinfo, None, None, 10.0)).ok


async def test_wrong_or_missing_password_is_auth_failed(
    rtsp_server: RtspServer, caplog: pytest.LogCaptureFixture
) -> None:
    url = rtsp_server.url("moving", auth=True)
    caplog.set_level(logging.DEBUG)
    with pytest.raises(AuthFailed) as caught:
        await probe_stream("gate-1", url.replace("rtsp://", "rtsp://admin:wr0ng-pass@"), None, None, 10.0)
    assert caught.value.device == "gate-1"
    assert "wr0ng-pass" not in str(caught.value)
    assert "wr0ng-pass" not in caplog.text
    with pytest.raises(AuthFailed):
        await probe_stream("gate-1", url, None, None, 10.0)


async def test_unknown_mount_is_a_protocol_error(rtsp_server: RtspServer) -> None:
    with pytest.raises(DeviceProtocolError, match="404"):
        await probe_stream("cam", rtsp_server.url("no-such-stream"), None, None, 10.0)


@pytest.mark.parametrize("uri", ["http://127.0.0.1/x", "rtsp:///nohost", "rtsp://127.0.0.1:port/x", "rtsp://[::1/x"])
async def test_malformed_uri_is_a_protocol_error_naming_the_camera(uri: str) -> None:
    with pytest.raises(DeviceProtocolError) as caught:
        await probe_stream("gate-1", uri, None, None, 1.0)
    assert caught.value.device == "gate-1"


async def test_closed_port_is_unreachable_fast() -> None:
    started = time.monotonic()
    with pytest.raises(DeviceUnreachable):
        await probe_stream("cam", f"rtsp://127.0.0.1:{free_port()}/x", None, None, 5.0)
    assert time.monotonic() - started < 1.0


async def test_silent_server_times_out(fake_camera: Callable[[Handler], Awaitable[str]]) -> None:
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while await reader.read(65536):  # accept, read, never answer
            pass

    url = await fake_camera(silent)
    started = time.monotonic()
    with pytest.raises(DeviceTimeout) as caught:
        await probe_stream("gate-1", url, None, None, 0.5)
    # The deadline plus the bounded close; generous upper bound for a loaded machine.
    assert 0.5 <= time.monotonic() - started < 2.5
    assert caught.value.device == "gate-1"


@pytest.mark.parametrize(
    "answer",
    [
        b"HTTP/1.1 200 OK\r\n\r\n",
        b"\x00\xff garbage \r\n\r\n",
        b"RTSP/1.0 200 OK\r\nContent-Length: 99999999\r\n\r\n",
        b"RTSP/1.0 200 OK\r\nContent-Length: -5\r\n\r\n",
        b"RTSP/1.0 200 OK\r\n" + b"X-Junk: " + b"a" * 40000 + b"\r\n\r\n",
        b"a" * 1_000_000,  # an endless head: the read is capped, not buffered whole
        b"RTSP/1.0 200 OK\r\nContent-Length: 15\r\n\r\n<html>hi</html>",  # a web server, no SDP
        b"RTSP/1.0 200 OK\r\nContent-Length: 50\r\n\r\nshort",  # body cut short by the hang-up
    ],
    ids=["http", "binary", "huge-body", "negative-length", "huge-header", "endless", "no-sdp", "cut-short"],
)
async def test_garbage_answers_are_protocol_errors(
    fake_camera: Callable[[Handler], Awaitable[str]], answer: bytes
) -> None:
    async def garbage(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        # The same answer to every request, until the probe hangs up (or after one cut-short answer).
        with contextlib.suppress(asyncio.IncompleteReadError, ConnectionError):
            while await reader.readuntil(b"\r\n\r\n"):
                writer.write(answer)
                await writer.drain()
                if answer.endswith(b"short"):
                    return

    url = await fake_camera(garbage)
    with pytest.raises(DeviceProtocolError) as caught:
        await probe_stream("gate-1", url, None, None, 2.0)
    assert caught.value.device == "gate-1"


async def test_two_hundred_concurrent_probes(rtsp_server: RtspServer) -> None:
    urls = [rtsp_server.url(PATTERNS[i % len(PATTERNS)]) for i in range(200)]
    started = time.monotonic()
    results = await asyncio.gather(*(probe_stream(f"c{i}", u, None, None, 20.0) for i, u in enumerate(urls)))
    assert all(r.ok and r.codec == "H264" and r.width == 640 for r in results)
    # About 0.2 s on an idle 2-core machine; the bound leaves room for other tests running beside.
    assert time.monotonic() - started < 10.0


def test_credentials_are_taken_out_of_the_request_uri() -> None:
    clean, user, password = split_credentials("rtsp://ad%40min:p%3Ass@127.0.0.1:554/live", None, None)
    assert clean == "rtsp://127.0.0.1:554/live"
    assert (user, password) == ("ad@min", "p:ss")


async def test_a_busy_camera_is_asked_once_more(fake_camera: Callable[[Handler], Awaitable[str]]) -> None:
    sdp = CAPTURED_SDP.read_bytes()
    describes = 0

    async def busy_then_ok(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal describes
        while head := await reader.readuntil(b"\r\n\r\n"):
            cseq = next(line for line in head.split(b"\r\n") if line.startswith(b"CSeq"))
            if head.startswith(b"DESCRIBE"):
                describes += 1
            if head.startswith(b"DESCRIBE") and describes == 1:
                writer.write(b"RTSP/1.0 503 Service Unavailable\r\n" + cseq + b"\r\n\r\n")
            elif head.startswith(b"DESCRIBE"):
                writer.write(b"RTSP/1.0 200 OK\r\n" + cseq + b"\r\nContent-Length: %d\r\n\r\n" % len(sdp) + sdp)
            else:
                writer.write(b"RTSP/1.0 200 OK\r\n" + cseq + b"\r\n\r\n")
            await writer.drain()

    url = await fake_camera(busy_then_ok)
    info = await probe_stream("cam", url, None, None, 2.0)
    assert (info.codec, info.width, describes) == ("H264", 640, 2)


def _digest_camera(
    sdp: bytes, methods: list[bytes], *, nonce_per_connection: bool, password_changed: list[bool] | None = None
) -> Handler:
    """A camera behind RTSP digest that records each request's method (and whether it carried credentials); once
    `password_changed[0]` is set it refuses every credential."""
    connections = 0

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal connections
        connections += 1
        nonce = f"n{connections}" if nonce_per_connection else "n1"
        with contextlib.suppress(asyncio.IncompleteReadError, ConnectionError):
            while head := await reader.readuntil(b"\r\n\r\n"):
                cseq = next(line for line in head.split(b"\r\n") if line.startswith(b"CSeq"))
                method = head.split(b" ", 1)[0]
                authorized = f'nonce="{nonce}"'.encode() in head and not (password_changed and password_changed[0])
                methods.append(method + (b"+auth" if b"Authorization:" in head else b""))
                if method == b"OPTIONS":
                    writer.write(b"RTSP/1.0 200 OK\r\n" + cseq + b"\r\nPublic: OPTIONS, DESCRIBE\r\n\r\n")
                elif not authorized:
                    challenge = f'WWW-Authenticate: Digest realm="cam", nonce="{nonce}"\r\n'.encode()
                    writer.write(b"RTSP/1.0 401 Unauthorized\r\n" + cseq + b"\r\n" + challenge + b"\r\n")
                else:
                    writer.write(b"RTSP/1.0 200 OK\r\n" + cseq + b"\r\nContent-Length: %d\r\n\r\n" % len(sdp) + sdp)
                await writer.drain()

    return handler


@pytest.mark.parametrize("nonce_per_connection", [False, True], ids=["nonce-kept", "nonce-per-connection"])
async def test_a_warm_probe_with_its_memo_skips_options_and_the_unauthenticated_describe(
    fake_camera: Callable[[Handler], Awaitable[str]], nonce_per_connection: bool
) -> None:
    methods: list[bytes] = []
    url = await fake_camera(
        _digest_camera(CAPTURED_SDP.read_bytes(), methods, nonce_per_connection=nonce_per_connection)
    )
    memo = StreamMemo()
    first = await probe_stream("cam", url, "admin", "pw", 2.0, memo)
    assert methods == [b"OPTIONS", b"DESCRIBE", b"DESCRIBE+auth"]  # first contact: the full exchange
    methods.clear()
    warm = await probe_stream("cam", url, "admin", "pw", 2.0, memo)
    assert (first.codec, warm.codec, warm.width) == ("H264", "H264", 640)
    # A camera that keeps its nonce takes the remembered credentials at once; one that issues a nonce per
    # connection refuses them and gets its new challenge answered: never more requests than on first contact.
    assert methods == ([b"DESCRIBE+auth", b"DESCRIBE+auth"] if nonce_per_connection else [b"DESCRIBE+auth"])


async def test_a_warm_probe_against_the_real_digest_server_succeeds_and_still_catches_a_changed_password(
    rtsp_server: RtspServer,
) -> None:
    url = rtsp_server.url(PATTERNS[0], auth=True)
    memo = StreamMemo()
    for _ in range(3):
        assert (await probe_stream("cam", url, "admin", RTSP_PASSWORD, 10.0, memo)).ok
    assert memo.known
    with pytest.raises(AuthFailed):
        await probe_stream("cam", url, "admin", "wr0ng-pass", 10.0, memo)


async def test_a_changed_password_on_a_warm_probe_costs_one_failed_login(
    fake_camera: Callable[[Handler], Awaitable[str]],
) -> None:
    methods: list[bytes] = []
    changed = [False]
    camera = _digest_camera(CAPTURED_SDP.read_bytes(), methods, nonce_per_connection=False, password_changed=changed)
    url = await fake_camera(camera)
    memo = StreamMemo()
    await probe_stream("gate-1", url, "admin", "pw", 2.0, memo)
    methods.clear()
    changed[0] = True
    with pytest.raises(AuthFailed) as caught:
        await probe_stream("gate-1", url, "admin", "pw", 2.0, memo)
    assert caught.value.device == "gate-1"
    # Cameras lock an account after a few failed logins: the refused nonce is not tried again.
    assert methods == [b"DESCRIBE+auth"]
