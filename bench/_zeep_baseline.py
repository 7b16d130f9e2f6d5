"""The baseline: plain `onvif-zeep` (WSDL-driven, synchronous) polling simulated cameras in a thread pool.

Runs inside bench/.venv-zeep (onvif-zeep and the gateway's onvif-zeep-async both install a top-level `onvif`
package, so they cannot share one environment). Prints one JSON line with figures per camera:
- `build_ms_per_camera`: building a client (WSDL parsing and its GetCapabilities call), one after another;
- `first_round_ms_per_camera`, `round_ms_per_camera`: GetSystemDateAndTime + GetDeviceInformation for all cameras
  in a thread pool, the first round and the median of the later ones;
- `mb_per_camera`: resident memory the built clients hold.

    bench/.venv-zeep/bin/python bench/_zeep_baseline.py --ports 30000,30001,30002 --rounds 3
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from _memory import rss_mb
from onvif import ONVIFCamera

# A thread per in-flight call is how a sync client gets concurrency; more threads only add GIL contention.
DEFAULT_THREADS = 32


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--ports", required=True, help="comma-separated camera ports")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=DEFAULT_THREADS)
    parser.add_argument("--password", default="admin123")
    args = parser.parse_args()
    ports = [int(p) for p in args.ports.split(",")]
    base_rss = rss_mb()

    def build(port: int) -> Any:
        camera = ONVIFCamera("127.0.0.1", port, "admin", args.password)
        return camera.create_devicemgmt_service()

    started = time.perf_counter()
    services = [build(port) for port in ports]  # one after another: the cost of one client, not of the GIL
    build_s = time.perf_counter() - started
    built_rss = rss_mb()

    def poll(service: Any) -> None:
        service.GetSystemDateAndTime()
        service.GetDeviceInformation()

    rounds = []
    with ThreadPoolExecutor(args.threads) as pool:
        for _ in range(args.rounds + 1):
            started = time.perf_counter()
            list(pool.map(poll, services))
            rounds.append(time.perf_counter() - started)
    n = len(ports)
    print(
        json.dumps(
            {
                "cameras": n,
                "threads": args.threads,
                "build_ms_per_camera": build_s * 1000 / n,
                "first_round_ms_per_camera": rounds[0] * 1000 / n,
                "round_ms_per_camera": statistics.median(rounds[1:]) * 1000 / n,
                "mb_per_camera": (built_rss - base_rss) / n,
            }
        )
    )


if __name__ == "__main__":
    main()
