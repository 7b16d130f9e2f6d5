"""Pictures for alarms: the linked cameras' ONVIF snapshot URIs, fetched with the cameras' own credentials
(Basic or digest, whichever the camera asks for), and a frame grabbed from the stream when the snapshot URI
gives none (no URI, a camera whose snapshot service is broken or refuses the password the stream takes)."""

from __future__ import annotations

import asyncio
import logging

from adapters.frame_grabber import FrameGrabber, encode_jpeg, safe_uri, with_credentials
from adapters.onvif.client import fetch_snapshot
from gateway.domain.errors import DeviceError
from gateway.services.camera_health import CameraHealth, CameraRuntime

logger = logging.getLogger(__name__)

# A snapshot that takes longer than this is not going to help the police with this alarm.
SNAPSHOT_TIMEOUT_S = 4.0
# The frame grab that stands in for it: a camera opens its stream within a second or two on a school LAN, and
# an alarm picture seconds late is still the picture of the scene.
GRAB_OPEN_TIMEOUT_S = 4.0
GRAB_READ_TIMEOUT_S = 3.0


class CameraSnapshots:
    """`SnapshotSource` over the cameras the health poller knows (their discovered or configured URIs)."""

    def __init__(self, health: CameraHealth) -> None:
        self._health = health

    async def snapshot(self, camera_id: str) -> bytes | None:
        """The snapshot URI's JPEG, else a frame from the stream as a JPEG, else None (both failures logged)."""
        runtime = self._health.cameras.get(camera_id)
        if runtime is None:
            return None
        jpeg = await self.from_snapshot_uri(runtime)
        if jpeg is None:
            jpeg = await self.from_stream(runtime)
        return jpeg

    async def from_snapshot_uri(self, runtime: CameraRuntime) -> bytes | None:
        if runtime.snapshot_uri is None:
            return None
        camera = runtime.config
        password = camera.password.get_secret_value() if camera.password else ""
        try:
            return await fetch_snapshot(
                self._health.session,
                camera.id,
                runtime.snapshot_uri,
                camera.username or "",
                password,
                SNAPSHOT_TIMEOUT_S,
            )
        except DeviceError as exc:
            logger.warning("%s: no snapshot from %s: %s", camera.id, safe_uri(runtime.snapshot_uri), exc.message)
            return None

    async def from_stream(self, runtime: CameraRuntime) -> bytes | None:
        if runtime.stream_uri is None:
            return None
        camera = runtime.config
        password = camera.password.get_secret_value() if camera.password else ""
        async with FrameGrabber(workers=1) as grabber:
            grab = await grabber.grab(
                camera.id,
                with_credentials(runtime.stream_uri, camera.username, password),
                frames=1,
                open_timeout_s=GRAB_OPEN_TIMEOUT_S,
                read_timeout_s=GRAB_READ_TIMEOUT_S,
            )
        if grab.latest is None:
            return None  # the grabber logged why
        logger.info("%s: alarm picture grabbed from the stream instead of the snapshot URI", camera.id)
        return await asyncio.to_thread(encode_jpeg, grab.latest)
