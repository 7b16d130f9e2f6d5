"""Frame grabbing with OpenCV's FFmpeg backend, in a bounded pool of threads so decoding never blocks the loop.

OpenCV's RTSP open otherwise waits about 30 s on a dead camera; here the open and every read have their own
timeout (passed to FFmpeg at open), and each grab an overall asyncio deadline on top. Two frames are taken a few
seconds apart, for the frozen-picture check, and no thread waits out the seconds between them: the stream stays
open, its socket buffering, and a thread then catches up on it. OpenCV releases the GIL while it opens, reads
and decodes, so the worker threads run in parallel with each other and with the event loop.

    async with FrameGrabber(workers=8) as grabber:
        grab = await grabber.grab("gate-1", "rtsp://user:pass@10.0.0.5/stream1")
        if grab.failure is None: ...  # grab.frames
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import contextlib
import logging
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlsplit

# Read by OpenCV's FFmpeg backend when a capture opens, so set before any opens: RTSP over TCP (UDP is lost
# behind school NATs and firewalls, and interleaved TCP needs no extra ports); no frame-rate probing (it waits
# for several frames before the first is returned); and stream analysis cut to 0.1 s of the stream: a camera's
# SDP already carries the codec parameters (sprop-parameter-sets), and FFmpeg would otherwise read up to 5 MB or
# 5 s of a low-rate stream first (a still or black picture is a few hundred bytes a frame). A time limit, not a
# byte limit, so it does not depend on the bit rate. Measured on the test server (640x360 at 5 fps, a key frame
# a second), open + first frame: 5.0 s with FFmpeg's defaults, 1.8 s without the fps probe, 0.8 s with the 0.1 s
# analysis too. Set only if the operator has not: a camera that wants UDP, or whose SDP lacks the parameters, is
# the exception and gets its own options.
os.environ.setdefault("OPENCV_FFMPEG_CAPTURE_OPTIONS", "rtsp_transport;tcp|fpsprobesize;0|analyzeduration;100000")
# Without this OpenCV serialises every FFmpeg open behind one global lock: 20 streams would open one by one.
os.environ.setdefault("OPENCV_FFMPEG_IS_THREAD_SAFE", "1")

import cv2  # after the environment above, which OpenCV reads
import numpy as np
from numpy.typing import NDArray

from gateway.domain.errors import DeviceError, DeviceProtocolError, DeviceTimeout, DeviceUnreachable

logger = logging.getLogger(__name__)

# With the variable above OpenCV logs a WARN line at every FFmpeg open ("all OpenCV locks removed"), ten lines
# a patrol round on the operator's terminal and in the service log, saying what we chose on purpose. Its own
# log level, not a filter on stderr: errors still come through.
cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)

Frame = NDArray[Any]  # BGR uint8, as OpenCV decodes
# The frozen check compares frames this far apart: a live scene (people, trees, sensor noise, the camera's clock)
# changes within it, and a patrol of 100 streams on 8 threads still ends within seconds.
FRAME_INTERVAL_S = 2.0
DEFAULT_WORKERS = 32  # as the patrol's default: opens mostly wait for a key frame
# Cameras answer an RTSP open within a second or two on a school LAN; 5 s leaves room for a busy NVR.
OPEN_TIMEOUT_S = 5.0
# A live stream sends a frame every 40-200 ms; 5 s without one means it has stalled.
READ_TIMEOUT_S = 5.0
# On top of the sum of the open, read and interval budgets: thread start-up and FFmpeg's own slack.
DEADLINE_SLACK_S = 2.0
# A failed open that took this share of its timeout is taken as the timeout firing, not a refusal.
TIMED_OUT_SHARE = 0.9
# Catching up on a stream without timestamps: a grab that waited this long found the buffer empty (buffered
# frames decode in about a millisecond; a 25 fps camera sends one every 40 ms).
LIVE_FRAME_WAIT_S = 0.02


@dataclass(frozen=True, slots=True)
class Grab:
    """What one grab got: the frames (oldest first), the time to open and decode the first, or why it failed."""

    camera_id: str
    frames: tuple[Frame, ...]
    open_ms: float | None
    failure: DeviceError | None = None
    total_ms: float = 0.0

    @property
    def error(self) -> str | None:
        return None if self.failure is None else str(self.failure)

    @property
    def latest(self) -> Frame | None:
        return self.frames[-1] if self.frames else None

    @property
    def previous(self) -> Frame | None:
        """The first frame, when there are two or more: what the frozen check compares the latest with."""
        return self.frames[0] if len(self.frames) > 1 else None


def safe_uri(uri: str) -> str:
    """The URI without credentials, for logs."""
    parts = urlsplit(uri)
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return parts._replace(netloc=host).geturl()


def with_credentials(uri: str, username: str | None, password: str) -> str:
    """The stream URI with `user:pass@` for OpenCV (which takes credentials only there). Never logged."""
    parts = urlsplit(uri)
    if not username or parts.username:
        return uri
    netloc = f"{quote(username, safe='')}:{quote(password, safe='')}@{parts.netloc}"
    return parts._replace(netloc=netloc).geturl()


def encode_jpeg(frame: Frame, quality: int = 85) -> bytes:
    """A frame as a JPEG (an alarm picture grabbed from the stream when the snapshot URI gives none)."""
    ok, encoded = cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise ValueError("could not encode the frame as JPEG")
    return bytes(encoded.tobytes())


def decode_jpeg(data: bytes) -> Frame | None:
    """A snapshot (a JPEG from the camera's snapshot URI) as a frame; None if it is not a picture."""
    if not data:
        return None
    frame = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    return None if frame is None else np.asarray(frame)


def open_capture(uri: str, open_timeout_s: float, read_timeout_s: float) -> cv2.VideoCapture:
    return cv2.VideoCapture(
        uri,
        cv2.CAP_FFMPEG,
        [
            cv2.CAP_PROP_OPEN_TIMEOUT_MSEC,
            int(open_timeout_s * 1000),
            cv2.CAP_PROP_READ_TIMEOUT_MSEC,
            int(read_timeout_s * 1000),
        ],
    )


@dataclass(slots=True)
class _OpenStream:
    """A capture between two of its frames: open, its socket buffering the stream, no thread holding it."""

    capture: cv2.VideoCapture
    frames: list[Frame]
    open_ms: float
    position_ms: float  # the stream time of the last frame taken (FFmpeg's presentation time)
    started: float


def open_stream(
    camera_id: str,
    uri: str,
    *,
    open_timeout_s: float,
    read_timeout_s: float,
    cancelled: threading.Event | None = None,
) -> Grab | _OpenStream:
    """Open the stream and decode its first frame; the open stream, or a Grab saying why it failed."""
    started = time.perf_counter()

    def elapsed_ms() -> float:
        return (time.perf_counter() - started) * 1000

    try:
        capture = open_capture(uri, open_timeout_s, read_timeout_s)
    except cv2.error as exc:  # a URI FFmpeg cannot parse at all
        return Grab(camera_id, (), None, DeviceProtocolError(camera_id, f"stream URI not usable: {exc.err}"))
    failure: DeviceError | None = None
    open_ms: float | None = None
    if not capture.isOpened():
        if elapsed_ms() >= open_timeout_s * 1000 * TIMED_OUT_SHARE:
            failure = DeviceTimeout(camera_id, f"stream did not open within {open_timeout_s:g} s")
        else:
            failure = DeviceUnreachable(camera_id, "stream refused or could not be opened")
    else:
        reading = time.perf_counter()
        ok, first = capture.read()
        open_ms = elapsed_ms()
        if ok and first is not None:
            return _OpenStream(capture, [np.asarray(first)], open_ms, capture.get(cv2.CAP_PROP_POS_MSEC), started)
        if time.perf_counter() - reading >= read_timeout_s * TIMED_OUT_SHARE:
            failure = DeviceTimeout(camera_id, f"no frame within {read_timeout_s:g} s of opening")
        else:
            failure = DeviceProtocolError(camera_id, "stream opened but no frame could be decoded")
    capture.release()
    return Grab(camera_id, (), open_ms, failure, elapsed_ms())


def take_frame(
    camera_id: str, stream: _OpenStream, interval_s: float, *, cancelled: threading.Event | None = None
) -> DeviceError | None:
    """Catch up on what the socket buffered and take the frame `interval_s` of stream time after the last one.

    The frames in between are demuxed and decoded (grab), not converted: each P-frame needs the one before it.
    Stream time, not the clock: the wait before this call may have been longer than the interval, and what the
    camera sent meanwhile sits in the socket's buffer, seconds old. A stream whose frames carry no time (FFmpeg
    reports 0) is caught up by the clock instead: frames are grabbed until one takes the camera's own pace.
    """
    stop = cancelled or threading.Event()
    capture = stream.capture
    target_ms = stream.position_ms + interval_s * 1000
    while True:
        if stop.is_set():
            return DeviceTimeout(camera_id, "grab cancelled at its deadline")
        asked = time.perf_counter()
        if not capture.grab():
            return DeviceTimeout(camera_id, "stream stopped sending frames")
        position = capture.get(cv2.CAP_PROP_POS_MSEC)
        if position > 0 and position >= target_ms:
            break
        if position <= 0 and time.perf_counter() - asked >= LIVE_FRAME_WAIT_S:
            break  # no stream time: this frame had to be waited for, so the buffer is empty and it is live
    ok, frame = capture.retrieve()
    if not ok or frame is None:
        return DeviceProtocolError(camera_id, "a frame could not be decoded")
    stream.frames.append(np.asarray(frame))
    stream.position_ms = position
    return None


def release_stream(stream: _OpenStream, *, cancelled: threading.Event | None = None) -> None:
    stream.capture.release()


class _Slots:
    """A semaphore whose urgent waiters go first: the next frame of a stream already open (its socket filling,
    its camera waiting on it) before opening another stream."""

    def __init__(self, count: int) -> None:
        self._free = count
        self._waiting: tuple[collections.deque[asyncio.Future[None]], ...] = (collections.deque(), collections.deque())

    async def acquire(self, *, urgent: bool = False) -> None:
        if self._free > 0 and not any(self._waiting):
            self._free -= 1
            return
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiting[0 if urgent else 1].append(waiter)
        try:
            await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                self.release()  # handed a slot just as it was cancelled: pass it on
            else:
                self._waiting[0 if urgent else 1].remove(waiter)
            raise

    def release(self) -> None:
        for queue in self._waiting:
            while queue:
                waiter = queue.popleft()
                if not waiter.done():
                    waiter.set_result(None)  # the slot passes straight to it
                    return
        self._free += 1


class FrameGrabber:
    """A bounded pool of grabbing threads: `async with FrameGrabber(workers=8) as grabber`.

    At most `workers` grabs run at once; more wait their turn on the event loop, not in the pool, so a grab's
    deadline counts from when a thread starts on it. A stream that hangs costs its own timeout and one thread,
    never the loop or the other grabs.
    """

    def __init__(self, workers: int = DEFAULT_WORKERS) -> None:
        if workers < 1:
            raise ValueError("a frame grabber needs at least one worker")
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="grab")
        self._slots = _Slots(workers)
        self._closed = False
        self._closing = asyncio.Event()  # wakes the grabs waiting between two frames
        self._running: dict[concurrent.futures.Future[Any], threading.Event] = {}
        self.workers = workers

    @property
    def busy(self) -> int:
        """How many grabs hold a thread right now (running, or finishing after their deadline)."""
        return len(self._running)

    async def __aenter__(self) -> FrameGrabber:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self, grace_s: float = READ_TIMEOUT_S + 1.0) -> None:
        """Stop every grab at its next read and wait (bounded) for the threads: none outlives the grabber."""
        self._closed = True
        self._closing.set()
        for cancelled in self._running.values():
            cancelled.set()
        running = [asyncio.wrap_future(f) for f in self._running]
        if running:
            _, late = await asyncio.wait(running, timeout=grace_s)
            if late:
                logger.warning("%d frame grabs still blocked in OpenCV after %.0f s", len(late), grace_s)
        self._pool.shutdown(wait=False, cancel_futures=True)

    async def _run(
        self, camera_id: str, deadline_s: float, job: Any, *args: Any, urgent: bool = False, **kwargs: Any
    ) -> Any:
        loop = asyncio.get_running_loop()
        cancelled = threading.Event()
        if self._closed:
            raise DeviceTimeout(camera_id, "the frame grabber closed before this grab ended")
        await self._slots.acquire(urgent=urgent)
        try:
            future = self._pool.submit(job, *args, cancelled=cancelled, **kwargs)
        except BaseException:
            self._slots.release()
            raise
        self._running[future] = cancelled

        def finished(done: concurrent.futures.Future[Any]) -> None:
            # In the worker thread: hand the bookkeeping to the loop. The slot is free only when the thread is,
            # so a grab past its deadline still holds its thread and its slot.
            with contextlib.suppress(RuntimeError):  # the loop has closed: nothing waits for the slot any more
                loop.call_soon_threadsafe(self._finished, done)

        future.add_done_callback(finished)
        try:
            async with asyncio.timeout(deadline_s):
                return await asyncio.wrap_future(future)
        except TimeoutError as exc:
            cancelled.set()
            raise DeviceTimeout(camera_id, f"no frames within {deadline_s:g} s") from exc
        except asyncio.CancelledError:
            cancelled.set()
            raise

    def _finished(self, done: concurrent.futures.Future[Any]) -> None:
        self._running.pop(done, None)
        self._slots.release()

    async def grab(
        self,
        camera_id: str,
        uri: str,
        *,
        frames: int = 2,
        interval_s: float = FRAME_INTERVAL_S,
        open_timeout_s: float = OPEN_TIMEOUT_S,
        read_timeout_s: float = READ_TIMEOUT_S,
    ) -> Grab:
        """`frames` frames `interval_s` apart from the stream at `uri`; failures come back in `Grab.failure`.

        A thread holds the grab only while it opens the stream and while it catches up on a frame: between two
        frames the stream stays open, its socket buffering, and no thread waits for the camera.
        """
        started = time.perf_counter()
        stream: _OpenStream | None = None
        try:
            opened: Grab | _OpenStream = await self._run(
                camera_id,
                open_timeout_s + read_timeout_s + DEADLINE_SLACK_S,
                open_stream,
                camera_id,
                uri,
                open_timeout_s=open_timeout_s,
                read_timeout_s=read_timeout_s,
            )
            if isinstance(opened, Grab):
                grab = opened
            else:
                stream = opened
                failure: DeviceError | None = None
                first_at = stream.started + stream.open_ms / 1000
                while failure is None and len(stream.frames) < frames:
                    # The wait between frames holds no thread: the stream's socket buffers meanwhile.
                    due = first_at + interval_s * len(stream.frames)
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(max(0.0, due - time.perf_counter())):
                            await self._closing.wait()
                    if self._closed:
                        failure = DeviceTimeout(camera_id, "grab cancelled: the frame grabber closed")
                        break
                    failure = await self._run(
                        camera_id,
                        read_timeout_s + interval_s + DEADLINE_SLACK_S,
                        take_frame,
                        camera_id,
                        stream,
                        interval_s,
                        urgent=True,
                    )
                # Charged from when a thread took it, as the open's own clock: not the wait for a free worker.
                total_ms = (time.perf_counter() - stream.started) * 1000
                grab = Grab(camera_id, tuple(stream.frames), stream.open_ms, failure, total_ms)
        except DeviceTimeout as exc:
            got = tuple(stream.frames) if stream is not None else ()
            grab = Grab(camera_id, got, stream.open_ms if stream else None, exc, (time.perf_counter() - started) * 1000)
        finally:
            if stream is not None:
                await self._release(camera_id, stream)
        if grab.failure is not None:
            logger.info("%s: frame grab from %s failed: %s", camera_id, safe_uri(uri), grab.failure.message)
        return grab

    async def _release(self, camera_id: str, stream: _OpenStream) -> None:
        """Close the capture in a thread (FFmpeg's TEARDOWN can block); shielded so a cancelled grab still closes."""
        if self._closed:
            stream.capture.release()  # no pool left to hand it to: once, at shutdown
            return
        with contextlib.suppress(DeviceTimeout):
            await asyncio.shield(self._run(camera_id, READ_TIMEOUT_S, release_stream, stream, urgent=True))

    async def decode_snapshot(self, camera_id: str, jpeg: bytes, *, timeout_s: float = READ_TIMEOUT_S) -> Grab:
        """A snapshot (fetched by the caller from the camera's snapshot URI) as a one-frame grab, decoded off-loop."""
        started = time.perf_counter()

        def decode(*, cancelled: threading.Event) -> Frame | None:
            return decode_jpeg(jpeg)

        try:
            frame: Frame | None = await self._run(camera_id, timeout_s, decode)
        except DeviceTimeout as exc:
            return Grab(camera_id, (), None, exc, (time.perf_counter() - started) * 1000)
        elapsed = (time.perf_counter() - started) * 1000
        if frame is None:
            return Grab(camera_id, (), None, DeviceProtocolError(camera_id, "snapshot is not a JPEG picture"), elapsed)
        return Grab(camera_id, (frame,), elapsed, None, elapsed)
