"""The live-video relay: camera RTSP in, GB/T 28181 MPEG-PS over RTP out, one pull per camera for all its viewers.

Each camera watched gets one `RtspPlayer`; its RTP becomes access units (`Depacketizer`) and each frame is muxed
to PS once (`PsMuxer`), whatever the number of viewers. Every viewer has its own packetizer (its own SSRC and
continuous sequence numbers), its own sender and a bounded queue of PS frames. The relay keeps the current GOP
(the frames since the last key frame), so a new viewer starts at once on that key frame instead of waiting for the
camera's next one.

A slow viewer never holds up the camera or the other viewers: when its queue is full, its queued frames are dropped
and it resumes at the next key frame (a half GOP would only show as corrupt pictures), and the drop is logged and
counted. A camera that dies mid-play ends all its sessions (`ended` set, so the device sends BYE); a viewer whose
platform goes away ends alone. The last viewer's stop closes the pull (RTSP TEARDOWN).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

from adapters.gb28181.live import MediaOffer, MediaTransport, PlaySession
from adapters.gb28181.ps import PsMuxer
from adapters.gb28181.rtp import RtpPacketizer, RtpSender, TcpSender, UdpSender
from adapters.rtsp.depacketize import Depacketizer
from adapters.rtsp.session import RtspPlayer
from gateway.domain.errors import DeviceError, DeviceProtocolError, DeviceTimeout, GatewayError
from gateway.services.supervisor import TaskSet

logger = logging.getLogger(__name__)

# The platform's play timeout is 10 s; the camera must be playing well before, and a cold RTSP open takes ~100 ms.
OPEN_TIMEOUT_S = 5.0
# Frames a viewer may lag behind: 2 s at 25 fps (the simulator's 5 fps gives 10 s). Beyond that it is too slow
# to be live and is resynchronised at the next key frame.
VIEWER_QUEUE_FRAMES = 50
# A GOP longer than this many frames is not kept whole (a camera with key frames minutes apart): the cache then
# holds its start and a new viewer waits for the next key frame.
MAX_GOP_FRAMES = 300


@dataclass(frozen=True, slots=True)
class CameraStream:
    """Where a camera's video is: its RTSP URI and credentials."""

    uri: str
    username: str | None = None
    password: str | None = None


# camera id → its stream, or None for a camera the gateway does not know. Injected by the composition root.
StreamLookup = Callable[[str], Awaitable[CameraStream | None]]


@dataclass(frozen=True, slots=True)
class PsFrame:
    """One frame muxed to PS, shared by every viewer; `timestamp` is the camera's 90 kHz RTP timestamp."""

    timestamp: int
    payload: bytes
    key: bool


@dataclass(slots=True)
class _Pull:
    camera_id: str
    playing: asyncio.Event = field(default_factory=asyncio.Event)
    done: asyncio.Event = field(default_factory=asyncio.Event)
    error: GatewayError | None = None
    gop: list[PsFrame] = field(default_factory=list)
    sessions: set[RelaySession] = field(default_factory=set)
    task: asyncio.Task[None] | None = None
    frames: int = 0
    frames_lost: int = 0


@dataclass(frozen=True, slots=True)
class PullStats:
    """One camera's pull: frames relayed, frames dropped for a lost RTP packet from the camera, viewers."""

    frames: int
    frames_lost: int
    viewers: int


