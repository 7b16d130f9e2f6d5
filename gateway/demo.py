"""`huxiao demo`: a simulated school on localhost — cameras, streams, buttons, a broker, two platforms — and the
gateway watching it, with embedded defaults (SQLite, a local Mosquitto); a command center with a simulated city
around it (gateway/demo_center.py). Ctrl-C stops everything.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import shutil
import signal
import socket
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from aiohttp import web

from adapters.gb28181.channels import camera_ids
from gateway.app import create_app
from gateway.demo_center import center_banner, start_demo_center
from gateway.domain.config import parse_config
from gateway.domain.errors import GatewayError
from simulators.broker import MosquittoBroker, find_mosquitto
from simulators.buttons import SimulatedButton
from simulators.gb_platform import GbPlatform
from simulators.gb_platform_console import GbPlatformConsole
from simulators.onvif_camera import CameraFarm
from simulators.platform import PlatformReceiver
from simulators.rtsp import RtspServer, check_gstreamer
from simulators.ws_discovery_responder import start_responder

logger = logging.getLogger(__name__)

SCHOOL_ID = "51040200001"
SCHOOL_NAME = "攀枝花市第一小学（演示）"
DEMO_SECRET = "demo-only-secret"
# Faults staged on purpose, so the page has something to show.
SWITCHED_OFF = "switched off"
PASSWORD_CHANGED = "someone changed its password"
# Twelve cameras of a primary school: (id, name, key area, stream pattern, the fault staged on it or "").
CAMERAS = [
    ("gate-1", "南门校门口", "entrance", "moving", ""),
    ("gate-2", "北门校门口", "entrance", "moving", ""),
    ("guard", "门卫室", "gatehouse", "moving", ""),
    ("playground", "操场", "playground", "moving", ""),
    ("corridor-1", "一楼走廊", "corridor", "moving", ""),
    ("corridor-2", "二楼走廊", "corridor", "too_dark", "its picture is too dark"),
    ("canteen", "食堂", "canteen", "moving", ""),
    ("dorm", "宿舍楼", "dormitory", "moving", ""),
    ("library", "图书馆", "library", "moving", ""),
    ("parking", "停车场", "parking", "moving", ""),
    ("fence-east", "东侧围墙", "perimeter", "moving", SWITCHED_OFF),
    ("fence-west", "西侧围墙", "perimeter", "moving", PASSWORD_CHANGED),
]
BUTTONS = [
    ("guard-room", "门卫室一键报警", "南门门卫室", ["gate-1", "guard"]),
    ("office", "行政楼一键报警", "行政楼一楼", ["corridor-1"]),
    ("kindergarten", "幼儿园一键报警", "幼儿园大厅", ["playground"]),
]
BUTTON_HEARTBEAT_S = 20.0
# The gateway as a GB/T 28181 device on the simulated police video platform (the ids of DESIGN.md's example).
GB_PLATFORM_ID = "34020000002000000001"
GB_DEVICE_ID = "51040200001180000001"
GB_WATCH_CAMERA = "gate-1"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def demo_config(
    workdir: Path,
    farm: CameraFarm,
    broker_url: str,
    rtsp_port: int | None,
    platforms: dict[str, str],
    web_port: int,
    *,
    more_upstreams: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """The demo school's config, with every section of the file format filled in."""
    cameras = []
    for (cid, name, area, _pattern, _fault), sim in zip(CAMERAS, farm.cameras, strict=True):
        camera: dict[str, Any] = {
            "id": cid,
            "name": name,
            "area": area,
            "onvif": sim.url,
            "username": "admin",
            "password": "${CAM_PASSWORD:-admin123}",
        }
        if rtsp_port is None:
            camera["snapshot"] = f"{sim.base}/onvif/snapshot.jpg"
        cameras.append(camera)
    return {
        "school": {
            "id": SCHOOL_ID,
            "name": SCHOOL_NAME,
            "district": "东区",
            "students": 1200,
            "guards": 3,
        },
        "storage": {"path": str(workdir / "huxiao.db")},
        "targets": {"networking_rate": 0.80},
        "mqtt": {"url": broker_url, "topic_prefix": "huxiao", "keepalive": "30s"},
        "polling": {"interval": "10s", "timeout": "3s", "offline_after": 3, "refresh_media": "6h"},
        "patrol": {"interval": "10m", "busy_interval": "2m", "workers": 4, "open_timeout": "5s", "read_timeout": "5s"},
        "cameras": cameras,
        "buttons": [
            {
                "id": bid,
                "name": name,
                "location": place,
                "profile": "huxiao",
                "cameras": cams,
                "heartbeat_timeout": "90s",
            }
            for bid, name, place, cams in BUTTONS
        ],
        "upstreams": [
            {
                "name": "police",
                "kind": "http",
                "role": "police",
                "url": platforms["police"],
                "secret": "${POLICE_SECRET:-" + DEMO_SECRET + "}",
            },
            {
                "name": "education",
                "kind": "http",
                "role": "education",
                "url": platforms["education"],
                "secret": "${EDU_SECRET:-" + DEMO_SECRET + "}",
            },
            *(more_upstreams or []),
        ],
        "web": {"listen": f"127.0.0.1:{web_port}"},
    }


