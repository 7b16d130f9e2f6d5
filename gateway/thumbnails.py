"""Recent thumbnails of every working camera, from its ONVIF snapshot URI: what patrol staff look at first."""

from __future__ import annotations

import asyncio
import logging

import cv2
import numpy as np

from gateway.camera_health import CameraHealth
from gateway.snapshots import CameraSnapshots
from gateway.status import Pictures
from monitoring.camera_state import CameraState

logger = logging.getLogger(__name__)

THUMBNAIL_WIDTH = 320
# Snapshots fetched at once: cameras serve them slowly and a school's uplink is small.
CONCURRENT_SNAPSHOTS = 8
# The first pictures a few seconds after start, once the first health round has found the snapshot URIs.
FIRST_ROUND_AFTER_S = 3.0


def thumbnail(jpeg: bytes, width: int = THUMBNAIL_WIDTH) -> bytes | None:
    """A small JPEG of a camera picture (None if the bytes are not a picture)."""
    picture = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
    if picture is None:
        return None
    height = max(1, round(picture.shape[0] * width / picture.shape[1]))
    small = cv2.resize(picture, (width, height), interpolation=cv2.INTER_AREA)
    ok, encoded = cv2.imencode(".jpg", small, [cv2.IMWRITE_JPEG_QUALITY, 75])
    return bytes(encoded.tobytes()) if ok else None


class Thumbnails:
    def __init__(self, health: CameraHealth, pictures: Pictures, every_s: float) -> None:
        self._health = health
        self._snapshots = CameraSnapshots(health)
        self._pictures = pictures
        self._every_s = every_s
        self._limit = asyncio.Semaphore(CONCURRENT_SNAPSHOTS)

    async def refresh(self) -> int:
        """Fetch a thumbnail of every camera that is up; returns how many were refreshed."""
        working = [
            cid
            for cid, runtime in self._health.cameras.items()
            if runtime.machine.state in (CameraState.ONLINE, CameraState.DEGRADED) and runtime.snapshot_uri
        ]
        results = await asyncio.gather(*(self._one(cid) for cid in working))
        return sum(results)

    async def _one(self, camera_id: str) -> bool:
        async with self._limit:
            jpeg = await self._snapshots.snapshot(camera_id)
        if jpeg is None:
            return False
        small = await asyncio.to_thread(thumbnail, jpeg)
        if small is None:
            logger.warning("%s: snapshot is not a picture", camera_id)
            return False
        self._pictures.thumbnails[camera_id] = small
        return True

    async def run(self) -> None:
        await asyncio.sleep(FIRST_ROUND_AFTER_S)
        while True:
            await self.refresh()
            await asyncio.sleep(self._every_s)
