"""The whole gateway as one GB/T 28181 device: it registers with the platform, its camera channels are ON as the
cameras are, a button's press arrives as an Alarm, and the platform plays a camera through it: the PS it receives
is read by FFmpeg's own demuxer."""

from __future__ import annotations

import asyncio
import json
import subprocess
from pathlib import Path

from aiohttp.test_utils import TestServer

from adapters.gb28181.channels import button_ids, camera_ids
from gateway.app import create_app
from gateway.domain.config import parse_config
from simulators.broker import MosquittoBroker
from simulators.buttons import SimulatedButton
from simulators.gb_platform import GbPlatform
from simulators.rtsp import RtspServer
from tests.fixtures.mosquitto import broker
from tests.fixtures.rtsp import rtsp_server
from tests.fixtures.waiting import eventually

__all__ = ["broker", "rtsp_server"]
SCHOOL = "51040200001"
DEVICE = "51040200001180000001"


def ffprobe(path: Path) -> dict[str, object]:
    result = subprocess.run(
        ["ffprobe", "-v", "error", "-f", "mpeg", "-count_frames", "-show_streams", "-of", "json", str(path)],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    (stream,) = json.loads(result.stdout)["streams"]
    return dict(stream)


async def test_the_gateway_on_a_gb_platform_reports_channels_raises_alarms_and_plays_a_camera(
    tmp_path: Path, broker: MosquittoBroker, rtsp_server: RtspServer
) -> None:
    async with GbPlatform(workdir=tmp_path, password="gb-secret") as platform:
        document = {
            "school": {"id": SCHOOL, "name": "攀枝花市第一小学"},
            "storage": {"path": str(tmp_path / "gw.db")},
            "mqtt": {"url": broker.url, "client_id": "gw-gb"},
            "polling": {"interval": "1s", "timeout": "2s"},
            "patrol": {"interval": "1h", "open_timeout": "60s"},
            "cameras": [
                {"id": "gate-1", "name": "校门口", "rtsp": rtsp_server.url("moving")},
                {"id": "dead-1", "name": "围墙", "rtsp": "rtsp://127.0.0.1:9/none"},
            ],
            "buttons": [{"id": "guard-room", "name": "门卫室一键报警"}],
            "upstreams": [
                {
                    "name": "police-gb",
                    "kind": "gb28181",
                    "server": platform.server_uri,
                    "device_id": DEVICE,
                    "password": "gb-secret",
                    "local": "127.0.0.1:0",
                    "keepalive": "5s",
                }
            ],
            "web": {"listen": "127.0.0.1:0"},
        }
        config = parse_config(json.dumps(document), env={})
        gb = config.upstreams[0]
        cameras = camera_ids(DEVICE, config.cameras)
        buttons = button_ids(DEVICE, config.buttons)
        server = TestServer(create_app(config), host="127.0.0.1")
        await server.start_server()
        try:
            await eventually(lambda: platform.online(DEVICE), timeout=10, what="registered")
            record = platform.devices[DEVICE]
            # Camera channels follow the health poller: the working camera turns ON (a NOTIFY), the dead one not.
            await eventually(lambda: (cameras["gate-1"], "ON") in record.catalog_events, timeout=15, what="ON")
            await platform.query(DEVICE, "Catalog")
            await eventually(lambda: bool(record.complete_catalogs), what="catalog")
            status = {item.id: item.status for item in record.catalog()}
            assert status[cameras["dead-1"]] == "OFF"
            assert status[buttons["guard-room"]] == "ON"

            button = SimulatedButton("guard-room", broker.port, school_id=SCHOOL)
            await asyncio.to_thread(button.connect)
            try:
                button.press()
                await eventually(lambda: bool(record.alarms), timeout=10, what="alarm")
            finally:
                button.disconnect()
            alarm = record.alarms[0]
            assert (alarm.device_id, alarm.text("AlarmPriority"), alarm.text("AlarmMethod")) == (
                buttons["guard-room"],
                "1",
                "2",
            )

            play = await platform.invite(DEVICE, cameras["gate-1"], "udp")
            await eventually(lambda: play.packets >= 60, timeout=15, what="RTP packets")
            assert play.ssrcs == {play.ssrc}
            await platform.bye(DEVICE, play)
            stream = await asyncio.to_thread(ffprobe, play.out)
            assert (stream["codec_name"], stream["width"], stream["height"]) == ("h264", 640, 360)
            assert int(str(stream["nb_read_frames"])) >= 3
        finally:
            await server.close()
        assert gb.name == "police-gb"
