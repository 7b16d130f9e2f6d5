"""The command center of `huxiao demo`: `huxiao center` on SQLite in the demo's workdir, a simulated city of a few
dozen schools' gateways reporting to it (simulators/city.py), and the demo school's own gateway as one more school
that reports there and sends its alarms there too. The duty token is made at start, for this run only.

    center = await start_demo_center(stack, workdir, broker_url)        # broker_url None: no Mosquitto
    document["upstreams"].append(center.upstream)                       # the demo school's gateway → the center
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import secrets
import socket
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from aiohttp import web

from center.app import create_center_app
from center.config import parse_center_config
from simulators.city import SimulatedSchool, city_schools, run_city

# The address the center's documentation uses; any free port when another program holds it.
CENTER_PORT = 9000
CITY_SCHOOLS = 36
CITY_SEED = 7
# Reports every 10 s instead of the field's 30 s, so that the city view fills within seconds of the start and a
# school that falls silent is called out (3 intervals) within a minute or two of the demo.
DEMO_REPORT_EVERY_S = 10.0


@dataclass
class DemoCenter:
    url: str
    duty_token: str
    config_path: Path
    schools: list[SimulatedSchool]
    upstream: dict[str, Any] = field(default_factory=dict)
    city: asyncio.Task[None] | None = None


def _listening_socket() -> socket.socket:
    """Bound before the config is written, so the file names the port the center really has (no race)."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(("127.0.0.1", CENTER_PORT))
    except OSError as exc:
        if exc.errno != errno.EADDRINUSE:
            sock.close()
            raise
        sock.bind(("127.0.0.1", 0))
    return sock


def center_document(
    workdir: Path,
    port: int,
    duty_token: str,
    city: list[SimulatedSchool],
    school: dict[str, str],
    broker_url: str | None,
) -> dict[str, Any]:
    """The demo center's `huxiao center` config: the demo school first, then the simulated city."""
    document: dict[str, Any] = {
        "center": {"listen": f"127.0.0.1:{port}", "public_url": f"http://127.0.0.1:{port}"},
        "storage": {"url": f"sqlite:///{(workdir / 'center.db').resolve()}"},
        "targets": {"networking_rate": 0.80, "compliant_share": 0.80},
        "schools": [school, *(s.center_entry() for s in city)],
        "web": {"tokens": {"duty": duty_token}},
    }
    if broker_url is not None:
        document["mqtt"] = {"url": broker_url, "topic": "huxiao/events", "share": "center"}
    return document


def gateway_upstream(center_url: str, secret: str, broker_url: str | None) -> dict[str, Any]:
    """The demo school's upstream to the center: over the broker as a city does (`mqtt`), else signed `http`."""
    common = {"name": "center", "role": "police", "reports": True, "report_every": f"{DEMO_REPORT_EVERY_S:g}s"}
    if broker_url is not None:
        return {**common, "kind": "mqtt", "url": broker_url, "topic": "huxiao/events"}
    return {**common, "kind": "http", "url": f"{center_url}/alarms", "secret": secret}


async def start_demo_center(
    stack: contextlib.AsyncExitStack, workdir: Path, school: dict[str, str], broker_url: str | None
) -> DemoCenter:
    """Start the center and the city on `stack` (stopped in reverse when it closes). `school` is the demo school's
    `schools:` entry ({id, name, district, secret})."""
    duty_token = secrets.token_urlsafe(12)
    city = city_schools(CITY_SCHOOLS, seed=CITY_SEED)
    sock = _listening_socket()
    stack.callback(sock.close)
    port = int(sock.getsockname()[1])
    url = f"http://127.0.0.1:{port}"
    document = center_document(workdir, port, duty_token, city, school, broker_url)
    config_path = workdir / "center.yaml"
    text = "# Written by `huxiao demo`: the demo's command center (the duty token is new at every start).\n"
    text += yaml.safe_dump(document, allow_unicode=True, sort_keys=False)
    await asyncio.to_thread(config_path.write_text, text, "utf-8")
    config = parse_center_config(text, str(config_path), env={})

    runner = web.AppRunner(create_center_app(config, instance="demo"), access_log=None, shutdown_timeout=1.0)
    await runner.setup()
    stack.push_async_callback(runner.cleanup)
    await web.SockSite(runner, sock).start()

    task = asyncio.create_task(run_city(url, city, report_every_s=DEMO_REPORT_EVERY_S, seed=CITY_SEED), name="city")
    stack.push_async_callback(_cancelled, task)
    upstream = gateway_upstream(url, school["secret"], broker_url)
    return DemoCenter(url, duty_token, config_path, city, upstream, task)


async def _cancelled(task: asyncio.Task[None]) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


def center_banner(center: DemoCenter) -> str:
    """The banner's lines for the center: where the console is and the token to acknowledge with."""
    base = center.url
    return "\n".join(
        [
            f"  指挥中心 command center   {base}/   (console: live alarms, city view, hazards)",
            f"  值班令牌 duty token       {center.duty_token}   (paste it into the console to acknowledge)",
            f"  城市 city                 {base}/api/city   {base}/api/schools   {base}/api/city.csv",
            f"  {len(center.schools)} simulated schools report to it every {DEMO_REPORT_EVERY_S:g} s, and so does this"
            f" school ({'over MQTT' if center.upstream.get('kind') == 'mqtt' else 'over HTTP'});"
            f" config {center.config_path}",
        ]
    )
