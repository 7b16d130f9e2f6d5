"""Video patrol against the real GStreamer RTSP server: every fault pattern gets its verdict, the report is
written, a hanging stream costs only its timeout, and verdicts reach the camera's state."""

from __future__ import annotations

import asyncio
import contextlib
import csv
import json
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from gateway.commands.patrol import patrol_once
from gateway.domain.camera import CameraState
from gateway.domain.config import CameraConfig, PatrolConfig, PollingConfig, parse_config
from gateway.services.camera_health import CameraHealth
from gateway.services.patrol import Patrol, in_busy_hours, with_credentials
from gateway.services.status import Pictures
from simulators.onvif_camera import CameraFarm
from simulators.rtsp import PATTERNS, RtspServer
from tests.fixtures.paths import REPO
from tests.fixtures.ports import free_port
from tests.fixtures.rtsp import RTSP_PASSWORD, rtsp_server
from tests.fixtures.waiting import eventually

__all__ = ["rtsp_server"]


@pytest.fixture
async def silent_stream() -> AsyncIterator[str]:
    """An RTSP port that accepts and never answers."""

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while await reader.read(65536):
            pass
        writer.close()

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    yield f"rtsp://127.0.0.1:{server.sockets[0].getsockname()[1]}/hang"
    server.close()
    await server.wait_closed()


def cameras_for(server: RtspServer, extra: dict[str, str] | None = None) -> list[CameraConfig]:
    streams = {pattern: server.url(pattern) for pattern in PATTERNS}
    streams.update(extra or {})
    return [CameraConfig(id=name.replace("_", "-"), name=name, rtsp=url) for name, url in streams.items()]


async def test_each_pattern_gets_its_verdict_and_a_hanging_stream_blocks_nothing(
    rtsp_server: RtspServer, silent_stream: str
) -> None:
    cameras = cameras_for(rtsp_server, {"hanging": silent_stream})
    config = PatrolConfig(open_timeout=2.0, read_timeout=2.0, workers=len(cameras))
    async with aiohttp.ClientSession() as session:
        health = CameraHealth(cameras, PollingConfig(timeout=1.0, offline_after=1), session)
        await health.round()
        pictures = Pictures()
        started = time.monotonic()
        results = await Patrol(health, pictures, config).round()
        elapsed = time.monotonic() - started
    verdicts = {r.name: r.verdict for r in results}
    assert verdicts == {**{p: ("ok" if p == "moving" else p) for p in PATTERNS}, "hanging": "no_signal"}
    # The hanging stream costs its own timeouts (open 2 s + a read 2 s + slack), no more, and holds up no other.
    assert elapsed < 2.0 + 2.0 * 2 + 2.0 + 2.0 + 3.0, elapsed
    assert set(pictures.thumbnails) == {c.id for c in cameras} - {"hanging"}


async def test_picture_faults_reach_the_camera_state_at_once_and_stay(rtsp_server: RtspServer) -> None:
    cameras = [CameraConfig(id="hall", name="大厅", rtsp=rtsp_server.url("black"))]
    async with aiohttp.ClientSession() as session:
        health = CameraHealth(cameras, PollingConfig(timeout=2.0), session)
        await health.round()
        before = health.cameras["hall"].machine.state
        await Patrol(health, Pictures(), PatrolConfig()).round()
        # No health round in between: staff see the black picture as soon as the patrol does.
        at_once = health.cameras["hall"].machine
        await health.round()
        later = health.cameras["hall"].machine
    assert (before, at_once.state, at_once.reasons) == (
        CameraState.ONLINE,
        CameraState.DEGRADED,
        frozenset({"picture:black"}),
    )
    assert (later.state, later.reasons) == (CameraState.DEGRADED, frozenset({"picture:black"}))


