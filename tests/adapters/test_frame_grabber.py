"""Frame grabs with OpenCV against the real GStreamer RTSP server, and against sockets that misbehave."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import cv2
import numpy as np
import pytest

from adapters.frame_grabber import FrameGrabber, Grab, decode_jpeg, safe_uri
from gateway.domain.errors import DeviceProtocolError, DeviceTimeout, DeviceUnreachable
from monitoring.quality import diagnose
from simulators.rtsp import PATTERNS, RtspServer
from tests.fixtures.ports import free_port
from tests.fixtures.rtsp import RTSP_PASSWORD, rtsp_server
from tests.fixtures.waiting import eventually

__all__ = ["rtsp_server"]

# The test server sends 15 frames a second; one second between the two frames is enough for the frozen check.
INTERVAL_S = 1.0


@pytest.fixture
async def silent_camera() -> AsyncIterator[str]:
    """An RTSP URI on 127.0.0.1 whose server accepts the connection and then never says a word."""
    hold = asyncio.Event()
    connected = asyncio.Event()

    async def never_answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connected.set()
        await hold.wait()
        writer.close()

    server = await asyncio.start_server(never_answer, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    yield f"rtsp://127.0.0.1:{port}/stream"
    hold.set()
    server.close()
    await server.wait_closed()


async def test_every_test_pattern_gets_its_verdict(rtsp_server: RtspServer) -> None:
    expected = {pattern: pattern for pattern in PATTERNS} | {"moving": "ok"}
    async with FrameGrabber(workers=len(PATTERNS)) as grabber:
        started = time.perf_counter()
        grabs = await asyncio.gather(
            *(grabber.grab(name, rtsp_server.url(name), interval_s=INTERVAL_S) for name in PATTERNS)
        )
        round_s = time.perf_counter() - started
    verdicts = {}
    for name, grab in zip(PATTERNS, grabs, strict=True):
        assert grab.failure is None, grab.error
        assert len(grab.frames) == 2
        assert grab.frames[0].shape == (360, 640, 3)
        verdicts[name] = diagnose(grab.latest, grab.previous).verdict
    report = ", ".join(f"{g.camera_id} open {g.open_ms:.0f} ms total {g.total_ms:.0f} ms" for g in grabs)
    print(f"\n{len(grabs)} streams in parallel in {round_s:.2f} s: {report}")
    assert verdicts == expected


async def test_credentials_in_the_uri_open_a_protected_stream(rtsp_server: RtspServer) -> None:
    url = rtsp_server.url("moving", auth=True).replace("rtsp://", f"rtsp://admin:{RTSP_PASSWORD}@")
    async with FrameGrabber(workers=1) as grabber:
        grab = await grabber.grab("gate-1", url, frames=1)
    assert grab.failure is None, grab.error
    assert grab.latest is not None
    assert grab.previous is None


async def test_a_camera_that_never_answers_times_out_and_blocks_nothing_else(
    rtsp_server: RtspServer, silent_camera: str
) -> None:
    ticks: list[float] = []

    async def heartbeat() -> None:
        while True:
            ticks.append(time.perf_counter())
            await asyncio.sleep(0.05)

    beating = asyncio.create_task(heartbeat())
    try:
        async with FrameGrabber(workers=2) as grabber:
            started = time.perf_counter()
            silent_task = asyncio.create_task(
                grabber.grab("dead-1", silent_camera, open_timeout_s=2.0, read_timeout_s=2.0)
            )
            live = await grabber.grab("gate-1", rtsp_server.url("moving"), interval_s=INTERVAL_S)
            live_done_s = time.perf_counter() - started
            silent = await silent_task
            silent_done_s = time.perf_counter() - started
    finally:
        beating.cancel()
    assert live.failure is None, live.error
    assert len(live.frames) == 2
    assert isinstance(silent.failure, DeviceTimeout)
    assert silent.failure.device == "dead-1"
    assert silent.frames == ()
    # Within its open timeout (plus the pool's and FFmpeg's slack), and the live grab did not wait for it.
    assert 1.5 <= silent_done_s < 6.0
    assert live_done_s < silent_done_s
    gaps = np.diff(ticks)
    assert gaps.max() < 0.5, f"the event loop stalled for {gaps.max():.2f} s"


async def test_a_closed_port_fails_fast_as_unreachable() -> None:
    uri = f"rtsp://admin:secret@127.0.0.1:{free_port()}/stream"
    async with FrameGrabber(workers=1) as grabber:
        started = time.perf_counter()
        grab = await grabber.grab("gate-9", uri, open_timeout_s=5.0)
    assert isinstance(grab.failure, DeviceUnreachable)
    assert time.perf_counter() - started < 2.0
    assert grab.error is not None
    assert "secret" not in grab.error


async def test_grabs_wait_for_a_free_worker_without_being_charged(rtsp_server: RtspServer, silent_camera: str) -> None:
    async with FrameGrabber(workers=1) as grabber:
        started = time.perf_counter()
        silent, live = await asyncio.gather(
            grabber.grab("dead-1", silent_camera, open_timeout_s=3.0, read_timeout_s=3.0),
            grabber.grab("gate-1", rtsp_server.url("moving"), frames=1, open_timeout_s=3.0, read_timeout_s=3.0),
        )
        wall_s = time.perf_counter() - started
    assert isinstance(silent.failure, DeviceTimeout)
    assert live.failure is None, live.error
    # One worker: the live grab waited for the silent one's thread, but its own clock (and its deadline) started
    # only when a thread took it.
    assert wall_s * 1000 > silent.total_ms + live.total_ms * 0.9
    assert live.total_ms < silent.total_ms


async def test_closing_the_grabber_stops_a_grab_in_progress(rtsp_server: RtspServer) -> None:
    grabber = FrameGrabber(workers=1)
    task = asyncio.create_task(grabber.grab("gate-1", rtsp_server.url("moving"), interval_s=60.0))
    try:
        await eventually(lambda: grabber.busy == 1, timeout=20, what="the grab's thread started")
        started = time.perf_counter()
        await grabber.aclose()
        grab: Grab = await task
    finally:
        task.cancel()
    assert time.perf_counter() - started < 5.0
    assert isinstance(grab.failure, DeviceTimeout)


async def test_a_snapshot_is_decoded_off_the_loop() -> None:
    picture = np.full((90, 160, 3), (30, 120, 200), np.uint8)
    ok, jpeg = cv2.imencode(".jpg", picture)
    assert ok
    async with FrameGrabber(workers=1) as grabber:
        grab = await grabber.decode_snapshot("gate-1", jpeg.tobytes())
        broken = await grabber.decode_snapshot("gate-1", b"<html>401 Unauthorized</html>")
    assert grab.failure is None
    assert grab.latest is not None
    assert grab.latest.shape == (90, 160, 3)
    assert isinstance(broken.failure, DeviceProtocolError)
    assert decode_jpeg(b"") is None


async def test_the_deadline_turns_into_a_timeout_naming_the_camera() -> None:
    picture = np.zeros((1080, 1920, 3), np.uint8)
    ok, jpeg = cv2.imencode(".jpg", picture)
    assert ok
    async with FrameGrabber(workers=1) as grabber:
        grab = await grabber.decode_snapshot("hall-2", jpeg.tobytes(), timeout_s=0)
        assert isinstance(grab.failure, DeviceTimeout)
        assert grab.failure.device == "hall-2"
        # The thread finishes its work and gives its slot back.
        await eventually(lambda: grabber.busy == 0, timeout=10, what="the worker freed")
        assert (await grabber.decode_snapshot("hall-2", jpeg.tobytes())).failure is None


def test_logged_uris_carry_no_credentials() -> None:
    assert safe_uri("rtsp://admin:p%40ss@10.1.2.3:554/Streaming/101") == "rtsp://10.1.2.3:554/Streaming/101"


async def test_the_wait_between_two_frames_holds_no_worker(rtsp_server: RtspServer) -> None:
    # One worker, four cameras, frames 2 s apart: a worker that sat out each wait would need the four opens (each
    # waits for the stream's next key frame, up to a second, as with a camera) plus 4 x 2 s.
    interval_s, cameras = 2.0, 4
    async with FrameGrabber(workers=1) as grabber:
        started = time.perf_counter()
        grabs = await asyncio.gather(
            *(grabber.grab(f"cam-{i}", rtsp_server.url("moving"), interval_s=interval_s) for i in range(cameras))
        )
        wall_s = time.perf_counter() - started
    for grab in grabs:
        assert grab.failure is None, grab.error
        assert len(grab.frames) == 2
        assert grab.previous is not None
        assert grab.latest is not None
        assert diagnose(grab.latest, grab.previous).verdict == "ok"  # two different moments of the drifting card
    opens_s = sum((grab.open_ms or 0.0) / 1000 for grab in grabs)
    # Without holding: the opens, one wait, and some slack for a busy machine, but not half the other waits.
    assert wall_s < opens_s + interval_s + (cameras - 1) * interval_s * 0.5, f"{wall_s:.1f} s, opens {opens_s:.1f} s"
