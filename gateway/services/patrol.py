"""Video patrol (视频巡查): a frame from every camera, its picture-quality verdict, a thumbnail, on a schedule.

Verdicts feed the camera state machine (`degraded`, reason `picture:<verdict>`), thumbnails the status page and
the alarm pictures, and each round is stored for the patrol report.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from adapters.frame_grabber import Frame, FrameGrabber, decode_jpeg, with_credentials
from adapters.rtsp.client import probe_stream
from gateway.domain.camera import CameraState, picture_reason
from gateway.domain.config import PatrolConfig
from gateway.domain.errors import AuthFailed, DeviceError, DeviceProtocolError, DeviceTimeout, DeviceUnreachable
from gateway.services.camera_health import CameraHealth, CameraRuntime
from gateway.services.snapshots import CameraSnapshots
from gateway.services.status import Pictures
from monitoring.quality import Diagnosis, Thresholds, diagnose, make_thumbnail

logger = logging.getLogger(__name__)

# Between rounds, a camera that was out of reach at its last check (or never checked) is checked alone this soon
# after it comes within reach: staff see a camera that came back, or was still starting at the first round, at
# once rather than at the next round (ten minutes by default).
CATCH_UP_EVERY_S = 2.0

__all__ = ["Patrol", "PatrolResult", "in_busy_hours", "with_credentials"]


@dataclass(frozen=True, slots=True)
class PatrolResult:
    camera_id: str
    name: str
    area: str
    at: float
    verdict: str
    diagnosis: Diagnosis
    thumbnail: bytes | None
    source: str  # rtsp, snapshot or none
    error: str | None = None
    # Why there is no picture, when there is none: one of NO_PICTURE_REASONS.
    reason: str | None = None

    def as_json(self) -> dict[str, Any]:
        return {
            "camera": self.camera_id,
            "name": self.name,
            "area": self.area,
            "verdict": self.verdict,
            "checks": [c.as_json() for c in self.diagnosis.checks],
            "source": self.source,
            "error": self.error,
            "reason": self.reason,
        }


# Why a camera gave no picture (the report names it).
NO_PICTURE_REASONS = ("auth_failed", "timeout", "unreachable", "protocol_error", "no_stream")


def reason_for(failure: DeviceError | None) -> str:
    """The NO_PICTURE_REASONS entry for a grab's (or a probe's) failure."""
    if isinstance(failure, AuthFailed):
        return "auth_failed"
    if isinstance(failure, DeviceTimeout):
        return "timeout"
    if isinstance(failure, DeviceProtocolError):
        return "protocol_error"
    return "unreachable"


def _reachable(runtime: CameraRuntime) -> bool:
    return runtime.machine.state in (CameraState.ONLINE, CameraState.DEGRADED)


def _stream_answers(runtime: CameraRuntime) -> bool:
    return runtime.stream is not None and runtime.stream.ok


def in_busy_hours(now: datetime, spans: list[str]) -> bool:
    minute = now.hour * 60 + now.minute
    for span in spans:
        start, end = (int(p[:2]) * 60 + int(p[3:]) for p in span.split("-"))
        if start <= minute < end:
            return True
    return False


class Patrol:
    def __init__(
        self,
        health: CameraHealth,
        pictures: Pictures,
        config: PatrolConfig,
        *,
        db: Callable[[], sqlite3.Connection] | None = None,
    ) -> None:
        self._health = health
        self._pictures = pictures
        self._config = config
        self._db = db
        self._snapshots = CameraSnapshots(health)
        self.last_round: list[PatrolResult] = []
        # Per camera, at its last check: (within reach, a picture came, its stream answered DESCRIBE).
        self._last_check: dict[str, tuple[bool, bool, bool]] = {}

    async def check(self, grabber: FrameGrabber, runtime: CameraRuntime) -> PatrolResult:
        camera = runtime.config
        thresholds = Thresholds().with_overrides(camera.quality)
        password = camera.password.get_secret_value() if camera.password else ""
        source, error = "none", None
        failure: DeviceError | None = None
        frames: tuple[Frame, ...] = ()
        if runtime.stream_uri:
            source = "rtsp"
            grab = await grabber.grab(
                camera.id,
                with_credentials(runtime.stream_uri, camera.username, password),
                open_timeout_s=self._config.open_timeout,
                read_timeout_s=self._config.read_timeout,
            )
            frames, error, failure = grab.frames, grab.error, grab.failure
        if not frames and runtime.snapshot_uri:
            source = "snapshot"
            jpeg = await self._snapshots.from_snapshot_uri(runtime)  # the stream already failed: not again
            frame = decode_jpeg(jpeg) if jpeg else None
            frames = (frame,) if frame is not None else ()
        if frames:
            latest = frames[-1]
            previous = frames[0] if len(frames) > 1 else None
            diagnosis = await asyncio.to_thread(diagnose, latest, previous, thresholds)
            thumbnail = await asyncio.to_thread(make_thumbnail, latest)
        else:
            diagnosis = diagnose(None)
            thumbnail = None
        reason = None
        if not frames:
            reason = await self._why_no_picture(runtime, failure) if runtime.stream_uri else "no_stream"
        return PatrolResult(
            camera.id,
            camera.name,
            camera.area,
            time.time(),
            diagnosis.verdict,
            diagnosis,
            thumbnail,
            source,
            error,
            reason,
        )

    async def _why_no_picture(self, runtime: CameraRuntime, failure: DeviceError | None) -> str:
        """What kept the stream from giving a frame. OpenCV tells a refused password from a refused connection
        no better than "could not be opened", so a failed open is asked again with our RTSP client (one
        DESCRIBE, with digest), which hears the 401."""
        if failure is not None and not isinstance(failure, DeviceUnreachable):
            return reason_for(failure)
        camera = runtime.config
        password = camera.password.get_secret_value() if camera.password else None
        assert runtime.stream_uri is not None
        try:
            await probe_stream(camera.id, runtime.stream_uri, camera.username, password, self._config.open_timeout)
        except DeviceError as exc:
            return reason_for(exc)
        return reason_for(failure)

    async def round(self, workers: int | None = None) -> list[PatrolResult]:
        """Check every camera in service; apply and store the results."""
        runtimes = [r for r in self._health.cameras.values() if r.machine.state is not CameraState.MAINTENANCE]
        self.last_round = await self._check_all(runtimes, workers)
        return self.last_round

    async def catch_up(self) -> list[PatrolResult]:
        """Check the cameras now within reach whose last check found them out of reach, or that were never
        checked; the others wait for the next round."""
        runtimes = [r for r in self._health.cameras.values() if self._due_again(r)]
        return await self._check_all(runtimes, None) if runtimes else []

    async def _check_all(self, runtimes: list[CameraRuntime], workers: int | None) -> list[PatrolResult]:
        async with FrameGrabber(workers or self._config.workers) as grabber:
            results = await asyncio.gather(*(self.check(grabber, r) for r in runtimes))
        for runtime, result in zip(runtimes, results, strict=True):
            self._apply(runtime, result)
        if self._db is not None and results:
            await asyncio.to_thread(self._store, results)
        return list(results)

    def _due_again(self, runtime: CameraRuntime) -> bool:
        """Within reach now, and last time out of reach, or without a picture while its stream was down and now
        answers again (a stream that answers yet gives no picture waits for the next round)."""
        if not _reachable(runtime) or runtime.stream_uri is None:
            return False
        last = self._last_check.get(runtime.config.id)
        if last is None:
            return True
        was_reachable, had_picture, stream_answered = last
        return not was_reachable or (not had_picture and not stream_answered and _stream_answers(runtime))

    def _apply(self, runtime: CameraRuntime, result: PatrolResult) -> None:
        if result.thumbnail is not None:
            self._pictures.thumbnails[result.camera_id] = result.thumbnail
        self._pictures.quality[result.camera_id] = result.diagnosis.as_json()
        reachable = _reachable(runtime)
        self._last_check[result.camera_id] = (
            reachable and runtime.stream_uri is not None,
            result.thumbnail is not None,
            _stream_answers(runtime),
        )
        if result.verdict == "ok" or (result.verdict == "no_signal" and not reachable):
            # No picture from an offline camera is already its offline state, not a second fault.
            reasons: frozenset[str] = frozenset()
        else:
            reasons = frozenset({picture_reason(result.verdict)})
        # At once, not at the camera's next health round: staff see a black picture as soon as the patrol does.
        self._health.apply_pictures(runtime, reasons)

    def _store(self, results: list[PatrolResult]) -> None:
        assert self._db is not None
        self._db().executemany(
            "INSERT INTO patrol_results (camera_id, at, verdict, checks, thumbnail) VALUES (?, ?, ?, ?, ?)",
            [(r.camera_id, r.at, r.verdict, json.dumps(r.as_json()["checks"]), r.thumbnail) for r in results],
        )

    async def run(self) -> None:
        """Rounds every `interval`, every `busy_interval` during the school's busy hours."""
        await asyncio.sleep(self._config.open_timeout)  # after the first health round found the streams
        while True:
            started = time.monotonic()
            results = await self.round()
            faults = [f"{r.camera_id}:{r.verdict}" for r in results if r.verdict != "ok"]
            logger.info("patrol: %d cameras, %d faults %s", len(results), len(faults), " ".join(faults))
            busy = in_busy_hours(datetime.now(), self._config.busy_hours)
            every = self._config.busy_interval if busy else self._config.interval
            while (left := every - (time.monotonic() - started)) > 0:
                await asyncio.sleep(min(CATCH_UP_EVERY_S, left))
                for result in await self.catch_up():
                    logger.info("patrol: %s within reach again: %s", result.camera_id, result.verdict)