async def test_patrol_command_writes_the_report(rtsp_server: RtspServer, tmp_path: Path) -> None:
    document = {
        "school": {"id": "51040200001", "name": "攀枝花市第一小学"},
        "cameras": [
            {
                "id": "gate-1",
                "name": "校门口",
                "area": "entrance",
                "rtsp": rtsp_server.url("moving", auth=True),
                "username": "admin",
                "password": RTSP_PASSWORD,
            },
            {"id": "hall", "name": "大厅", "rtsp": rtsp_server.url("covered")},
        ],
    }
    config = parse_config(json.dumps(document), env={})
    index, counts = await patrol_once(config, tmp_path / "report")
    report = json.loads((tmp_path / "report" / "patrol.json").read_text(encoding="utf-8"))
    # Why a camera got another verdict (a failed grab says what failed) goes into the message.
    assert counts == {"ok": 1, "covered": 1}, [(r["camera"], r["verdict"], r["reason"], r["error"]) for r in report]
    page = index.read_text(encoding="utf-8")
    assert "视频巡查报告" in page
    assert "镜头遮挡" in page
    assert [(r["camera"], r["verdict"]) for r in report] == [("gate-1", "ok"), ("hall", "covered")]
    assert all(set(r) >= {"camera", "verdict", "checks", "thumbnail"} for r in report)
    assert (tmp_path / "report" / report[0]["thumbnail"]).read_bytes().startswith(b"\xff\xd8")
    with (tmp_path / "report" / "patrol.csv").open(encoding="utf-8-sig") as rows:
        assert [row["verdict_zh"] for row in csv.DictReader(rows)] == ["正常", "镜头遮挡"]
    assert RTSP_PASSWORD not in page
    assert RTSP_PASSWORD not in (tmp_path / "report" / "patrol.json").read_text(encoding="utf-8")


def test_credentials_go_into_the_uri_for_opencv_only_when_missing() -> None:
    assert with_credentials("rtsp://127.0.0.1/a", "ad min", "p@ss") == "rtsp://ad%20min:p%40ss@127.0.0.1/a"
    assert with_credentials("rtsp://u:p@127.0.0.1/a", "x", "y") == "rtsp://u:p@127.0.0.1/a"
    assert with_credentials("rtsp://127.0.0.1/a", None, "") == "rtsp://127.0.0.1/a"


def test_busy_hours() -> None:
    from datetime import datetime

    spans = ["07:00-08:30", "16:00-18:00"]
    assert in_busy_hours(datetime(2026, 11, 30, 7, 45), spans)
    assert not in_busy_hours(datetime(2026, 11, 30, 8, 30), spans)
    assert not in_busy_hours(datetime(2026, 11, 30, 12, 0), spans)


async def test_patrol_command_prints_no_opencv_warning_and_says_why_a_camera_has_no_picture(
    rtsp_server: RtspServer, tmp_path: Path
) -> None:
    auth = rtsp_server.url("moving", auth=True)
    cameras = [
        {
            "id": "gate-1",
            "name": "校门口",
            "area": "entrance",
            "rtsp": auth,
            "username": "admin",
            "password": RTSP_PASSWORD,
        },
        {"id": "gate-2", "name": "北门", "area": "entrance", "rtsp": auth, "username": "admin", "password": "wrong"},
        {"id": "yard", "name": "操场", "area": "playground", "rtsp": f"rtsp://127.0.0.1:{free_port()}/none"},
    ]
    cameras += [{"id": f"hall-{i}", "name": f"大厅 {i}", "rtsp": rtsp_server.url("still")} for i in range(5)]
    document = {"school": {"id": "51040200001", "name": "攀枝花市第一小学"}, "cameras": cameras}
    config = tmp_path / "school.yaml"
    config.write_text(json.dumps(document, ensure_ascii=False), encoding="utf-8")
    out = tmp_path / "report"
    command = [sys.executable, "-m", "gateway", "patrol", "-c", str(config), "--out", str(out)]
    done = await asyncio.to_thread(
        subprocess.run, command, capture_output=True, text=True, timeout=120, cwd=REPO, check=False
    )
    assert done.returncode == 0, done.stderr
    assert "WARN" not in done.stderr + done.stdout  # OpenCV's OPENCV_FFMPEG_IS_THREAD_SAFE line, once per open
    report = {r["camera"]: r for r in json.loads((out / "patrol.json").read_text(encoding="utf-8"))}
    assert report["gate-1"]["verdict"] == "ok"
    assert report["gate-1"]["reason"] is None
    assert (report["gate-2"]["verdict"], report["gate-2"]["reason"]) == ("no_signal", "auth_failed")
    assert (report["yard"]["verdict"], report["yard"]["reason"]) == ("no_signal", "unreachable")
    page = (out / "index.html").read_text(encoding="utf-8")
    assert "密码错误 wrong password" in page
    assert "无法连接 unreachable" in page
    assert "校门 entrance" in page
    assert "操场 playground" in page
    with (out / "patrol.csv").open(encoding="utf-8-sig") as rows:
        by_camera = {row["camera"]: row for row in csv.DictReader(rows)}
    assert (by_camera["gate-2"]["reason_zh"], by_camera["yard"]["area_zh"]) == ("密码错误", "操场")
    assert RTSP_PASSWORD not in page


