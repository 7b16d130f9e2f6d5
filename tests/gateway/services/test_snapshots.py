"""Alarm pictures: the snapshot URI's JPEG (Basic or digest, from lighttpd), and a frame from the RTSP stream
when the snapshot URI fails or is missing."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import cv2
import numpy as np
import pytest

from adapters.frame_grabber import Frame
from gateway.domain.config import CameraConfig, PollingConfig
from gateway.services.camera_health import CameraHealth
from gateway.services.snapshots import CameraSnapshots
from simulators.rtsp import RtspServer
from tests.fixtures.lighttpd import PASSWORD, USER, SnapshotServer, lighttpd
from tests.fixtures.ports import free_port
from tests.fixtures.rtsp import rtsp_server

__all__ = ["lighttpd", "rtsp_server"]


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


def decoded(jpeg: bytes | None) -> Frame:
    assert jpeg is not None
    frame = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
    assert frame is not None
    return np.asarray(frame)


async def test_a_basic_auth_snapshot_is_the_alarm_picture(
    lighttpd: SnapshotServer, rtsp_server: RtspServer, http: aiohttp.ClientSession
) -> None:
    camera = CameraConfig(
        id="gate-1",
        name="gate",
        rtsp=rtsp_server.url("moving"),
        snapshot=lighttpd.url("basic"),
        username=USER,
        password=PASSWORD,
    )
    snapshots = CameraSnapshots(CameraHealth([camera], PollingConfig(), http))
    assert await snapshots.snapshot("gate-1") == lighttpd.jpeg


@pytest.mark.parametrize("broken", ["wrong password", "nothing listening"])
async def test_a_failed_snapshot_falls_back_to_a_frame_from_the_stream(
    lighttpd: SnapshotServer, rtsp_server: RtspServer, http: aiohttp.ClientSession, broken: str
) -> None:
    snapshot = lighttpd.url("digest-md5") if broken == "wrong password" else f"http://127.0.0.1:{free_port()}/snap.jpg"
    camera = CameraConfig(
        id="gate-1", name="gate", rtsp=rtsp_server.url("moving"), snapshot=snapshot, username=USER, password="not-it"
    )
    snapshots = CameraSnapshots(CameraHealth([camera], PollingConfig(), http))
    frame = decoded(await snapshots.snapshot("gate-1"))
    assert frame.shape == (360, 640, 3)  # the simulator's picture, not lighttpd's
    assert frame.std() > 20  # the test card, not a blank


async def test_no_snapshot_uri_and_no_stream_is_no_picture(http: aiohttp.ClientSession) -> None:
    camera = CameraConfig(id="hall", name="hall", rtsp=f"rtsp://127.0.0.1:{free_port()}/none")
    snapshots = CameraSnapshots(CameraHealth([camera], PollingConfig(), http))
    assert await snapshots.snapshot("hall") is None
    assert await snapshots.snapshot("unknown") is None
