"""ONVIF health rounds for N simulated cameras (default 1,000) with the gateway's fast client, beside its floor and
its baseline, all measured in the same run:

- ours: the cold round (first contact: probe + auth + media discovery, as after a restart) and warm rounds (probe
  + auth call with the method and digest nonce remembered), all cameras at once through one shared session with a
  bounded number of requests in flight;
- the raw-aiohttp floor: the same two POSTs per camera with a fixed body and no parsing, run between our warm
  rounds so both see the same machine load;
- plain `onvif-zeep` (synchronous, WSDL-driven) in a thread pool on a sample of the cameras, in a virtualenv of
  its own (bench/.venv-zeep, made on first use), scaled per camera.

The cameras run in a process of their own (`python -m simulators.onvif_camera`), so this process's memory is the
client's alone.

    .venv/bin/python bench/poll_onvif.py
    .venv/bin/python bench/poll_onvif.py --cameras 200 --rounds 3 --zeep-sample 20
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
from collections import Counter
from dataclasses import dataclass

import aiohttp
from _farm import DEFAULT_CONCURRENCY, device_url, floor_round, start_farm, timed_round, zeep_baseline
from _memory import peak_rss_mb, rss_mb

from adapters.onvif import client as onvif
from gateway.domain.errors import DeviceError

USERNAME, PASSWORD = "admin", "admin123"
TIMEOUT_S = 5.0


@dataclass(slots=True)
class Polled:
    """What the gateway keeps per camera between rounds (beside its config): the skew and the auth memo."""

    id: str
    url: str
    skew_s: float = 0.0
    memo: onvif.AuthMemo | None = None


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cameras", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=5, help="warm rounds (and as many floor rounds)")
    parser.add_argument("--concurrency", type=int, default=DEFAULT_CONCURRENCY)
    parser.add_argument("--zeep-sample", type=int, default=50, help="cameras polled by the onvif-zeep baseline")
    parser.add_argument("--no-zeep", action="store_true", help="skip the onvif-zeep baseline")
    args = parser.parse_args()
    n = args.cameras
    farm, ports = start_farm(n)
    try:
        cameras = [Polled(f"cam-{i:04d}", device_url(p)) for i, p in enumerate(ports)]
        rss_base = rss_mb()
        errors: Counter[str] = Counter()

        async def cold(camera: Polled) -> None:
            try:
                result = await onvif.probe(session, camera.id, camera.url, TIMEOUT_S)
                camera.skew_s = result.clock_skew_s or 0.0
                camera.memo = onvif.AuthMemo()
                await onvif.check_auth(
                    session, camera.id, camera.url, USERNAME, PASSWORD, TIMEOUT_S, camera.skew_s, camera.memo
                )
                await onvif.discover_media(
                    session, camera.id, camera.url, USERNAME, PASSWORD, TIMEOUT_S, camera.skew_s, camera.memo
                )
            except DeviceError as exc:
                errors[type(exc).__name__] += 1

        async def warm(camera: Polled) -> None:
            try:
                result = await onvif.probe(session, camera.id, camera.url, TIMEOUT_S)
                camera.skew_s = result.clock_skew_s if result.clock_skew_s is not None else camera.skew_s
                await onvif.check_auth(
                    session, camera.id, camera.url, USERNAME, PASSWORD, TIMEOUT_S, camera.skew_s, camera.memo
                )
            except DeviceError as exc:
                errors[type(exc).__name__] += 1

        # Keep-alive longer than a round so warm rounds reuse each camera's connection, as the gateway does.
        connector = aiohttp.TCPConnector(limit=args.concurrency, limit_per_host=0, keepalive_timeout=120)
        async with aiohttp.ClientSession(connector=connector) as session:
            cold_s = await timed_round(cameras, cold, args.concurrency)
            cold_errors = sum(errors.values())
            warm_s, floor_s = [], []
            urls = [camera.url for camera in cameras]
            await floor_round(session, urls, args.concurrency)  # opens the floor's connections: no cold start
            for _ in range(args.rounds):
                warm_s.append(await timed_round(cameras, warm, args.concurrency))
                floor_s.append(await floor_round(session, urls, args.concurrency))
            rss_after = rss_mb()
        zeep = None if args.no_zeep else zeep_baseline(ports[: min(args.zeep_sample, n)])
    finally:
        farm.terminate()
        farm.wait()

    warm_med, floor_med = statistics.median(warm_s), statistics.median(floor_s)
    print(f"\nONVIF health round, {n} simulated cameras (own process), loopback, {args.concurrency} in flight")
    if errors:
        print(f"errors: {dict(errors)} ({cold_errors} in the cold round)")
    print(f"{'':64}{'round s':>9}{'ms/camera':>11}")
    rows = [
        ("ours, cold: probe + auth + media discovery (6 calls)", cold_s),
        ("ours, warm: probe + auth (median)", warm_med),
        ("raw aiohttp floor: 2 fixed POSTs, no parsing (median)", floor_med),
    ]
    for label, seconds in rows:
        print(f"{label:64}{seconds:9.3f}{seconds * 1000 / n:11.3f}")
    print(f"\nwarm / floor: {warm_med / floor_med:.2f}× (target ≤ 1.5×)")
    print("warm rounds s: " + " ".join(f"{s:.3f}" for s in warm_s))
    print("floor rounds s: " + " ".join(f"{s:.3f}" for s in floor_s))
    print(
        f"memory: peak RSS {peak_rss_mb():.0f} MB; {(rss_after - rss_base) * 1024 / n:.1f} KB per camera beyond the "
        "base process (target ≤ 30 KB)"
    )
    if zeep is None:
        print("\nonvif-zeep baseline not run" + ("" if args.no_zeep else " (could not set up bench/.venv-zeep)"))
        return
    ours_cold_ms, ours_warm_ms = cold_s * 1000 / n, warm_med * 1000 / n
    zeep_cold_ms = zeep["build_ms_per_camera"] + zeep["first_round_ms_per_camera"]
    zeep_warm_ms = zeep["round_ms_per_camera"]
    print(
        f"\nside by side, ms per camera (onvif-zeep on {int(zeep['cameras'])} cameras, {int(zeep['threads'])} threads)"
    )
    ours_kb = (rss_after - rss_base) * 1024 / n
    zeep_kb = zeep["mb_per_camera"] * 1024
    print(f"{'':44}{'ours':>10}{'onvif-zeep':>12}{'zeep/ours':>11}")
    for label, ours, theirs, note in [
        ("cold (zeep: client build + first round)", ours_cold_ms, zeep_cold_ms, "  (target ≥ 20×)"),
        ("warm round (probe + auth)", ours_warm_ms, zeep_warm_ms, ""),
        ("resident memory per camera, KB", ours_kb, zeep_kb, "  (target ≤ 30 KB)"),
    ]:
        print(f"{label:44}{ours:10.3f}{theirs:12.2f}{theirs / max(ours, 0.001):10.0f}×{note}")


if __name__ == "__main__":
    asyncio.run(main())
