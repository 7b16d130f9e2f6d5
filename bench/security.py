"""What the security checks cost per button message, beside the plain decode they add to (same run, same machine).

    .venv/bin/python bench/security.py

The alarm path's budget is milliseconds (p50 ≤ 5 ms); these are microseconds, so signing and flood folding do not
move the alarm latency. Medians of several timing runs; the machine is shared, so expect noise.
"""

from __future__ import annotations

import json
import statistics
import timeit
from collections.abc import Callable
from datetime import UTC, datetime

from adapters.mqtt import profiles
from adapters.mqtt.signed import mac, verify
from gateway.services.flood import FloodGuard, FloodSettings

RUNS = 7
PER_RUN = 20_000


def per_call_us(work: Callable[[], object]) -> float:
    return statistics.median(timeit.repeat(work, number=PER_RUN, repeat=RUNS)) / PER_RUN * 1e6


def main() -> None:
    now = datetime.now(UTC)
    ts = now.isoformat()
    plain = json.dumps({"id": "e1", "type": "panic", "ts": ts}).encode()
    signed = json.dumps({"id": "e1", "type": "panic", "ts": ts, "seq": 5, "mac": mac("k", "b", "panic", ts, 5)})
    guard = FloodGuard({f"b{i}": FloodSettings(1_000_000, 10.0) for i in range(10)})
    clock = [0.0]

    def press() -> None:
        clock[0] += 0.001
        guard.press("b3", clock[0])

    decode = per_call_us(lambda: profiles.decode("alarm", plain))
    check = per_call_us(
        lambda: verify(signed.encode(), button_id="b", secret="k", last=None, now=now, past_s=40, future_s=20)
    )
    fold = per_call_us(press)
    print(f"per button message, µs (median of {RUNS} runs of {PER_RUN})")
    print(f"baseline: huxiao payload decode      {decode:8.2f}")
    print(f"signed check (mac, seq, window)      {check:8.2f}  ({check / decode:.1f}× the decode)")
    print(f"flood decision                       {fold:8.2f}  ({fold / decode:.2f}× the decode)")


if __name__ == "__main__":
    main()
