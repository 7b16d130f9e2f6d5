"""Camera health end to end: simulated ONVIF cameras and a real RTSP server, polled as the gateway polls them."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable, Iterator

import aiohttp
import pytest

from gateway.domain.camera import CameraState
from gateway.domain.config import CameraConfig, PollingConfig
from gateway.services.camera_health import CameraHealth, CameraRuntime
from monitoring.camera_state import Observation, Transition
from simulators.onvif_camera import CameraFarm
from simulators.rtsp import RtspServer

CAMERAS = 6


@pytest.fixture(scope="module")
def streams() -> Iterator[RtspServer]:
    with RtspServer({f"cam-{i:03d}": "moving" for i in range(1, CAMERAS + 1)}) as server:
        yield server


@pytest.fixture
async def farm(streams: RtspServer) -> AsyncIterator[CameraFarm]:
    async with CameraFarm(CAMERAS, rtsp_base=f"rtsp://127.0.0.1:{streams.port}") as running:
        yield running


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


def configs(farm: CameraFarm) -> list[CameraConfig]:
    return [
        CameraConfig(id=c.id, name=c.id, area="entrance", onvif=c.url, username="admin", password="admin123")
        for c in farm.cameras
    ]


class Transitions(list[Transition]):
    """Every transition seen, and an event to wait on for the next one."""

    def __init__(self) -> None:
        super().__init__()
        self.changed = asyncio.Event()

    async def until(self, condition: Callable[[], bool], timeout: float = 10.0) -> None:
        async with asyncio.timeout(timeout):
            while not condition():
                self.changed.clear()
                await self.changed.wait()


def health_of(farm: CameraFarm, http: aiohttp.ClientSession, **polling: float) -> tuple[CameraHealth, Transitions]:
    seen = Transitions()

    def remember(_: CameraRuntime, transition: Transition) -> None:
        seen.append(transition)
        seen.changed.set()

    settings = PollingConfig(**{"interval": 30.0, "timeout": 1.0, "offline_after": 2, **polling})
    return CameraHealth(configs(farm), settings, http, on_transition=remember), seen


async def test_healthy_cameras_come_online_with_stream_discovered_over_onvif(
    farm: CameraFarm, http: aiohttp.ClientSession
) -> None:
    health, transitions = health_of(farm, http)
    await health.round()
    for runtime in health.cameras.values():
        assert runtime.machine.state is CameraState.ONLINE, (runtime.config.id, runtime.machine, runtime.last_error)
        assert runtime.stream is not None
        assert (runtime.stream.codec, runtime.stream.width) == ("H264", 640)
        assert runtime.device_info is not None
        assert runtime.device_info.manufacturer == "Huxiao-Sim"
    assert len(transitions) == CAMERAS


async def test_each_fault_gives_its_state_and_reason(farm: CameraFarm, http: aiohttp.ClientSession) -> None:
    wrong_password, skewed, hanging, garbage, down, no_stream = farm.cameras
    wrong_password.password = "changed"
    skewed.clock_skew_s = 90.0
    hanging.hang = True
    garbage.garbage = True
    await farm.set_down(down, True)
    no_stream.rtsp_uri = no_stream.rtsp_uri.replace(no_stream.id, "nothing-here")  # type: ignore[union-attr]
    health, _ = health_of(farm, http)
    started = time.monotonic()
    await health.round()
    await health.round()
    elapsed = time.monotonic() - started
    state = {cid: (r.machine.state, r.machine.reasons) for cid, r in health.cameras.items()}
    # Without credentials the stream URI cannot be discovered: the password is the one reason to fix.
    assert state[wrong_password.id] == (CameraState.DEGRADED, frozenset({"auth_failed"}))
    assert state[skewed.id] == (CameraState.DEGRADED, frozenset({"clock_skew"}))
    assert state[hanging.id] == (CameraState.OFFLINE, frozenset({"timeout"}))
    assert state[garbage.id] == (CameraState.OFFLINE, frozenset({"protocol_error"}))
    assert state[down.id] == (CameraState.OFFLINE, frozenset({"unreachable"}))
    assert state[no_stream.id] == (CameraState.DEGRADED, frozenset({"stream_unreachable"}))
    # Two rounds with a camera hanging each time: two timeouts (1 s), nobody else waits.
    assert elapsed < 2 * 1.0 + 1.5, elapsed


async def test_offline_is_reported_within_interval_times_offline_after_plus_one_second(
    farm: CameraFarm, http: aiohttp.ClientSession
) -> None:
    health, transitions = health_of(farm, http, interval=0.5, timeout=0.3, offline_after=2)
    runner = asyncio.create_task(health.run())
    try:
        await transitions.until(lambda: all(r.machine.state is CameraState.ONLINE for r in health.cameras.values()))
        victim = farm.cameras[2]
        went_down = time.monotonic()
        await farm.set_down(victim, True)
        await transitions.until(lambda: health.cameras[victim.id].machine.state is CameraState.OFFLINE)
        assert time.monotonic() - went_down <= 0.5 * 2 + 1.0
        await farm.set_down(victim, False)
        await transitions.until(lambda: health.cameras[victim.id].machine.state is CameraState.ONLINE)
    finally:
        runner.cancel()
        await asyncio.gather(runner, return_exceptions=True)
    victim_changes = [t.new for t in transitions if t.at >= went_down - 1]
    assert CameraState.OFFLINE in victim_changes


async def test_a_camera_whose_poll_hangs_is_offline_on_time_not_when_the_poll_gives_up(
    farm: CameraFarm, http: aiohttp.ClientSession
) -> None:
    # The poll's own timeout (8 s) is far beyond interval × offline_after (1 s): only the between-rounds timer
    # (the state machine's `expire`) can report the camera on time.
    health, transitions = health_of(farm, http, interval=0.5, timeout=8.0, offline_after=2)
    runner = asyncio.create_task(health.run())
    try:
        await transitions.until(lambda: all(r.machine.state is CameraState.ONLINE for r in health.cameras.values()))
        victim = farm.cameras[3]
        victim.hang = True
        hung = time.monotonic()
        await transitions.until(lambda: health.cameras[victim.id].machine.state is CameraState.OFFLINE, timeout=6)
        assert time.monotonic() - hung <= 0.5 * 2 + 1.0
        assert health.cameras[victim.id].busy  # its poll is still out, waiting on the camera
    finally:
        victim.hang = False
        runner.cancel()
        await asyncio.gather(runner, return_exceptions=True)


async def test_maintenance_stops_polling_and_is_a_transition(farm: CameraFarm, http: aiohttp.ClientSession) -> None:
    health, transitions = health_of(farm, http)
    camera = farm.cameras[0]
    health.set_maintenance(camera.id, True)
    before = camera.requests
    await health.round()
    assert camera.requests == before
    assert health.cameras[camera.id].machine.state is CameraState.MAINTENANCE
    assert transitions[0].new is CameraState.MAINTENANCE


async def test_a_change_of_reasons_within_one_state_is_logged_as_such(
    farm: CameraFarm, http: aiohttp.ClientSession, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="gateway.services.camera_health")
    health, _seen = health_of(farm, http)
    runtime = health.cameras["cam-001"]
    now = time.time()
    health.apply(runtime, Observation(now, reachable=True, reasons=frozenset({"clock_skew"})))
    health.apply(runtime, Observation(now + 1, reachable=True, reasons=frozenset({"picture:too_dark"})))
    health.apply(runtime, Observation(now + 2, reachable=True, reasons=frozenset({"picture:too_dark"})))
    lines = [r.getMessage() for r in caplog.records]
    assert lines == [
        "cam-001: unknown -> degraded clock_skew",
        "cam-001: still degraded, reasons now picture:too_dark (were clock_skew)",
    ]
