"""What the camera benches share: the simulated camera farm, the raw-aiohttp floor, timed rounds and the plain
`onvif-zeep` baseline in a virtualenv of its own."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import TypeVar

import aiohttp

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from adapters.onvif import soap as onvif_soap  # noqa: E402

ZEEP_VENV = REPO / "bench" / ".venv-zeep"
# Requests in flight at once: enough to keep both cores busy, few enough that no camera waits behind a queue long
# enough to hit its timeout. The gateway's poller allows the same (camera_health.MAX_CONCURRENT_POLLS).
DEFAULT_CONCURRENCY = 256
# onvif-zeep polls 50 cameras with WSDL parsing per client: minutes on a loaded 2-core machine, not hours.
ZEEP_TIMEOUT_S = 900
# Placeholder stream base for a farm whose streams nobody asks for (the ONVIF-only bench).
NO_STREAMS = "rtsp://127.0.0.1:8554"

T = TypeVar("T")


def start_farm(count: int, rtsp_base: str = NO_STREAMS) -> tuple[subprocess.Popen[str], list[int]]:
    """`count` simulated ONVIF cameras in a process of their own, on free ports it reports back."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "simulators.onvif_camera", "--count", str(count), "--rtsp-base", rtsp_base],
        cwd=REPO,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line.startswith("READY"):
        proc.kill()
        raise SystemExit("the camera farm did not start")
    return proc, [int(p) for p in proc.stdout.readline().split()[1].split(",")]


def cpu_s(pid: int | None) -> float:
    """User + system CPU seconds a process has used so far (0 when it is gone): to see which side of a round
    the time goes to, the gateway's or the simulated cameras'."""
    if pid is None:
        return 0.0
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    # Fields 14 and 15 of proc(5), utime and stime, counted from after the command name.
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def device_url(port: int) -> str:
    return f"http://127.0.0.1:{port}/onvif/device_service"


async def timed_round(items: Sequence[T], one: Callable[[T], Awaitable[None]], concurrency: int) -> float:
    """Seconds for `one` over all items at once, at most `concurrency` in flight."""
    limit = asyncio.Semaphore(concurrency)

    async def bounded(item: T) -> None:
        async with limit:
            await one(item)

    started = time.perf_counter()
    async with asyncio.TaskGroup() as group:
        for item in items:
            group.create_task(bounded(item))
    return time.perf_counter() - started


async def floor_round(session: aiohttp.ClientSession, urls: Sequence[str], concurrency: int) -> float:
    """The raw-aiohttp floor: two POSTs per camera with a fixed body and no parsing, the least an ONVIF round of
    probe + auth call can cost here."""
    body = onvif_soap.SYSTEM_DATE_AND_TIME
    headers = {"Content-Type": onvif_soap.SOAP_CONTENT_TYPE}

    async def one(url: str) -> None:
        for _ in range(2):
            async with session.post(url, data=body, headers=headers) as response:
                await response.read()

    return await timed_round(urls, one, concurrency)


def zeep_baseline(ports: Sequence[int]) -> dict[str, float] | None:
    """Run bench/_zeep_baseline.py in its own venv (made here on first use) against the same cameras."""
    python = ZEEP_VENV / "bin" / "python"
    if not python.exists():
        print(f"making {ZEEP_VENV} for the onvif-zeep baseline (once)...", file=sys.stderr)
        subprocess.run([sys.executable, "-m", "venv", str(ZEEP_VENV)], check=True)
    check = subprocess.run([str(python), "-c", "import onvif, zeep"], capture_output=True, check=False)
    if check.returncode != 0:
        installed = subprocess.run([str(python), "-m", "pip", "install", "-q", "onvif-zeep"], check=False)
        if installed.returncode != 0:
            return None
    result = subprocess.run(
        [str(python), str(REPO / "bench" / "_zeep_baseline.py"), "--ports", ",".join(str(p) for p in ports)],
        capture_output=True,
        text=True,
        check=False,
        timeout=ZEEP_TIMEOUT_S,
    )
    if result.returncode != 0:
        print(result.stderr[-2000:], file=sys.stderr)
        return None
    return dict(json.loads(result.stdout.strip().splitlines()[-1]))
