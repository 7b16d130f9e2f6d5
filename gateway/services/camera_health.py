"""Camera health: polls every camera on its schedule and feeds the observations to its state machine.

One round of one camera: the unauthenticated ONVIF `GetSystemDateAndTime` (reachable? round trip? clock?), one
authenticated call (are the credentials right?), the media URIs when they are unknown or stale, then an RTSP
DESCRIBE of the stream. All cameras share one HTTP session; a hanging camera costs its own timeout and nobody
else's.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import aiohttp

from adapters.onvif import client as onvif_client
from adapters.onvif.client import AuthMemo, DeviceInfo, MediaInfo
from adapters.rtsp import client as rtsp_client
from adapters.rtsp.client import StreamInfo, StreamMemo
from gateway.domain.camera import CameraState, Reason, is_picture_reason
from gateway.domain.config import CameraConfig, PollingConfig
from gateway.domain.errors import AuthFailed, DeviceError, DeviceProtocolError, DeviceTimeout
from monitoring.camera_state import MachineState, Observation, Policy, Transition, advance, expire, initial

logger = logging.getLogger(__name__)

# Cameras whose clock is this far off are degraded: WS-Security tokens start failing around here on fussy
# firmware, and evidence timestamps in recordings become unreliable (GB/T 28181 platforms sync devices to 1 s).
CLOCK_SKEW_LIMIT_S = 5.0
# Polls in flight at once. Each one is a few small requests; this keeps sockets well under the usual 1,024 file
# limit while 1,000 cameras still finish a round in about a second.
MAX_CONCURRENT_POLLS = 256
# A camera whose media discovery failed (firmware without GetStreamUri, a broken profile) is asked again after
# this long, not every round: four more requests per round would buy nothing.
MEDIA_RETRY_S = 600.0
# The between-rounds timer looks for overdue cameras at least this often: offline is reported within
# interval × offline_after + this (the target allows 1 s).
EXPIRE_EVERY_S = 0.5


@dataclass(slots=True)
class CameraRuntime:
    """What the poller knows of one camera between rounds (mutable, owned by the poller)."""

    config: CameraConfig
    policy: Policy
    machine: MachineState
    next_due: float = 0.0
    media: MediaInfo | None = None
    media_at: float = 0.0
    media_failed_at: float | None = None
    auth: AuthMemo = field(default_factory=AuthMemo)
    stream_memo: StreamMemo = field(default_factory=StreamMemo)  # warm RTSP probes are one DESCRIBE
    last_seen: float | None = None
    rtt_ms: float | None = None
    clock_skew_s: float | None = None
    stream: StreamInfo | None = None
    picture_reasons: frozenset[str] = field(default_factory=frozenset)
    last_error: str | None = None
    device_info: DeviceInfo | None = None
    busy: bool = False  # a poll is in flight: a slow camera is never polled twice at once
    last_observation: Observation | None = None  # the last poll's, for applying a patrol verdict at once

    @property
    def stream_uri(self) -> str | None:
        if self.config.rtsp:
            return self.config.rtsp
        return self.media.stream_uri if self.media else None

    @property
    def snapshot_uri(self) -> str | None:
        if self.config.snapshot:
            return self.config.snapshot
        return self.media.snapshot_uri if self.media else None


def policy_for(camera: CameraConfig, polling: PollingConfig) -> Policy:
    return Policy(
        interval=camera.interval or polling.interval,
        offline_after=camera.offline_after or polling.offline_after,
    )


def _error_reason(exc: DeviceError) -> Reason:
    if isinstance(exc, DeviceTimeout):
        return Reason.TIMEOUT
    if isinstance(exc, DeviceProtocolError):
        return Reason.PROTOCOL_ERROR
    if isinstance(exc, AuthFailed):
        return Reason.AUTH_FAILED
    return Reason.UNREACHABLE


class CameraHealth:
    """Polls the configured cameras and keeps their states; `on_transition` hears every change."""

    def __init__(
        self,
        cameras: Iterable[CameraConfig],
        polling: PollingConfig,
        session: aiohttp.ClientSession,
        *,
        on_transition: Callable[[CameraRuntime, Transition], None] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._polling = polling
        self.session = session
        self._clock = clock
        self._on_transition = on_transition
        self._limit = asyncio.Semaphore(MAX_CONCURRENT_POLLS)
        self.cameras: dict[str, CameraRuntime] = {}
        for camera in cameras:
            policy = policy_for(camera, polling)
            self.cameras[camera.id] = CameraRuntime(camera, policy, initial(camera.id, maintenance=camera.maintenance))

    def timeout_of(self, runtime: CameraRuntime) -> float:
        return runtime.config.timeout or self._polling.timeout

    async def poll(self, runtime: CameraRuntime) -> Observation:
        """One health round of one camera, as an observation for its state machine."""
        async with self._limit:
            return await self._poll(runtime)

    async def _poll(self, runtime: CameraRuntime) -> Observation:
        camera = runtime.config
        timeout = self.timeout_of(runtime)
        now = self._clock()
        reasons: set[str] = set(runtime.picture_reasons)
        if camera.onvif:
            try:
                probe = await onvif_client.probe(self.session, camera.id, camera.onvif, timeout)
            except DeviceError as exc:
                runtime.last_error = str(exc)
                runtime.media = None  # re-read profiles after the camera comes back (it may have rebooted)
                runtime.media_failed_at = None
                return Observation(at=now, reachable=False, reasons=frozenset({_error_reason(exc)}))
            runtime.rtt_ms = probe.rtt_ms
            runtime.clock_skew_s = probe.clock_skew_s
            if probe.clock_skew_s is not None and abs(probe.clock_skew_s) > CLOCK_SKEW_LIMIT_S:
                reasons.add(Reason.CLOCK_SKEW)
            await self._check_onvif(runtime, timeout, reasons, now)
        stream_uri = runtime.stream_uri
        if stream_uri:
            try:
                runtime.stream = await rtsp_client.probe_stream(
                    camera.id, stream_uri, camera.username, _secret(camera), timeout, runtime.stream_memo
                )
            except DeviceError as exc:
                runtime.stream = None
                runtime.last_error = str(exc)
                if not camera.onvif:
                    return Observation(at=now, reachable=False, reasons=frozenset({_error_reason(exc)}))
                reasons.add(Reason.STREAM_AUTH_FAILED if isinstance(exc, AuthFailed) else Reason.STREAM_UNREACHABLE)
        elif camera.onvif and Reason.AUTH_FAILED not in reasons:
            reasons.add(Reason.NO_STREAM_URI)
        runtime.last_seen = now
        return Observation(at=now, reachable=True, reasons=frozenset(reasons))

    async def _check_onvif(self, runtime: CameraRuntime, timeout: float, reasons: set[str], now: float) -> None:
        camera = runtime.config
        if not camera.username:
            return
        skew = runtime.clock_skew_s or 0.0
        try:
            auth = await onvif_client.check_auth(
                self.session,
                camera.id,
                camera.onvif or "",
                camera.username,
                _secret(camera),
                timeout,
                skew,
                memo=runtime.auth,
            )
        except AuthFailed as exc:
            runtime.last_error = str(exc)
            reasons.add("auth_failed")
            return
        except DeviceError as exc:
            runtime.last_error = str(exc)
            reasons.add(Reason.ONVIF_ERROR)
            return
        runtime.device_info = auth.device_info
        stale = now - runtime.media_at > self._polling.refresh_media
        failed_recently = runtime.media_failed_at is not None and now - runtime.media_failed_at < MEDIA_RETRY_S
        if (runtime.media is None or stale) and not failed_recently:
            try:
                runtime.media = await onvif_client.discover_media(
                    self.session,
                    camera.id,
                    camera.onvif or "",
                    camera.username,
                    _secret(camera),
                    timeout,
                    skew,
                    runtime.auth,
                )
                runtime.media_at, runtime.media_failed_at = now, None
            except DeviceError as exc:
                runtime.last_error = str(exc)
                runtime.media_failed_at = now
                if not camera.rtsp:  # with a configured stream, discovery is a convenience, not a fault
                    reasons.add(Reason.ONVIF_ERROR)

    def apply(self, runtime: CameraRuntime, observation: Observation) -> Transition | None:
        """Feed one observation to the camera's state machine; tell the listener about a transition."""
        before = runtime.machine.reasons
        runtime.machine, transition = advance(runtime.machine, observation, runtime.policy)
        if observation.maintenance is None:
            runtime.last_observation = observation
        if transition is not None:
            self._transitioned(runtime, transition, before)
        return transition

    def _transitioned(self, runtime: CameraRuntime, transition: Transition, before: frozenset[str]) -> None:
        reasons = ",".join(sorted(transition.reasons))
        if transition.old is transition.new:  # only the reasons changed: say which, not "degraded -> degraded"
            logger.info(
                "%s: still %s, reasons now %s (were %s)",
                runtime.config.id,
                transition.new.value,
                reasons,
                ",".join(sorted(before)),
            )
        else:
            logger.info("%s: %s -> %s %s", runtime.config.id, transition.old.value, transition.new.value, reasons)
        if self._on_transition is not None:
            self._on_transition(runtime, transition)

    async def poll_and_apply(self, runtime: CameraRuntime) -> None:
        if runtime.machine.state is CameraState.MAINTENANCE or runtime.busy:
            return
        runtime.busy = True
        try:
            observation = await self.poll(runtime)
        finally:
            runtime.busy = False
        self.apply(runtime, observation)

    async def round(self, on_done: Callable[[CameraRuntime], None] | None = None) -> None:
        """Poll every camera once, all at once (bounded), e.g. for `huxiao probe` or a bench."""

        async def one(runtime: CameraRuntime) -> None:
            await self.poll_and_apply(runtime)
            if on_done is not None:
                on_done(runtime)

        async with asyncio.TaskGroup() as group:
            for runtime in self.cameras.values():
                group.create_task(one(runtime))

    async def run(self) -> None:
        """Poll each camera every `interval`, first rounds spread over one interval so they do not all collide.

        Between rounds the timer also asks each failing camera's state machine whether its offline deadline has
        passed, so a camera whose poll hangs is reported offline on time, not when its hung poll finally gives up.
        """
        start = time.monotonic()
        for runtime in self.cameras.values():
            runtime.next_due = start + random.uniform(0, min(runtime.policy.interval, 2.0))
        # The group owns every poll in flight: a poll that raises is a bug that ends this part (the supervisor
        # logs, counts and restarts it); a cancelled part cancels its polls.
        async with asyncio.TaskGroup() as polls:
            while True:
                now = time.monotonic()
                for runtime in self.cameras.values():
                    if runtime.next_due <= now:
                        runtime.next_due = now + runtime.policy.interval
                        polls.create_task(self.poll_and_apply(runtime), name=f"poll {runtime.config.id}")
                self.expire_overdue()
                next_due = min((r.next_due for r in self.cameras.values()), default=now + 1.0)
                await asyncio.sleep(min(EXPIRE_EVERY_S, max(0.05, next_due - time.monotonic())))

    def expire_overdue(self) -> None:
        """Declare offline every camera whose offline deadline has passed while its poll is still out."""
        now = self._clock()
        for runtime in self.cameras.values():
            if runtime.machine.failures == 0 and not runtime.busy:
                continue
            before = runtime.machine.reasons
            runtime.machine, transition = expire(runtime.machine, now, runtime.policy, outstanding=runtime.busy)
            if transition is not None:
                self._transitioned(runtime, transition, before)

    def apply_pictures(self, runtime: CameraRuntime, reasons: frozenset[str]) -> Transition | None:
        """A patrol verdict, applied at once: the camera's next observation is its last one with these picture
        reasons (a patrol proves nothing about reachability, so an offline camera stays offline)."""
        runtime.picture_reasons = reasons
        if runtime.machine.state not in (CameraState.ONLINE, CameraState.DEGRADED) or runtime.last_observation is None:
            return None
        last = runtime.last_observation
        others = frozenset(r for r in last.reasons if not is_picture_reason(r))
        observation = Observation(at=self._clock(), reachable=True, reasons=others | reasons)
        return self.apply(runtime, observation)

    def set_maintenance(self, camera_id: str, on: bool) -> Transition | None:
        runtime = self.cameras[camera_id]
        observation = Observation(at=self._clock(), reachable=True, reasons=frozenset(), maintenance=on)
        return self.apply(runtime, observation)


def _secret(camera: CameraConfig) -> str:
    return camera.password.get_secret_value() if camera.password else ""