@contextlib.asynccontextmanager
async def patrolling(camera: CameraConfig) -> AsyncIterator[tuple[CameraHealth, Pictures, Patrol]]:
    """Health polls every 0.5 s and the patrol's schedule (rounds an hour apart) running for one camera."""
    async with aiohttp.ClientSession() as session:
        health = CameraHealth([camera], PollingConfig(interval=0.5, timeout=1.0, offline_after=1), session)
        pictures = Pictures()
        patrol = Patrol(health, pictures, PatrolConfig(interval=3600.0, open_timeout=1.0))
        tasks = [asyncio.create_task(health.run()), asyncio.create_task(patrol.run())]
        try:
            await eventually(lambda: bool(patrol.last_round), timeout=10, what="the first round")
            yield health, pictures, patrol
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)


async def test_a_camera_out_of_reach_at_the_round_gets_its_picture_as_soon_as_it_is_back(
    rtsp_server: RtspServer,
) -> None:
    """The stream URI comes from ONVIF: a camera still starting (or switched off) when the round runs has none
    yet. It is checked alone once it answers, not at the next round ten minutes later."""
    async with CameraFarm(rtsp_base=rtsp_server.url("moving").rsplit("/", 1)[0]) as farm:
        simulated = await farm.add_camera("moving")
        await farm.set_down(simulated, True)
        camera = CameraConfig(id="moving", name="大门", onvif=simulated.url, username="admin", password="admin123")
        async with patrolling(camera) as (_health, pictures, patrol):
            assert [(r.verdict, r.reason) for r in patrol.last_round] == [("no_signal", "no_stream")]
            assert "moving" not in pictures.thumbnails
            await farm.set_down(simulated, False)
            await eventually(lambda: "moving" in pictures.thumbnails, timeout=10, what="a thumbnail")
            assert pictures.quality["moving"]["verdict"] == "ok"


async def test_a_camera_whose_stream_comes_back_gets_its_picture_before_the_next_round() -> None:
    """The camera answers ONVIF but its stream is down at the round (no picture); once the stream answers again,
    it is checked at once, not an hour later."""
    server = RtspServer({"gate": "moving"})
    server.start()
    url = server.url("gate")
    server.stop()  # down, its port kept for the restart
    try:
        async with CameraFarm() as farm:
            simulated = await farm.add_camera("gate-1")
            camera = CameraConfig(
                id="gate-1", name="大门", onvif=simulated.url, username="admin", password="admin123", rtsp=url
            )
            async with patrolling(camera) as (health, pictures, patrol):
                assert [r.verdict for r in patrol.last_round] == ["no_signal"]
                assert health.cameras["gate-1"].machine.state is CameraState.DEGRADED
                await asyncio.to_thread(server.start)
                await eventually(lambda: "gate-1" in pictures.thumbnails, timeout=15, what="a thumbnail")
                assert pictures.quality["gate-1"]["verdict"] == "ok"
    finally:
        server.stop()
