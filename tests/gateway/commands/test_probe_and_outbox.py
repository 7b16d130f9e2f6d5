"""`huxiao probe` and `huxiao outbox` as an installer reads them."""

from __future__ import annotations

import contextlib
import json
import os
import pty
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway.commands.outbox import outbox_report
from gateway.commands.probe import probe_round, render_table
from gateway.domain.config import parse_config
from gateway.services.outbox import Outbox
from simulators.onvif_camera import CameraFarm
from simulators.rtsp import RtspServer
from tests.fixtures.paths import REPO
from tests.fixtures.ports import free_port


@pytest.fixture(scope="module")
def streams() -> Iterator[RtspServer]:
    with RtspServer({f"cam-{i:03d}": "moving" for i in range(1, 4)}) as server:
        yield server


async def test_probe_round_reports_each_camera_and_the_rate(streams: RtspServer) -> None:
    async with CameraFarm(3, rtsp_base=f"rtsp://127.0.0.1:{streams.port}") as farm:
        await farm.set_down(farm.cameras[2], True)
        cameras = [
            {"id": c.id, "name": f"摄像机{i}", "onvif": c.url, "username": "admin", "password": "admin123"}
            for i, c in enumerate(farm.cameras)
        ]
        config = parse_config(json.dumps({"school": {"id": "51040200001", "name": "一小"}, "cameras": cameras}), env={})
        rows, rate = await probe_round(config, None)
    states = {r["id"]: (r["state"], r["stream"]) for r in rows}
    assert states == {
        "cam-001": ("online", "H264 640x360"),
        "cam-002": ("online", "H264 640x360"),
        "cam-003": ("offline", None),
    }
    assert rate == pytest.approx(2 / 3)
    table = render_table(rows, rate, 0.8)
    assert "66.7%" in table
    assert "未达标 below target" in table
    assert "摄像机2" in table


def test_probe_cli_exits_1_below_target_with_json(tmp_path: Path) -> None:
    config = tmp_path / "school.yaml"
    config.write_text(
        'school: {id: "51040200001", name: 一小}\n'
        f'cameras:\n  - {{id: dead, name: 坏的, onvif: "http://127.0.0.1:{free_port()}/onvif/device_service"}}\n',
        encoding="utf-8",
    )
    result = subprocess.run(
        [sys.executable, "-m", "gateway", "probe", "-c", str(config), "--json"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO,
        check=False,
    )
    assert result.returncode == 1, result.stderr
    report = json.loads(result.stdout)
    assert report["cameras"][0]["state"] == "offline"
    assert report["cameras"][0]["reasons"] == ["unreachable"]
    assert report["networking_rate"] == 0.0


def test_probe_draws_no_progress_bar_into_a_pipe_or_a_file(tmp_path: Path) -> None:
    config = tmp_path / "school.yaml"
    config.write_text(
        'school: {id: "51040200001", name: 一小}\n'
        f'cameras:\n  - {{id: dead, name: 坏的, onvif: "http://127.0.0.1:{free_port()}/onvif/device_service"}}\n',
        encoding="utf-8",
    )
    result = subprocess.run(
        [sys.executable, "-m", "gateway", "probe", "-c", str(config)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO,
        check=False,
    )
    assert result.returncode == 1
    assert "坏的" in result.stdout  # the table still comes
    assert "probing [" not in result.stderr
    assert "\r" not in result.stderr


def test_probe_draws_its_progress_bar_on_a_terminal(tmp_path: Path) -> None:
    config = tmp_path / "school.yaml"
    config.write_text(
        'school: {id: "51040200001", name: 一小}\n'
        f'cameras:\n  - {{id: dead, name: 坏的, onvif: "http://127.0.0.1:{free_port()}/onvif/device_service"}}\n',
        encoding="utf-8",
    )
    controller, terminal = pty.openpty()
    try:
        result = subprocess.run(
            [sys.executable, "-m", "gateway", "probe", "-c", str(config)],
            stdout=subprocess.PIPE,
            stderr=terminal,
            timeout=60,
            cwd=REPO,
            check=False,
        )
        os.close(terminal)
        drawn = b""
        with contextlib.suppress(OSError):  # reading past the end of a closed terminal raises EIO
            while chunk := os.read(controller, 4096):
                drawn += chunk
    finally:
        os.close(controller)
    assert result.returncode == 1
    assert b"probing [" in drawn
    assert b"1/1" in drawn


def test_outbox_report_counts_pending_and_delivered(tmp_path: Path) -> None:
    path = tmp_path / "gw.db"
    assert "no database yet" in outbox_report(path)
    outbox = Outbox(path, ["police", "education"])
    for n in range(3):
        event = outbox.store(f"e{n}", "cn.huxiao.alarm.panic", "b1", f"p{n}", lambda seq: b"{}")
        assert event is not None
        outbox.mark_delivered("police", event.seq, 1)
    outbox.mark_failed("education", 1, 4, 0.0, "HTTP 503")
    outbox.close()
    report = outbox_report(path)
    lines = report.splitlines()
    # Chinese first in the headers and the states, as on the page.
    headers = "上级平台 upstream|状态 state|事件 events|最早 oldest|尝试 attempts|最近错误 last error"
    assert [h.strip() for h in lines[0].split("  ") if h.strip()] == headers.split("|")
    delivered = next(line for line in lines if line.startswith("police "))
    assert delivered.split() == ["police", "已送达", "delivered", "3", "1"]
    pending = next(line for line in lines if line.startswith("education "))
    assert pending.split()[:4] == ["education", "待送", "pending", "3"]
    assert pending.endswith("HTTP 503")
