"""The GStreamer RTSP simulator itself: its pictures are what each pattern claims, OpenCV can read them, one
process carries a hundred-camera bench cheaply, and it starts, fails and stops the way its callers rely on."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from urllib.parse import urlsplit

import pytest

from adapters.rtsp.client import probe_stream
from gateway.domain.errors import DeviceError, GatewayError
from simulators import rtsp
from simulators.rtsp import LIVE_PATTERNS, PATTERNS, RtspServer, check_gstreamer
from tests.fixtures.rtsp import RTSP_PASSWORD, RTSP_USER, rtsp_server

# What the patrol's grabber uses (adapters/frame_grabber.py): TCP, and no multi-second FFmpeg stream probe.
os.environ.setdefault("OPENCV_FFMPEG_CAPTURE_OPTIONS", "rtsp_transport;tcp|fpsprobesize;0|analyzeduration;100000")
os.environ.setdefault("OPENCV_FFMPEG_IS_THREAD_SAFE", "1")

import cv2  # after the environment above, which OpenCV reads
import numpy as np
from numpy.typing import NDArray

__all__ = ["rtsp_server"]

Frame = NDArray[np.uint8]
OPEN_TIMEOUT_MS = 10_000
# Two frames this far apart: a live picture has moved, a frozen one has not (the stream runs at 15 fps).
FRAMES_APART = 6


class Viewer:
    """A raw RTSP viewer over TCP: DESCRIBE, SETUP and PLAY with `Range: npt=0.000-`, as FFmpeg sends it."""

    def __init__(self, url: str) -> None:
        self.url = url
        where = urlsplit(url)
        self._socket = socket.create_connection((where.hostname, where.port), 10)
        self._cseq = 0

    def request(self, method: str, uri: str, headers: dict[str, str]) -> dict[str, str]:
        self._cseq += 1
        lines = [f"{method} {uri} RTSP/1.0", f"CSeq: {self._cseq}", *(f"{k}: {v}" for k, v in headers.items())]
        self._socket.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = self._socket.recv(65536)
            assert chunk, f"{method}: the server hung up"
            data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        status, *fields = head.decode().split("\r\n")
        assert " 200 " in status, f"{method}: {status}"
        answer = dict(f.split(": ", 1) for f in fields)
        while len(body) < int(answer.get("Content-Length", "0")):  # the SDP, read to its end
            body += self._socket.recv(65536)
        return answer

    def play(self) -> int:
        """The RTP clock (RTP-Info rtptime) the server says the stream is at when this viewer starts."""
        self.request("DESCRIBE", self.url, {"Accept": "application/sdp"})
        setup = self.request("SETUP", self.url + "/stream=0", {"Transport": "RTP/AVP/TCP;unicast;interleaved=0-1"})
        session = setup["Session"].split(";")[0]
        played = self.request("PLAY", self.url, {"Session": session, "Range": "npt=0.000-"})
        return int(played["RTP-Info"].split("rtptime=")[1].split(";")[0])

    def close(self) -> None:
        self._socket.close()


def grab_two(url: str) -> tuple[Frame, Frame, float]:
    """Two frames FRAMES_APART apart, and the open + first frame time in seconds."""
    started = time.monotonic()
    params = [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, OPEN_TIMEOUT_MS, cv2.CAP_PROP_READ_TIMEOUT_MSEC, OPEN_TIMEOUT_MS]
    capture = cv2.VideoCapture(url, cv2.CAP_FFMPEG, params)
    try:
        ok, first = capture.read()
        assert ok, f"no frame from {url}"
        opened = time.monotonic() - started
        for _ in range(FRAMES_APART):
            ok, last = capture.read()
            assert ok, f"stream {url} stopped"
        return np.asarray(first, np.uint8), np.asarray(last, np.uint8), opened
    finally:
        capture.release()


def stream_kbps(url: str, seconds: float = 3.0) -> float:
    """The stream's rate as ffprobe counts its packets over `seconds` (a tool we did not write)."""
    probe = subprocess.run(
        [
            "ffprobe",
            "-v",
            "error",
            "-rtsp_transport",
            "tcp",
            "-read_intervals",
            f"%+{seconds}",
            "-select_streams",
            "v:0",
            "-show_entries",
            "packet=size",
            "-of",
            "csv=p=0",
            url,
        ],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    sizes = [int(line) for line in probe.stdout.split() if line.strip().isdigit()]
    return sum(sizes) * 8 / 1000 / seconds


def sharpness(frame: Frame) -> float:
    return float(cv2.Laplacian(cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY), cv2.CV_64F).var())


async def test_each_pattern_shows_what_its_name_says(rtsp_server: RtspServer) -> None:
    grabs = await asyncio.gather(*(asyncio.to_thread(grab_two, rtsp_server.url(p)) for p in PATTERNS))
    frames = dict(zip(PATTERNS, grabs, strict=True))
    for first, _last, opened in grabs:
        assert first.shape == (360, 640, 3)
        assert opened < 8.0  # about 1 s idle; these opens run side by side on 2 cores
    moving, frozen = frames["moving"], frames["frozen"]
    assert np.abs(moving[0].astype(int) - moving[1]).mean() > 2  # the scene drifts
    assert np.abs(frozen[0].astype(int) - frozen[1]).mean() < 0.5  # the very same picture
    assert frames["black"][0].mean() < 20
    covered = frames["covered"][0]
    assert covered.std() < 10
    assert 20 < covered.mean() < 80  # dark grey, not black
    assert frames["too_dark"][0].mean() < 60
    assert frames["too_bright"][0].mean() > 190
    blue, green, red = (frames["color_cast"][0][..., c].mean() for c in range(3))
    assert red > 1.5 * green
    assert red > 1.5 * blue
    assert sharpness(frames["blurred"][0]) < sharpness(moving[0]) / 10


