"""Pictures for alarms: the linked cameras' ONVIF snapshot URIs, fetched with the cameras' own credentials."""

from __future__ import annotations

import logging

from adapters.onvif.client import fetch_snapshot
from gateway.domain.errors import DeviceError
from gateway.services.camera_health import CameraHealth

logger = logging.getLogger(__name__)

# A snapshot that takes longer than this is not going to help the police with this alarm.
SNAPSHOT_TIMEOUT_S = 4.0


class CameraSnapshots:
    """`SnapshotSource` over the cameras the health poller knows (their discovered or configured snapshot URI)."""

    def __init__(self, health: CameraHealth) -> None:
        self._health = health

    async def snapshot(self, camera_id: str) -> bytes | None:
        runtime = self._health.cameras.get(camera_id)
        if runtime is None or runtime.snapshot_uri is None:
            return None
        camera = runtime.config
        password = camera.password.get_secret_value() if camera.password else ""
        try:
            return await fetch_snapshot(
                self._health.session,
                camera_id,
                runtime.snapshot_uri,
                camera.username or "",
                password,
                SNAPSHOT_TIMEOUT_S,
            )
        except DeviceError as exc:
            logger.warning("%s: no snapshot for the alarm: %s", camera_id, exc.message)
            return None