async def _demo(workdir: Path, web_port: int, ready: asyncio.Event | None) -> None:
    await asyncio.to_thread(workdir.mkdir, parents=True, exist_ok=True)
    async with contextlib.AsyncExitStack() as stack:
        broker_url = "mqtt://127.0.0.1:1883"
        broker: MosquittoBroker | None = None
        if find_mosquitto() is None:
            print(
                "! mosquitto is not installed: buttons are left out of the demo."
                " Install it with: sudo apt-get install mosquitto (./dev demo does it when run as root)"
            )
        else:
            broker = MosquittoBroker(workdir / "broker")
            await asyncio.to_thread(broker.start)
            stack.callback(broker.stop)
            broker_url = broker.url

        rtsp: RtspServer | None = None
        problem = check_gstreamer()
        if problem:
            print(f"! {problem}: cameras are simulated without video streams")
        else:
            rtsp = RtspServer({cid: pattern for cid, _n, _a, pattern, _f in CAMERAS}, log=workdir / "rtsp.log")
            await asyncio.to_thread(rtsp.start)
            stack.callback(rtsp.stop)

        rtsp_base = f"rtsp://127.0.0.1:{rtsp.port}" if rtsp else None
        farm = await stack.enter_async_context(CameraFarm(0, rtsp_base=rtsp_base))
        for cid, *_ in CAMERAS:
            await farm.add_camera(cid)
        for cid, *_, fault in CAMERAS:
            if fault == SWITCHED_OFF:
                await farm.set_down(farm.camera(cid), True)
            elif fault == PASSWORD_CHANGED:
                farm.camera(cid).password = "changed-by-someone"
        discovery, discovery_port = await start_responder(farm)
        stack.callback(discovery.close)

        platforms: dict[str, str] = {}
        receivers: dict[str, PlatformReceiver] = {}
        for name in ("police", "education"):
            receiver = PlatformReceiver(secret=DEMO_SECRET)
            runner = web.AppRunner(receiver.app(), access_log=None)
            await runner.setup()
            port = _free_port()
            await web.TCPSite(runner, "127.0.0.1", port).start()
            stack.push_async_callback(runner.cleanup)
            platforms[name], receivers[name] = f"http://127.0.0.1:{port}/alarms", receiver

        school = {"id": SCHOOL_ID, "name": SCHOOL_NAME, "district": "东区", "secret": DEMO_SECRET}
        center = await start_demo_center(stack, workdir, school, broker.url if broker else None)
        gb = await start_gb_platform(stack, workdir)
        document = demo_config(
            workdir,
            farm,
            broker_url,
            rtsp.port if rtsp else None,
            platforms,
            web_port or _free_port(),
            more_upstreams=[gb_upstream(gb)],
        )
        document["upstreams"].append(center.upstream)
        config_path = workdir / "school.yaml"
        config_path.write_text(
            "# Written by `huxiao demo`: the simulated school's configuration.\n"
            + yaml.safe_dump(document, allow_unicode=True, sort_keys=False),
            encoding="utf-8",
        )
        config = parse_config(config_path.read_text(encoding="utf-8"), str(config_path))
        gb.console.channels = camera_ids(GB_DEVICE_ID, config.cameras)

        buttons: list[SimulatedButton] = []
        # Registered before the gateway, so run after it on the way out: the gateway stops first, and the buttons'
        # goodbyes are not reported to the police as buttons going offline.
        stack.callback(_disconnect_all, buttons)
        gateway = web.AppRunner(create_app(config), access_log=None)
        await gateway.setup()
        stack.push_async_callback(gateway.cleanup)
        await web.TCPSite(gateway, config.web.host, config.web.port).start()

        if broker is not None:
            for bid, *_ in BUTTONS:
                button = SimulatedButton(bid, broker.port, school_id=SCHOOL_ID)
                await asyncio.to_thread(button.connect)
                buttons.append(button)
            buttons[0].press("test")  # the monthly test, so the page has an alarm to show

        print(
            banner(
                config.web.listen,
                config.school.name,
                workdir,
                platforms["police"],
                discovery_port,
                buttons,
                [*([gb_watch_line(gb, workdir)] if rtsp else []), center_banner(center)],
            ),
            flush=True,
        )
        if ready is not None:
            ready.set()
        while True:
            await asyncio.sleep(BUTTON_HEARTBEAT_S)
            for button in buttons:
                button.heartbeat()


