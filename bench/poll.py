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
import statistics
import time

import aiohttp
from _farm import DEFAULT_CONCURRENCY, cpu_s, device_url, floor_round, start_farm, zeep_baseline
from _memory import rss_mb

from adapters.onvif.client import MediaInfo
from gateway.domain.camera import CameraState
from gateway.domain.config import CameraConfig, PollingConfig
from gateway.services.camera_health import CameraHealth
from simulators.onvif_camera import _raise_file_limit
from simulators.rtsp import PATTERNS, RtspServer


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cameras", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--zeep-sample", type=int, default=50, help="cameras polled by the onvif-zeep baseline")
    parser.add_argument(
        "--loop",
        choices=["asyncio", "uvloop"],
        default="asyncio",
        help="event loop for the gateway's side (uvloop: pip install uvloop; the gateway runs asyncio's)",
    )
    return parser.parse_args()


async def main(args: argparse.Namespace) -> None:
    _raise_file_limit()
    streams = RtspServer()
    streams.start()
    farm, ports = start_farm(args.cameras, f"rtsp://127.0.0.1:{streams.port}")
    try:
        cameras = [
            CameraConfig(
                id=f"cam-{i:04d}",
                name=f"cam {i}",
                onvif=device_url(port),
                username="admin",
                password="admin123",
                rtsp=streams.url(PATTERNS[0]),
            )
            for i, port in enumerate(ports)
        ]
        polling = PollingConfig(interval=30.0, timeout=5.0, offline_after=3)
        connector = aiohttp.TCPConnector(limit=512, limit_per_host=0)
        async with aiohttp.ClientSession(connector=connector) as session:
            rss_before = rss_mb()
            health = CameraHealth(cameras, polling, session)
            others = (farm.pid, streams.pid)
            started, cpu_started, others_started = time.perf_counter(), time.process_time(), [cpu_s(p) for p in others]
            await health.round()
            cold_s, cold_cpu_s = time.perf_counter() - started, time.process_time() - cpu_started
            cold_others = [cpu_s(p) - before for p, before in zip(others, others_started, strict=True)]
            online = sum(1 for r in health.cameras.values() if r.machine.state is CameraState.ONLINE)
            warm, warm_cpu = [], []
            others_started = [cpu_s(p) for p in others]
            for _ in range(args.rounds):
                started, cpu_started = time.perf_counter(), time.process_time()
                await health.round()
                warm.append(time.perf_counter() - started)
                warm_cpu.append(time.process_time() - cpu_started)
            warm_others = [(cpu_s(p) - before) / args.rounds for p, before in zip(others, others_started, strict=True)]
            rss_after = rss_mb()
        warm_s = statistics.median(warm)
        # The ONVIF part alone, to compare like with like against the floor and onvif-zeep (no RTSP there). Its
        # warm rounds alternate with the floor's on one session, so both see the same machine load and connections.
        onvif_rounds, floor_rounds = [], []
        urls = [device_url(port) for port in ports]
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=512, limit_per_host=0)) as session:
            only = CameraHealth([c.model_copy(update={"rtsp": None}) for c in cameras], polling, session)
            await only.round()  # first contact
            await floor_round(session, urls, DEFAULT_CONCURRENCY)  # the floor's first round opens no connections
            for runtime in only.cameras.values():
                # Media known (the farm runs without streams): a warm round is then the probe and the auth call.
                runtime.media = MediaInfo((), None, None, runtime.config.onvif or "")
            onvif_cpu, floor_cpu = [], []
            for _ in range(args.rounds):
                started, cpu_started = time.perf_counter(), time.process_time()
                await only.round()
                onvif_rounds.append(time.perf_counter() - started)
                onvif_cpu.append(time.process_time() - cpu_started)
                cpu_started = time.process_time()
                floor_rounds.append(await floor_round(session, urls, DEFAULT_CONCURRENCY))
                floor_cpu.append(time.process_time() - cpu_started)
        onvif_warm_s = statistics.median(onvif_rounds)
        floor_s = statistics.median(floor_rounds)
    finally:
        streams.stop()
        zeep = zeep_baseline(ports[: min(args.zeep_sample, args.cameras)])
        farm.terminate()
        farm.wait()

    n = args.cameras
    print(
        f"\ncamera health round, {n} simulated cameras, 2 cores, loopback, {args.loop} event loop "
        f"({online}/{n} online after the cold round)"
    )
    # CPU: this process's own time (the gateway's side), which other engineers' load on the machine inflates less
    # than the wall clock.
    warm_cpu_s = statistics.median(warm_cpu)
    print(f"{'':58}{'round s':>10}{'ms/camera':>11}{'CPU ms/camera':>15}")
    cold_label = "cold round: probe + auth + media discovery + RTSP DESCRIBE"
    print(f"{cold_label:58}{cold_s:10.2f}{cold_s * 1000 / n:11.3f}{cold_cpu_s * 1000 / n:15.3f}")
    warm_label = "warm round: probe + auth + RTSP DESCRIBE (median)"
    print(f"{warm_label:58}{warm_s:10.2f}{warm_s * 1000 / n:11.3f}{warm_cpu_s * 1000 / n:15.3f}")
    print(
        f"{'warm round, ONVIF part only: probe + auth (median)':58}{onvif_warm_s:10.2f}{onvif_warm_s * 1000 / n:11.3f}"
    )
    print(f"{'raw-aiohttp floor: 2 fixed POSTs, no parsing (median)':58}{floor_s:10.2f}{floor_s * 1000 / n:11.3f}")
    print(
        "CPU ms per camera, cold / warm round: gateway "
        f"{cold_cpu_s * 1000 / n:.2f} / {warm_cpu_s * 1000 / n:.2f}, camera farm "
        f"{cold_others[0] * 1000 / n:.2f} / {warm_others[0] * 1000 / n:.2f}, RTSP server "
        f"{cold_others[1] * 1000 / n:.2f} / {warm_others[1] * 1000 / n:.2f}"
    )
    cpu_ratio = statistics.median(onvif_cpu) / max(statistics.median(floor_cpu), 1e-9)
    print(
        f"\nwarm ONVIF round / raw floor: {onvif_warm_s / floor_s:.2f}× wall clock, {cpu_ratio:.2f}× this process's "
        "CPU (target ≤ 1.5×)"
    )
    print("warm rounds s: " + " ".join(f"{x:.2f}" for x in warm))
    pairs = zip(onvif_rounds, floor_rounds, strict=True)
    print("ONVIF-only / floor rounds s: " + " ".join(f"{ours:.2f}/{raw:.2f}" for ours, raw in pairs))
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


def run(args: argparse.Namespace) -> None:
    if args.loop == "uvloop":
        try:
            import uvloop
        except ImportError:
            raise SystemExit("--loop uvloop needs uvloop: .venv/bin/pip install uvloop") from None
        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            runner.run(main(args))
    else:
        asyncio.run(main(args))


if __name__ == "__main__":
    run(parse_args())
