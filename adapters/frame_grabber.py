"""Frame grabbing with OpenCV's FFmpeg backend, in a bounded pool of threads so decoding never blocks the loop.

OpenCV's RTSP open otherwise waits about 30 s on a dead camera; here every open and read has its own timeout, and
the whole grab an overall deadline. Two frames are taken a few seconds apart, for the frozen-picture check.
"""

from __future__ import annotations

import asyncio
import os
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

# Read by OpenCV's FFmpeg backend when a capture opens, so set before any: RTSP over TCP (UDP is lost behind
# school NATs and firewalls), and no long probing of the stream (a camera's stream is what its SDP says).
os.environ.setdefault(
    "OPENCV_FFMPEG_CAPTURE_OPTIONS", "rtsp_transport;tcp|fpsprobesize;0|analyzeduration;0|probesize;32768"
)
# Without this OpenCV serialises every FFmpeg open behind one global lock: 20 streams would open one by one.
os.environ.setdefault("OPENCV_FFMPEG_IS_THREAD_SAFE", "1")

import cv2
import numpy as np
from numpy.typing import NDArray

Frame = NDArray[Any]
# The frozen check compares frames this far apart: a live scene (people, trees, sensor noise) changes within it.
FRAME_INTERVAL_S = 2.0
# An open refused this quickly is an answer (busy), not a timeout: worth one more try after a short pause.
BUSY_RETRY_WITHIN_S = 1.0
BUSY_RETRY_AFTER_S = 0.3


@dataclass(frozen=True, slots=True)
class Grab:
    frames: tuple[Frame, ...]
    open_ms: float | None
    error: str | None = None


def _open(uri: str, open_timeout_s: float, read_timeout_s: float) -> Any:
    params = [
        cv2.CAP_PROP_OPEN_TIMEOUT_MSEC,
        int(open_timeout_s * 1000),
        cv2.CAP_PROP_READ_TIMEOUT_MSEC,
        int(read_timeout_s * 1000),
    ]
    return cv2.VideoCapture(uri, cv2.CAP_FFMPEG, params)


def _grab(uri: str, frames: int, interval_s: float, open_timeout_s: float, read_timeout_s: float) -> Grab:
    started = time.perf_counter()
    capture = _open(uri, open_timeout_s, read_timeout_s)
    if not capture.isOpened() and time.perf_counter() - started < BUSY_RETRY_WITHIN_S:
        # Refused at once (RTSP 503: a camera at its client limit, or restarting its encoder): ask once more.
        capture.release()
        time.sleep(BUSY_RETRY_AFTER_S)
        capture = _open(uri, open_timeout_s, read_timeout_s)
    try:
        if not capture.isOpened():
            return Grab((), None, "stream did not open")
        ok, first = capture.read()
        open_ms = (time.perf_counter() - started) * 1000
        if not ok or first is None:
            return Grab((), open_ms, "no frame from the stream")
        got = [first]
        while len(got) < frames:
            # Keep reading (decoding what arrives) rather than sleeping: a stream left unread stalls or buffers.
            wait_until = time.perf_counter() + interval_s
            frame = None
            while time.perf_counter() < wait_until:
                ok, frame = capture.read()
                if not ok:
                    return Grab(tuple(got), open_ms, "stream stopped")
            if frame is not None:
                got.append(frame)
        return Grab(tuple(got), open_ms)
    finally:
        capture.release()


def decode_jpeg(data: bytes) -> Frame | None:
    """A snapshot (JPEG from the ONVIF snapshot URI) as a frame, for cameras without a usable stream."""
    frame = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    return None if frame is None else np.asarray(frame)


class FrameGrabber:
    """async with FrameGrabber(workers=8) as grabber: grab = await grabber.grab(camera_id, uri)"""

    def __init__(self, workers: int = 4) -> None:
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="grab")
        self._limit = asyncio.Semaphore(workers)

    async def __aenter__(self) -> FrameGrabber:
        return self

    async def __aexit__(self, *exc: object) -> None:
        # Threads stuck in a read end by their own read timeout; do not wait for them here.
        self._pool.shutdown(wait=False, cancel_futures=True)

    async def grab(
        self,
        uri: str,
        *,
        frames: int = 2,
        interval_s: float = FRAME_INTERVAL_S,
        open_timeout_s: float = 5.0,
        read_timeout_s: float = 5.0,
    ) -> Grab:
        deadline = open_timeout_s + read_timeout_s * frames + interval_s * (frames - 1) + 2.0
        loop = asyncio.get_running_loop()
        async with self._limit:
            job = loop.run_in_executor(self._pool, _grab, uri, frames, interval_s, open_timeout_s, read_timeout_s)
            try:
                async with asyncio.timeout(deadline):
                    return await job
            except TimeoutError:
                return Grab((), None, f"no frames within {deadline:g} s")