@dataclass(frozen=True, slots=True)
class GbDemo:
    """The simulated GB/T 28181 police video platform and its console (where `huxiao watch` asks for video)."""

    platform: GbPlatform
    console: GbPlatformConsole
    console_url: str


async def start_gb_platform(stack: contextlib.AsyncExitStack, workdir: Path) -> GbDemo:
    """The platform on a free 127.0.0.1 port (SIP over UDP), its console on another; stopped with the stack,
    after the gateway (which unregisters on its way out)."""
    scratch = workdir / "gb-platform"
    await asyncio.to_thread(scratch.mkdir, parents=True, exist_ok=True)
    platform = await stack.enter_async_context(GbPlatform(GB_PLATFORM_ID, DEMO_SECRET, workdir=scratch))
    console = GbPlatformConsole(platform, GB_DEVICE_ID)
    runner = web.AppRunner(console.app(), access_log=None)
    await runner.setup()
    port = _free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    stack.push_async_callback(runner.cleanup)
    return GbDemo(platform, console, f"http://127.0.0.1:{port}")


def gb_upstream(gb: GbDemo) -> dict[str, Any]:
    """The `gb28181` upstream to the simulated platform, every key shown."""
    return {
        "name": "police-gb",
        "kind": "gb28181",
        "role": "police",
        "server": gb.platform.server_uri,
        "device_id": GB_DEVICE_ID,
        "password": "${GB_PASSWORD:-" + DEMO_SECRET + "}",
        "transport": "udp",
        "local": "127.0.0.1:0",
        "expires": "3600s",
        "keepalive": "60s",
        "keepalive_misses": 3,
        "charset": "GB2312",
    }


def gb_watch_line(gb: GbDemo, workdir: Path) -> str:
    """The banner's line: have the police platform play a camera through the gateway, saved as a .ps file."""
    out = workdir / f"{GB_WATCH_CAMERA}.ps"
    command = f"{_huxiao()} watch --platform {gb.console_url} {GB_WATCH_CAMERA} --out {out}"
    return f"  看视频 live video (GB/T 28181)  {command}"


def _huxiao() -> str:
    # The console script is on PATH only inside an activated virtualenv: otherwise name the one that runs now.
    return "huxiao" if shutil.which("huxiao") else f"{sys.executable} -m gateway"


def banner(
    listen: str,
    school: str,
    workdir: Path,
    police: str,
    discovery_port: int,
    buttons: list[SimulatedButton],
    sections: Sequence[str] = (),
) -> str:
    """What a new user needs to try every part: the addresses, how to press a button, how to discover."""
    base = f"http://{listen}"
    huxiao = _huxiao()
    faults = [(cid, fault) for cid, *_, fault in CAMERAS if fault]
    staged = "; ".join(f"{cid}: {fault}" for cid, fault in faults)
    lines = [
        "",
        f"护校网关演示 huxiao-gateway demo — {school}",
        f"  状态页 status page       {base}/",
        f"  API                      {base}/api/summary   {base}/api/cameras   {base}/api/alarms",
        f"  接口说明 API description  {base}/api/openapi.json",
        f"  健康 health              {base}/healthz",
        f"  Prometheus               {base}/metrics",
        f"  公安平台 police platform  {police}  (GET lists what arrived)",
        f"  配置 config               {workdir / 'school.yaml'}",
        f"  {len(CAMERAS)} cameras, {len(faults)} of them faulty on purpose ({staged}); {len(buttons)} buttons.",
    ]
    if buttons:
        lines.append("  按报警按钮 press a button (in another terminal; type panic, test or cancel):")
        lines += [f"    {huxiao} press --workdir {workdir} {b.button_id} panic" for b in buttons]
    else:
        lines.append("  (no buttons: mosquitto is not installed)")
    lines += [
        "  发现摄像机 discover the cameras:",
        f"    {huxiao} discover --target 127.0.0.1:{discovery_port}",
        *sections,
        "  Press Ctrl-C to stop.",
        "",
    ]
    return "\n".join(lines)


def _disconnect_all(buttons: list[SimulatedButton]) -> None:
    for button in buttons:
        button.disconnect()


def run_demo(workdir: Path, web_port: int) -> int:
    """Run until Ctrl-C or SIGTERM; everything the demo started is stopped on the way out."""

    async def main() -> None:
        task = asyncio.ensure_future(_demo(workdir, web_port, None))
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, task.cancel)
        with contextlib.suppress(asyncio.CancelledError):
            await task

    try:
        asyncio.run(main())
    except GatewayError as exc:
        print(f"huxiao demo: {exc}")
        return 1
    except OSError as exc:
        if exc.errno != errno.EADDRINUSE:
            raise
        # Taken between the command line's check and the demo's bind.
        print(f"huxiao demo: port {web_port} is already in use; pick another with --port (0: any free port)")
        return 1
    print("demo stopped")
    return 0
