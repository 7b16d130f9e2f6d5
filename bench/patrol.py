"""A video-patrol round over N RTSP streams (default 100, 640x360 H.264) from the real GStreamer server: two
frames per stream two seconds apart, diagnosis and thumbnail. Prints the round time and frames per second, for
a few pool sizes, beside the baseline of the same run: the same grabs with a worker held through each camera's
2 s wait (as the patrol grabbed before), diagnosis included.

    .venv/bin/python bench/patrol.py
    .venv/bin/python bench/patrol.py --streams 20 --workers 8
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import aiohttp

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from adapters.frame_grabber import FRAME_INTERVAL_S, OPEN_TIMEOUT_S, READ_TIMEOUT_S, Frame, open_capture  # noqa: E402
from gateway.domain.config import CameraConfig, PatrolConfig, PollingConfig  # noqa: E402
from gateway.services.camera_health import CameraHealth  # noqa: E402
from gateway.services.patrol import Patrol  # noqa: E402
from gateway.services.status import Pictures  # noqa: E402
from monitoring.quality import diagnose, make_thumbnail  # noqa: E402
from simulators.rtsp import PATTERNS, RtspServer  # noqa: E402


async def one_round(server: RtspServer, streams: int, workers: int) -> tuple[float, dict[str, int]]:
    cameras = [
        CameraConfig(id=f"cam-{i:03d}", name=f"cam {i}", rtsp=server.url(f"cam-{i:03d}")) for i in range(streams)
    ]
    async with aiohttp.ClientSession() as session:
        health = CameraHealth(cameras, PollingConfig(timeout=5.0), session)
        await health.round()
        patrol = Patrol(health, Pictures(), PatrolConfig(workers=workers))
        started = time.perf_counter()
        results = await patrol.round()
        elapsed = time.perf_counter() - started
    verdicts: dict[str, int] = {}
    for result in results:
        verdicts[result.verdict] = verdicts.get(result.verdict, 0) + 1
    return elapsed, verdicts


def held_worker_grab(uri: str) -> tuple[Frame, Frame] | None:
    """The baseline: one thread opens, reads, keeps reading through the 2 s, takes the second frame."""
    capture = open_capture(uri, OPEN_TIMEOUT_S, READ_TIMEOUT_S)
    try:
        ok, first = capture.read()
        if not ok:
            return None
        take_at = time.perf_counter() + FRAME_INTERVAL_S
        while time.perf_counter() < take_at:
            if not capture.grab():
                return None
        ok, second = capture.retrieve()
        return (first, second) if ok else None
    finally:
        capture.release()


async def baseline_round(server: RtspServer, streams: int, workers: int) -> tuple[float, dict[str, int]]:
    loop = asyncio.get_running_loop()
    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=workers) as pool:
        grabs = await asyncio.gather(
            *(loop.run_in_executor(pool, held_worker_grab, server.url(f"cam-{i:03d}")) for i in range(streams))
        )
        verdicts: dict[str, int] = {}
        for pair in grabs:
            verdict = "no_signal"
            if pair is not None:
                verdict = (await loop.run_in_executor(pool, diagnose, pair[1], pair[0])).verdict
                await loop.run_in_executor(pool, make_thumbnail, pair[1])
            verdicts[verdict] = verdicts.get(verdict, 0) + 1
    return time.perf_counter() - started, verdicts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--streams", type=int, default=100)
    parser.add_argument("--workers", type=int, nargs="*", default=[8, 32])
    args = parser.parse_args()
    mounts = {f"cam-{i:03d}": PATTERNS[i % len(PATTERNS)] for i in range(args.streams)}
    with RtspServer(mounts) as server:
        print(f"\nvideo patrol, {args.streams} RTSP streams 640x360 H.264 15 fps 512 kbit/s, 2 frames 2 s apart")
        print(f"{'':9}{'workers':>8}{'round s':>10}{'frames/s':>10}   verdicts")
        for workers in args.workers:
            for name, run in (("baseline", baseline_round), ("patrol", one_round)):
                elapsed, verdicts = asyncio.run(run(server, args.streams, workers))
                frames = 2 * sum(n for v, n in verdicts.items() if v != "no_signal")
                shown = " ".join(f"{k}={v}" for k, v in sorted(verdicts.items()))
                print(f"{name:9}{workers:8d}{elapsed:10.1f}{frames / elapsed:10.1f}   {shown}")
    print("target: 100 streams grabbed and diagnosed ≤ 10 s on 2 cores, aim ≤ 5 s")


if __name__ == "__main__":
    main()
