"""Camera health rounds for N simulated cameras (default 1,000): ONVIF probe + authenticated call + RTSP DESCRIBE.

The cameras run in a process of their own (simulators.onvif_camera), the RTSP streams in GStreamer's server; the
gateway's poller (gateway.services.camera_health) runs here. Printed side by side, measured in the same run:
- the cold round (first contact: media discovery included, as after a restart) and the warm rounds;
- the raw-aiohttp floor: the same two ONVIF POSTs per camera with fixed bodies and no parsing;
- plain `onvif-zeep` on a sample of the cameras, in its own virtualenv (bench/.venv-zeep, made on first use):
  client build per camera and its warm round per camera;
- resident memory per camera.

    .venv/bin/python bench/poll.py                 # 1,000 cameras
    .venv/bin/python bench/poll.py --cameras 200 --zeep-sample 20
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import aiohttp

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from adapters.onvif import soap as onvif_soap  # noqa: E402
from adapters.onvif.client import MediaInfo  # noqa: E402
from gateway.domain.camera import CameraState  # noqa: E402
from gateway.domain.config import CameraConfig, PollingConfig  # noqa: E402
from gateway.services.camera_health import CameraHealth  # noqa: E402
from simulators.onvif_camera import _raise_file_limit  # noqa: E402
from simulators.rtsp import PATTERNS, RtspServer  # noqa: E402

ZEEP_VENV = REPO / "bench" / ".venv-zeep"


def rss_mb() -> float:
    """Current resident memory of this process (from /proc: the peak would hide what one round adds)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def start_farm(count: int, rtsp_base: str) -> tuple[subprocess.Popen[str], list[int]]:
    """The cameras in a process of their own, on free ports it reports back."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "simulators.onvif_camera", "--count", str(count), "--rtsp-base", rtsp_base],
        cwd=REPO,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line.startswith("READY"):
        raise SystemExit("the camera farm did not start")
    return proc, [int(p) for p in proc.stdout.readline().split()[1].split(",")]


async def raw_floor(ports: list[int], session: aiohttp.ClientSession) -> float:
    """Two POSTs per camera with fixed bodies, no parsing: the least an HTTP round can cost here."""
    body = onvif_soap.SYSTEM_DATE_AND_TIME
    limit = asyncio.Semaphore(256)

    async def one(port: int) -> None:
        url = f"http://127.0.0.1:{port}/onvif/device_service"
        async with limit:
            for _ in range(2):
                async with session.post(url, data=body, headers={"Content-Type": onvif_soap.SOAP_CONTENT_TYPE}) as r:
                    await r.read()

    started = time.perf_counter()
    await asyncio.gather(*(one(p) for p in ports))
    return time.perf_counter() - started


def zeep_baseline(ports: list[int]) -> dict[str, float] | None:
    if not (ZEEP_VENV / "bin" / "python").exists():
        print(f"making {ZEEP_VENV} for the onvif-zeep baseline (once)...", file=sys.stderr)
        subprocess.run([sys.executable, "-m", "venv", str(ZEEP_VENV)], check=True)
        installed = subprocess.run([str(ZEEP_VENV / "bin" / "pip"), "install", "-q", "onvif-zeep"], check=False)
        if installed.returncode != 0:
            return None
    result = subprocess.run(
        [
            str(ZEEP_VENV / "bin" / "python"),
            str(REPO / "bench" / "_zeep_baseline.py"),
            "--ports",
            ",".join(str(p) for p in ports),
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=900,
    )
    if result.returncode != 0:
        print(result.stderr[-2000:], file=sys.stderr)
        return None
    return dict(json.loads(result.stdout.strip().splitlines()[-1]))


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cameras", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--zeep-sample", type=int, default=50, help="cameras polled by the onvif-zeep baseline")
    args = parser.parse_args()
    _raise_file_limit()
    streams = RtspServer()
    streams.start()
    farm, ports = start_farm(args.cameras, f"rtsp://127.0.0.1:{streams.port}")
    try:
        cameras = [
            CameraConfig(
                id=f"cam-{i:04d}",
                name=f"cam {i}",
                onvif=f"http://127.0.0.1:{port}/onvif/device_service",
                username="admin",
                password="admin123",
                rtsp=streams.url(PATTERNS[0]),
            )
            for i, port in enumerate(ports)
        ]
        polling = PollingConfig(interval=30.0, timeout=5.0, offline_after=3)
        connector = aiohttp.TCPConnector(limit=512, limit_per_host=0)
        async with aiohttp.ClientSession(connector=connector) as session:
            floor_s = statistics.median([await raw_floor(ports, session) for _ in range(3)])
            rss_before = rss_mb()
            health = CameraHealth(cameras, polling, session)
            started = time.perf_counter()
            await health.round()
            cold_s = time.perf_counter() - started
            online = sum(1 for r in health.cameras.values() if r.machine.state is CameraState.ONLINE)
            warm = []
            for _ in range(args.rounds):
                started = time.perf_counter()
                await health.round()
                warm.append(time.perf_counter() - started)
            rss_after = rss_mb()
        warm_s = statistics.median(warm)
        # The ONVIF part alone, to compare like with like against the floor and onvif-zeep (no RTSP there).
        onvif_rounds = []
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=512, limit_per_host=0)) as session:
            only = CameraHealth([c.model_copy(update={"rtsp": None}) for c in cameras], polling, session)
            await only.round()  # first contact
            for runtime in only.cameras.values():
                # Media known (the farm runs without streams): a warm round is then the probe and the auth call.
                runtime.media = MediaInfo((), None, None, runtime.config.onvif or "")
            for _ in range(args.rounds):
                started = time.perf_counter()
                await only.round()
                onvif_rounds.append(time.perf_counter() - started)
        onvif_warm_s = statistics.median(onvif_rounds)
    finally:
        streams.stop()
        zeep = zeep_baseline(ports[: min(args.zeep_sample, args.cameras)])
        farm.terminate()
        farm.wait()

    n = args.cameras
    print(f"\ncamera health round, {n} simulated cameras, 2 cores, loopback ({online}/{n} online after the cold round)")
    print(f"{'':58}{'round s':>10}{'ms/camera':>11}")
    print(f"{'cold round: probe + auth + media discovery + RTSP DESCRIBE':58}{cold_s:10.2f}{cold_s * 1000 / n:11.3f}")
    print(f"{'warm round: probe + auth + RTSP DESCRIBE (median)':58}{warm_s:10.2f}{warm_s * 1000 / n:11.3f}")
    print(
        f"{'warm round, ONVIF part only: probe + auth (median)':58}{onvif_warm_s:10.2f}{onvif_warm_s * 1000 / n:11.3f}"
    )
    print(f"{'raw-aiohttp floor: 2 fixed POSTs, no parsing (median)':58}{floor_s:10.2f}{floor_s * 1000 / n:11.3f}")
    print(f"\nwarm ONVIF round / raw floor: {onvif_warm_s / floor_s:.2f}× (target ≤ 1.5×)")
    print(f"memory: {(rss_after - rss_before) * 1024 / n:.1f} KB resident per camera beyond the base (target ≤ 30 KB)")
    onvif_ms = onvif_warm_s * 1000 / n
    if zeep:
        cold_zeep = zeep["build_ms_per_camera"] + zeep["round_ms_per_camera"]
        ours_cold = cold_s * 1000 / n
        print(
            f"\nplain onvif-zeep on {int(zeep['cameras'])} cameras: client build {zeep['build_ms_per_camera']:.1f} ms "
            f"and {zeep['mb_per_camera']:.2f} MB per camera, round {zeep['round_ms_per_camera']:.2f} ms per camera"
        )
        print(f"cold round vs onvif-zeep (build + first round): {cold_zeep / ours_cold:.0f}× faster (target ≥ 20×)")
        print(f"warm ONVIF round vs onvif-zeep round: {zeep['round_ms_per_camera'] / onvif_ms:.0f}× faster")
    else:
        print("\n(onvif-zeep baseline not available: could not install it into bench/.venv-zeep)")
    print(f"target: {n} cameras ≤ 5 s (aim ≤ 2 s) per round on 2 cores")


if __name__ == "__main__":
    asyncio.run(main())
