"""The live-video relay end to end: the real GStreamer RTSP server in, a small real RTP receiver out, and the
received MPEG-PS judged by FFmpeg's own demuxer (`ffprobe -f mpeg`)."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from adapters.gb28181.live import MediaOffer, MediaTransport, PlaySession
from gateway.domain.errors import DeviceError
from gateway.services.live_video import CameraStream, LiveVideoRelay, RelaySession, StreamLookup
from simulators.rtsp import RtspServer
from tests.fixtures.rtsp import H265_MOUNT, RTSP_PASSWORD, RTSP_USER, rtsp_server
from tests.fixtures.waiting import eventually

__all__ = ["rtsp_server"]

SSRC = 123456789  # what a platform's `y=0123456789` offers
FRAMES = 12  # 2.4 s at the simulator's 5 fps: at least two key frames
FFPROBE_TIMEOUT_S = 30.0


@dataclass
class Receiver:
    """What a GB media server checks of the RTP it gets, and the PS payload it reassembles."""

    ssrc: int
    packets: int = 0
    frames: int = 0
    first_frame: bytes | None = None
    first_timestamp: int | None = None
    payload: bytearray = field(default_factory=bytearray)
    problems: list[str] = field(default_factory=list)
    _sequence: int | None = None
    _current: bytearray = field(default_factory=bytearray)

    def take(self, packet: bytes) -> None:
        self.packets += 1
        version, pt, marker = packet[0] >> 6, packet[1] & 0x7F, bool(packet[1] & 0x80)
        sequence = int.from_bytes(packet[2:4], "big")
        timestamp = int.from_bytes(packet[4:8], "big")
        ssrc = int.from_bytes(packet[8:12], "big")
        body = packet[12:]
        if version != 2 or pt != 96 or ssrc != self.ssrc:
            self.problems.append(f"bad header v={version} pt={pt} ssrc={ssrc}")
        if len(body) > 1400:
            self.problems.append(f"payload of {len(body)} bytes")
        if self._sequence is not None and sequence != (self._sequence + 1) & 0xFFFF:
            self.problems.append(f"sequence gap {self._sequence} -> {sequence}")
        self._sequence = sequence
        self.payload += body
        self._current += body
        if marker:
            self.frames += 1
            if self.first_frame is None:
                self.first_frame = bytes(self._current)
                self.first_timestamp = timestamp
            self._current.clear()


class UdpReceiver(asyncio.DatagramProtocol):
    def __init__(self, receiver: Receiver) -> None:
        self.receiver = receiver

    def datagram_received(self, data: bytes, addr: tuple[str | object, int]) -> None:
        self.receiver.take(data)


async def read_rfc4571(reader: asyncio.StreamReader, receiver: Receiver) -> None:
    while True:
        try:
            size = int.from_bytes(await reader.readexactly(2), "big")
            receiver.take(await reader.readexactly(size))
        except asyncio.IncompleteReadError:
            return


def ffprobe(path: Path) -> dict[str, object]:
    result = subprocess.run(
        ["ffprobe", "-v", "error", "-f", "mpeg", "-count_frames", "-show_streams", "-of", "json", str(path)],
        capture_output=True,
        text=True,
        timeout=FFPROBE_TIMEOUT_S,
        check=True,
    )
    streams = json.loads(result.stdout)["streams"]
    assert len(streams) == 1, streams
    stream: dict[str, object] = streams[0]
    return stream


def lookup_for(server: RtspServer, *, auth: bool = False) -> StreamLookup:
    async def lookup(camera_id: str) -> CameraStream | None:
        if camera_id == "unknown":
            return None
        if auth:
            return CameraStream(server.url(camera_id, auth=True), RTSP_USER, RTSP_PASSWORD)
        return CameraStream(server.url(camera_id))

    return lookup


@pytest.fixture
async def relay(rtsp_server: RtspServer) -> AsyncIterator[LiveVideoRelay]:
    async with LiveVideoRelay(lookup_for(rtsp_server, auth=True), bind_host="127.0.0.1") as relay:
        yield relay


async def play_udp(
    relay: LiveVideoRelay, camera: str, receiver: Receiver
) -> tuple[PlaySession, asyncio.DatagramTransport]:
    loop = asyncio.get_running_loop()
    transport, _ = await loop.create_datagram_endpoint(lambda: UdpReceiver(receiver), local_addr=("127.0.0.1", 0))
    port = transport.get_extra_info("sockname")[1]
    session = await relay.open(
        MediaOffer("34020000001320000001", camera, "127.0.0.1", port, MediaTransport.UDP, receiver.ssrc)
    )
    await session.start()
    return session, transport


@pytest.mark.parametrize(("camera", "codec"), [("moving", "h264"), (H265_MOUNT, "hevc")])
async def test_udp_play_is_ps_that_ffmpeg_reads_with_the_camera_codec_and_size(
    relay: LiveVideoRelay, camera: str, codec: str, tmp_path: Path
) -> None:
    receiver = Receiver(SSRC)
    session, transport = await play_udp(relay, camera, receiver)
    try:
        await eventually(lambda: receiver.frames >= FRAMES, timeout=20, what=f"{FRAMES} frames over UDP")
    finally:
        await session.stop()
        transport.close()
    assert receiver.problems == []
    assert receiver.first_frame is not None
    assert receiver.first_frame[14:18] == b"\x00\x00\x01\xbb", "the first frame starts with the system header"
    path = tmp_path / "udp.ps"
    path.write_bytes(receiver.payload)
    stream = await asyncio.to_thread(ffprobe, path)
    assert stream["codec_name"] == codec
    assert (stream["width"], stream["height"]) == (640, 360)
    assert int(str(stream["nb_read_frames"])) >= FRAMES
    assert relay.pulls == 0, "the last viewer's stop closes the pull"


@pytest.mark.parametrize("camera", ["moving", H265_MOUNT])
async def test_tcp_passive_play_connects_out_to_the_platform(
    relay: LiveVideoRelay, camera: str, tmp_path: Path
) -> None:
    receiver = Receiver(SSRC)

    async def platform(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_rfc4571(reader, receiver)
        writer.close()

    server = await asyncio.start_server(platform, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    offer = MediaOffer("34020000001320000001", camera, "127.0.0.1", port, MediaTransport.TCP_PASSIVE, SSRC)
    session = await relay.open(offer)
    assert session.local_port > 0
    await session.start()
    try:
        await eventually(lambda: receiver.frames >= FRAMES, timeout=20, what=f"{FRAMES} frames over TCP")
    finally:
        await session.stop()
        server.close()
        await server.wait_closed()
    assert receiver.problems == []
    path = tmp_path / "tcp.ps"
    path.write_bytes(receiver.payload)
    stream = await asyncio.to_thread(ffprobe, path)
    assert stream["codec_name"] == ("hevc" if camera == H265_MOUNT else "h264")
    assert (stream["width"], stream["height"]) == (640, 360)
    assert int(str(stream["nb_read_frames"])) >= FRAMES


async def test_tcp_active_play_waits_for_the_platform_to_connect(relay: LiveVideoRelay, tmp_path: Path) -> None:
    receiver = Receiver(SSRC)
    offer = MediaOffer("34020000001320000001", "moving", "127.0.0.1", 9, MediaTransport.TCP_ACTIVE, SSRC)
    session = await relay.open(offer)
    await session.start()
    reader, writer = await asyncio.open_connection("127.0.0.1", session.local_port)
    reading = asyncio.create_task(read_rfc4571(reader, receiver))
    try:
        await eventually(lambda: receiver.frames >= FRAMES, timeout=20, what=f"{FRAMES} frames over TCP")
    finally:
        await session.stop()
        await reading
        writer.close()
    assert receiver.problems == []
    path = tmp_path / "active.ps"
    path.write_bytes(receiver.payload)
    stream = await asyncio.to_thread(ffprobe, path)
    assert stream["codec_name"] == "h264"
    assert int(str(stream["nb_read_frames"])) >= FRAMES


async def test_two_viewers_share_one_pull_and_the_second_starts_on_the_cached_key_frame(
    relay: LiveVideoRelay,
) -> None:
    first, second = Receiver(SSRC), Receiver(SSRC + 1)
    seen: list[int] = []
    session_a, transport_a = await play_udp(relay, "moving", first)
    original = first.take

    def record(packet: bytes) -> None:
        original(packet)
        seen.append(int.from_bytes(packet[4:8], "big"))

    first.take = record  # type: ignore[method-assign]
    loop = asyncio.get_running_loop()
    transport_b, _ = await loop.create_datagram_endpoint(lambda: UdpReceiver(second), local_addr=("127.0.0.1", 0))
    try:
        # Join mid-GOP: after a few frames of the first viewer, so the camera's next key frame is not imminent.
        await eventually(lambda: first.frames >= 3, timeout=20, what="the first viewer's frames")
        offer = MediaOffer(
            "34020000001320000001",
            "moving",
            "127.0.0.1",
            transport_b.get_extra_info("sockname")[1],
            MediaTransport.UDP,
            SSRC + 1,
        )
        session_b = await relay.open(offer)
        already = set(seen)
        await session_b.start()
        await eventually(lambda: second.frames >= 3, timeout=20, what="the second viewer's frames")
        assert relay.pulls == 1
        assert relay.pulls_started == 1, "one RTSP pull for both viewers"
        assert second.first_frame is not None
        assert second.first_frame[14:18] == b"\x00\x00\x01\xbb", "the second viewer starts on a key frame"
        assert second.first_timestamp in already, "...one the relay already held (the cached GOP)"
        await session_b.stop()
        assert relay.pulls == 1, "the first viewer still watches"
    finally:
        await session_a.stop()
        transport_a.close()
        transport_b.close()
    assert first.problems == []
    assert second.problems == []
    assert relay.pulls == 0


async def test_a_camera_killed_mid_play_ends_its_sessions() -> None:
    camera = RtspServer()
    async with camera, LiveVideoRelay(lookup_for(camera), bind_host="127.0.0.1") as relay:
        receiver = Receiver(SSRC)
        session, transport = await play_udp(relay, "moving", receiver)
        try:
            await eventually(lambda: receiver.frames >= 2, timeout=20, what="frames before the kill")
            assert camera.pid is not None
            os.kill(camera.pid, signal.SIGKILL)  # the camera dies: no TEARDOWN, no goodbye
            await eventually(lambda: session.ended.is_set(), timeout=15, what="session ended")
            assert relay.pulls == 0
        finally:
            await session.stop()
            transport.close()


async def test_an_unknown_camera_is_refused_naming_it(relay: LiveVideoRelay) -> None:
    offer = MediaOffer("34020000001320000009", "unknown", "127.0.0.1", 9, MediaTransport.UDP, SSRC)
    with pytest.raises(DeviceError, match="unknown"):
        await relay.open(offer)


async def test_a_camera_that_refuses_the_credentials_is_refused_before_the_answer(rtsp_server: RtspServer) -> None:
    async def lookup(camera_id: str) -> CameraStream | None:
        return CameraStream(rtsp_server.url(camera_id, auth=True), RTSP_USER, "wrong")

    async with LiveVideoRelay(lookup, bind_host="127.0.0.1") as relay:
        offer = MediaOffer("34020000001320000001", "moving", "127.0.0.1", 9, MediaTransport.UDP, SSRC)
        with pytest.raises(DeviceError, match="moving: RTSP credentials refused"):
            await relay.open(offer)
        assert relay.pulls == 0


async def test_a_slow_viewer_is_resynchronised_at_a_key_frame_and_never_stalls_the_others(
    rtsp_server: RtspServer,
) -> None:
    async with LiveVideoRelay(lookup_for(rtsp_server), bind_host="127.0.0.1", viewer_queue_frames=3) as relay:
        # A tcp-active platform that has not connected yet: its viewer cannot send, its queue fills up.
        slow_offer = MediaOffer("34020000001320000001", "moving", "127.0.0.1", 9, MediaTransport.TCP_ACTIVE, SSRC)
        slow = await relay.open(slow_offer)
        await slow.start()
        fast = Receiver(SSRC + 1)
        session, transport = await play_udp(relay, "moving", fast)
        try:
            await eventually(lambda: fast.frames >= FRAMES, timeout=20, what="the other viewer's frames")
            assert isinstance(slow, RelaySession)
            assert slow.overflows >= 1, "the slow viewer's queue overflowed"
            assert fast.problems == []
            late = Receiver(SSRC)
            reader, writer = await asyncio.open_connection("127.0.0.1", slow.local_port)
            reading = asyncio.create_task(read_rfc4571(reader, late))
            await eventually(lambda: late.frames >= 2, timeout=20, what="the slow viewer's frames once connected")
            assert late.first_frame is not None
            assert late.first_frame[14:18] == b"\x00\x00\x01\xbb", "it resumes on a key frame"
            await slow.stop()
            await reading
            writer.close()
        finally:
            await session.stop()
            transport.close()


async def test_a_platform_that_does_not_listen_is_refused_and_leaves_no_pull(relay: LiveVideoRelay) -> None:
    server = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    server.close()
    await server.wait_closed()
    offer = MediaOffer("34020000001320000001", "moving", "127.0.0.1", port, MediaTransport.TCP_PASSIVE, SSRC)
    with pytest.raises(DeviceError, match="34020000001320000001: RTP over TCP"):
        await relay.open(offer)
    assert relay.pulls == 0


async def test_a_platform_that_hangs_up_ends_only_its_own_session(
    rtsp_server: RtspServer, caplog: pytest.LogCaptureFixture
) -> None:
    async with LiveVideoRelay(lookup_for(rtsp_server), bind_host="127.0.0.1", viewer_queue_frames=3) as relay:
        await hang_up_while_another_watches(relay, caplog)


async def hang_up_while_another_watches(relay: LiveVideoRelay, caplog: pytest.LogCaptureFixture) -> None:
    gone = Receiver(SSRC)

    async def platform(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while gone.frames < 2:
            size = int.from_bytes(await reader.readexactly(2), "big")
            gone.take(await reader.readexactly(size))
        writer.close()  # the platform hangs up mid-play (its media server closed the stream)

    server = await asyncio.start_server(platform, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    leaving = await relay.open(
        MediaOffer("34020000001320000001", "moving", "127.0.0.1", port, MediaTransport.TCP_PASSIVE, SSRC)
    )
    await leaving.start()
    staying = Receiver(SSRC + 1)
    session, transport = await play_udp(relay, "moving", staying)
    try:
        await eventually(lambda: leaving.ended.is_set(), timeout=20, what="the hung-up session ended")
        frames = staying.frames
        await eventually(lambda: staying.frames >= frames + 5, timeout=20, what="the other viewer goes on")
        assert not session.ended.is_set()
        # More frames than the ended session's queue holds have passed: it would have overflowed had it taken them.
        assert "too slow" not in caplog.text, "an ended session takes no more frames"
    finally:
        await leaving.stop()
        await session.stop()
        transport.close()
        server.close()
        await server.wait_closed()
