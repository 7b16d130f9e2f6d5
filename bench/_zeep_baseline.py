"""The baseline: plain `onvif-zeep` (WSDL-driven, synchronous) polling simulated cameras in a thread pool.

Runs inside bench/.venv-zeep (onvif-zeep and the gateway's onvif-zeep-async both install a top-level `onvif`
package). Prints one JSON line: client build time per camera, round time, memory.

    bench/.venv-zeep/bin/python bench/_zeep_baseline.py --ports 30000,30001,30002 --rounds 3
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import time
from concurrent.futures import ThreadPoolExecutor

from onvif import ONVIFCamera


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--ports", required=True, help="comma-separated camera ports")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=32)
    args = parser.parse_args()
    ports = [int(p) for p in args.ports.split(",")]
    base_rss = rss_mb()

    def build(port: int) -> object:
        camera = ONVIFCamera("127.0.0.1", port, "admin", "admin123")
        return camera.create_devicemgmt_service()

    started = time.perf_counter()
    services = [build(port) for port in ports]  # one after another: the cost of one client, not of the GIL
    cold_s = time.perf_counter() - started
    built_rss = rss_mb()

    def poll(service: object) -> None:
        service.GetSystemDateAndTime()  # type: ignore[attr-defined]
        service.GetDeviceInformation()  # type: ignore[attr-defined]

    rounds = []
    with ThreadPoolExecutor(args.threads) as pool:
        for _ in range(args.rounds):
            started = time.perf_counter()
            list(pool.map(poll, services))
            rounds.append(time.perf_counter() - started)
    print(
        json.dumps(
            {
                "cameras": len(ports),
                "build_ms_per_camera": cold_s * 1000 / len(ports),
                "round_ms_per_camera": statistics.median(rounds) * 1000 / len(ports),
                "mb_per_camera": (built_rss - base_rss) / len(ports),
            }
        )
    )


if __name__ == "__main__":
    main()