class RelaySession:
    """One viewer (implements `PlaySession`)."""

    def __init__(self, relay: LiveVideoRelay, pull: _Pull, offer: MediaOffer, sender: RtpSender) -> None:
        self.offer = offer
        self._relay = relay
        self._pull = pull
        self._sender = sender
        self._packetizer = RtpPacketizer(offer.ssrc, offer.payload_type)
        self._queue: asyncio.Queue[PsFrame] = asyncio.Queue(relay.viewer_queue_frames)
        self._ended = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._waiting_for_key = True
        self._stopped = False
        self.frames_sent = 0
        self.overflows = 0

    @property
    def local_port(self) -> int:
        return self._sender.local_port

    @property
    def ended(self) -> asyncio.Event:
        return self._ended

    async def start(self) -> None:
        if self._task is not None or self._stopped:
            return
        if self._pull.done.is_set():
            self._ended.set()
            return
        for frame in self._pull.gop:  # the current GOP: the first picture is its key frame
            self.offer_frame(frame)
        self._task = self._relay._spawn(self._send_loop(), f"live-{self.offer.camera_id}-{self.offer.ssrc}")

    def offer_frame(self, frame: PsFrame) -> None:
        """Called by the pull for each frame; never waits (a slow viewer must not stall the camera)."""
        if self._ended.is_set():
            return  # the platform is gone; the device's BYE and stop() follow
        if self._waiting_for_key:
            if not frame.key:
                return
            self._waiting_for_key = False
        try:
            self._queue.put_nowait(frame)
        except asyncio.QueueFull:
            self.overflows += 1
            while not self._queue.empty():
                self._queue.get_nowait()
            self._waiting_for_key = True
            logger.warning(
                "%s: viewer %s:%d too slow, %d frames dropped; resuming at the next key frame",
                self.offer.channel_id,
                self.offer.host,
                self.offer.port,
                self._queue.maxsize,
            )

    async def _send_loop(self) -> None:
        try:
            while True:
                frame = await self._queue.get()
                await self._sender.send(self._packetizer.packets(frame.payload, frame.timestamp))
                self.frames_sent += 1
        except GatewayError as exc:
            logger.warning(
                "%s: live video to %s:%d ended: %s", self.offer.channel_id, self.offer.host, self.offer.port, exc
            )
            self._ended.set()

    def camera_gone(self) -> None:
        self._ended.set()
        if self._task is not None:
            self._task.cancel()

    async def stop(self) -> None:
        if self._stopped:
            return
        self._stopped = True
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.wait({task})  # waits without taking on the task's CancelledError as ours
        await self._sender.close()
        await self._relay._release(self._pull, self)