async def test_opencv_reads_the_digest_protected_mount(rtsp_server: RtspServer) -> None:
    url = rtsp_server.url("moving", auth=True).replace("rtsp://", f"rtsp://{RTSP_USER}:{RTSP_PASSWORD}@")
    first, _last, _opened = await asyncio.to_thread(grab_two, url)
    assert first.shape == (360, 640, 3)


def thread_count(pid: int) -> int:
    with open(f"/proc/{pid}/status", encoding="ascii") as status:
        return int(next(line.split()[1] for line in status if line.startswith("Threads:")))


async def test_a_hundred_camera_bench_shares_one_pipeline_per_pattern() -> None:
    mounts = {f"cam-{i:03d}": PATTERNS[i % len(PATTERNS)] for i in range(120)}
    async with RtspServer(mounts, auth_password="bench") as server:
        assert server.mounts == 120 + len(PATTERNS) + len(LIVE_PATTERNS)
        results = await asyncio.gather(*(probe_stream(m, server.url(m), None, None, 20.0) for m in mounts))
        assert all((r.codec, r.width, r.height) == ("H264", 640, 360) for r in results)
        assert server.pid is not None
        # GStreamer runs about 7 threads per pipeline: one per mount would be 800+, one per pattern about 60.
        assert thread_count(server.pid) < 200
        pid = server.pid
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


async def test_a_bad_stream_spec_fails_to_start_saying_why() -> None:
    with pytest.raises(GatewayError, match="unknown pattern 'snow'"):
        async with RtspServer({"cam": "snow"}):
            pass


async def test_a_bad_bitrate_fails_to_start_saying_why() -> None:
    with pytest.raises(GatewayError, match="bad bitrate 'fast'"):
        async with RtspServer({"cam": "moving:h264:fast"}):
            pass


async def test_the_bitrate_in_the_spec_sets_the_stream_rate(rtsp_server: RtspServer) -> None:
    # A live picture (the drifting card) at 128 and at 1024 kbit/s: the encoder holds each near its budget.
    async with RtspServer({"low": "moving:h264:128", "high": "moving:h264:1024"}) as server:
        low, high = await asyncio.gather(*(asyncio.to_thread(stream_kbps, server.url(m)) for m in ("low", "high")))
    # Rate control caps, it does not fill: on a light scene x264 may stay well under its budget (49 kbit/s seen
    # for 128, 478 for 1024). What the spec must do is keep each stream under its cap and set them far apart.
    assert 16 < low < 256
    assert 256 < high < 2048
    assert high > 3 * low


async def test_a_taken_port_fails_to_start() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        with pytest.raises(GatewayError, match="did not start"):
            await asyncio.to_thread(RtspServer(port=taken.getsockname()[1]).start)


def test_url_without_a_password_refuses_auth_mounts() -> None:
    with pytest.raises(GatewayError, match="without a password"):
        RtspServer().url("moving", auth=True)


def test_missing_gstreamer_names_the_debian_packages(monkeypatch: pytest.MonkeyPatch) -> None:
    # The virtualenv's interpreter has no gi: exactly the machine the fixture must fail on, not skip.
    monkeypatch.setattr(rtsp, "SYSTEM_PYTHON", sys.executable)
    problem = check_gstreamer()
    assert problem is not None
    assert "apt-get install" in problem
    assert "gir1.2-gst-rtsp-server-1.0" in problem
    assert "python3-gi" in problem


async def test_a_server_that_dies_comes_back_on_its_ports() -> None:
    """As a camera that reboots: a GStreamer process that aborts is started again on the same ports, and the
    stream answers there."""
    async with RtspServer({"cam": "moving"}) as server:
        url = server.url("cam")
        await probe_stream("cam", url, None, None, 5.0)
        assert server.pid is not None
        os.kill(server.pid, signal.SIGABRT)
        async with asyncio.timeout(15):
            while True:  # refused until the new process listens: ask again, as a camera's poller would
                try:
                    info = await probe_stream("cam", url, None, None, 5.0)
                    break
                except DeviceError:
                    await asyncio.sleep(0.1)
        assert info.ok
        assert server.url("cam") == url
        assert server.restarts == 1


async def test_a_viewer_joining_with_a_range_does_not_restart_the_stream_under_the_others(
    rtsp_server: RtspServer,
) -> None:
    """A camera's live stream runs on whoever joins: the RTP clock a second viewer is told has moved on by the
    time between the two. (GStreamer's test source says it can seek, so each PLAY with a range used to seek the
    shared pipeline back to 0 under every viewer; a PLAY arriving during that flush aborted the server.)"""
    first = Viewer(rtsp_server.url("moving"))
    second = Viewer(rtsp_server.url("moving"))
    try:
        at_first = await asyncio.to_thread(first.play)
        started = time.monotonic()
        await asyncio.sleep(1.0)  # the first viewer watches for a second before the second joins
        at_second = await asyncio.to_thread(second.play)
        elapsed = time.monotonic() - started
    finally:
        first.close()
        second.close()
    advanced_s = ((at_second - at_first) % 2**32) / 90_000  # H.264 over RTP: a 90 kHz clock
    assert 0.5 * elapsed <= advanced_s <= elapsed + 1.0, (advanced_s, elapsed)
