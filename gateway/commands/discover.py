"""`huxiao discover`: find ONVIF cameras with WS-Discovery and print config entries ready to paste."""

from __future__ import annotations

import asyncio
import re

from adapters.onvif.discovery import MULTICAST, DiscoveredCamera, discover
from gateway.domain.errors import GatewayError


def camera_yaml(cameras: list[DiscoveredCamera]) -> str:
    if not cameras:
        return "# no ONVIF camera answered (is this machine on the cameras' network? is multicast allowed?)\n"
    lines = [
        f"# {len(cameras)} camera(s) answered. Paste under `cameras:`, then give each a name people use,",
        "# its key area (entrance, gatehouse, perimeter...) and the password variable.",
        "cameras:",
    ]
    used: set[str] = set()
    for index, camera in enumerate(cameras, start=1):
        base = re.sub(r"[^A-Za-z0-9_.-]+", "-", camera.scope("name") or f"camera-{index}").strip("-") or "camera"
        camera_id = base
        while camera_id in used:
            camera_id = f"{base}-{index}"
        used.add(camera_id)
        model = camera.scope("hardware") or ""
        lines.append(
            f'  - {{id: {camera_id}, name: "{camera.scope("name") or camera_id}", area: "", '
            f'onvif: "{camera.xaddrs[0]}", username: admin, password: "${{CAM_PASSWORD}}"}}'
            + (f"  # {model}" if model else "")
        )
    return "\n".join(lines) + "\n"


def run_discover(timeout: float, target: str | None) -> int:
    address = MULTICAST
    bind = "0.0.0.0"
    if target:
        host, _, port = target.rpartition(":")
        if not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise GatewayError(f"--target {target}: expected host:port, e.g. 127.0.0.1:3702")
        address = (host, int(port))
        bind = "127.0.0.1" if host.startswith("127.") else "0.0.0.0"
    cameras = asyncio.run(discover(timeout, address, bind))
    print(camera_yaml(cameras), end="")
    return 0