class LiveVideoRelay:
    """Implements `LiveVideo`. Use as `async with LiveVideoRelay(lookup) as relay:`; its tasks (one pull per camera,
    one sender per viewer) are owned by a TaskGroup of its own, or, in the gateway, by the supervisor's `tasks`, so
    that a bug in one pull is logged and counted there instead of cancelling whoever entered the relay."""

    def __init__(
        self,
        lookup: StreamLookup,
        *,
        bind_host: str = "0.0.0.0",
        rtsp_timeout: float = 5.0,
        viewer_queue_frames: int = VIEWER_QUEUE_FRAMES,
        tasks: TaskSet | None = None,
    ) -> None:
        self._lookup = lookup
        self._owner = tasks
        self.viewer_queue_frames = viewer_queue_frames
        self._bind_host = bind_host
        self._rtsp_timeout = rtsp_timeout
        self._pulls: dict[str, _Pull] = {}
        self._tasks: asyncio.TaskGroup | None = None
        self._running = False
        self.pulls_started = 0  # RTSP pulls opened since the start: one per camera however many viewers

    async def __aenter__(self) -> LiveVideoRelay:
        if self._owner is None:
            self._tasks = asyncio.TaskGroup()
            await self._tasks.__aenter__()
        self._running = True
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        for pull in list(self._pulls.values()):
            for session in list(pull.sessions):
                await session.stop()
            if pull.task is not None:
                pull.task.cancel()
        self._running = False
        if self._tasks is not None:
            await self._tasks.__aexit__(exc_type, exc, tb)
        else:
            pulls = [p.task for p in self._pulls.values() if p.task is not None]
            if pulls:
                await asyncio.wait(pulls, timeout=3.0)

    def _spawn(self, work: Coroutine[Any, Any, None], name: str) -> asyncio.Task[None]:
        if not self._running:
            work.close()
            raise GatewayError("the live-video relay is not running")
        if self._owner is not None:
            task: asyncio.Task[None] = self._owner.spawn("live-video", work)
            return task
        assert self._tasks is not None
        return self._tasks.create_task(work, name=name)

    @property
    def pulls(self) -> int:
        """Cameras being pulled right now."""
        return len(self._pulls)

    def stats(self) -> dict[str, PullStats]:
        """Each camera being pulled, by id."""
        return {cid: PullStats(p.frames, p.frames_lost, len(p.sessions)) for cid, p in self._pulls.items()}

    async def open(self, offer: MediaOffer) -> PlaySession:
        sender = await self._open_sender(offer)
        try:
            pull = await self._pull_for(offer.camera_id)
        except BaseException:
            await sender.close()
            raise
        session = RelaySession(self, pull, offer, sender)
        pull.sessions.add(session)
        try:
            await self._wait_playing(pull)
        except BaseException:
            await session.stop()
            raise
        return session

    async def _pull_for(self, camera_id: str) -> _Pull:
        """The camera's running pull, or a new one."""
        pull = self._pulls.get(camera_id)
        if pull is not None and not pull.done.is_set():
            return pull
        stream = await self._lookup(camera_id)
        if stream is None:
            raise DeviceError(camera_id, "no such camera for live video")
        pull = self._pulls.get(camera_id)  # another viewer may have started it while we looked it up
        if pull is not None and not pull.done.is_set():
            return pull
        pull = _Pull(camera_id)
        self._pulls[camera_id] = pull
        self.pulls_started += 1
        pull.task = self._spawn(self._run_pull(pull, stream), f"pull-{camera_id}")
        return pull

    async def _open_sender(self, offer: MediaOffer) -> RtpSender:
        device = offer.channel_id
        if offer.transport is MediaTransport.UDP:
            return await UdpSender.open(device, self._bind_host, offer.host, offer.port)
        if offer.transport is MediaTransport.TCP_PASSIVE:
            return await TcpSender.connect(device, self._bind_host, offer.host, offer.port)
        return await TcpSender.listen(device, self._bind_host)

    async def _wait_playing(self, pull: _Pull) -> None:
        playing = asyncio.ensure_future(pull.playing.wait())
        done = asyncio.ensure_future(pull.done.wait())
        try:
            async with asyncio.timeout(OPEN_TIMEOUT_S):
                await asyncio.wait({playing, done}, return_when=asyncio.FIRST_COMPLETED)
        except TimeoutError:
            raise DeviceTimeout(pull.camera_id, f"live video: camera not playing within {OPEN_TIMEOUT_S:g} s") from None
        finally:
            playing.cancel()
            done.cancel()
        if not pull.playing.is_set():
            raise pull.error or DeviceError(pull.camera_id, "live video: the camera stream ended")

    async def _run_pull(self, pull: _Pull, stream: CameraStream) -> None:
        try:
            async with RtspPlayer(
                pull.camera_id, stream.uri, stream.username, stream.password, timeout=self._rtsp_timeout
            ) as player:
                video = player.video
                assert video is not None
                assert video.codec is not None
                depacketizer = Depacketizer(video.codec, video.parameter_sets)
                muxer = PsMuxer(video.codec)
                pull.playing.set()
                async for packet in player.packets():
                    for unit in depacketizer.push(packet):
                        frame = PsFrame(unit.timestamp, muxer.mux(unit.data, unit.timestamp, unit.key), unit.key)
                        self._keep(pull, frame)
                        pull.frames += 1
                        for session in list(pull.sessions):
                            session.offer_frame(frame)
                    pull.frames_lost = depacketizer.dropped
        except GatewayError as exc:
            pull.error = exc
            logger.warning("%s: live video pull ended: %s", pull.camera_id, exc)
        except ValueError as exc:  # a codec the muxer has no stream type for
            pull.error = DeviceProtocolError(pull.camera_id, str(exc))
        finally:
            pull.done.set()
            if self._pulls.get(pull.camera_id) is pull:
                del self._pulls[pull.camera_id]
            for session in list(pull.sessions):
                session.camera_gone()

    @staticmethod
    def _keep(pull: _Pull, frame: PsFrame) -> None:
        if frame.key:
            pull.gop = [frame]
        elif pull.gop and len(pull.gop) < MAX_GOP_FRAMES:
            pull.gop.append(frame)

    async def _release(self, pull: _Pull, session: RelaySession) -> None:
        pull.sessions.discard(session)
        if pull.sessions or pull.task is None:
            return
        if self._pulls.get(pull.camera_id) is pull:
            del self._pulls[pull.camera_id]
        task, pull.task = pull.task, None
        task.cancel()
        await asyncio.wait({task})  # the player's TEARDOWN runs as the task unwinds
        logger.info("%s: last viewer gone, RTSP pull closed", pull.camera_id)
