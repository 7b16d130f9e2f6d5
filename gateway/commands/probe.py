"""`huxiao probe`: one health round of every camera, a progress bar while it runs, then a table or JSON.

The commissioning check an installer runs with the config in hand: which cameras answer, with the right password,
the right clock and a working stream, and whether the school reaches its networking-rate target.
"""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Any, TextIO

import aiohttp

from gateway.domain.config import GatewayConfig
from gateway.services.camera_health import CameraHealth, CameraRuntime
from monitoring.networking import CameraReading, networking_rate

BAR_WIDTH = 30


def camera_row(runtime: CameraRuntime) -> dict[str, Any]:
    stream = runtime.stream
    return {
        "id": runtime.config.id,
        "name": runtime.config.name,
        "state": runtime.machine.state.value,
        "reasons": sorted(runtime.machine.reasons),
        "rtt_ms": round(runtime.rtt_ms, 1) if runtime.rtt_ms is not None else None,
        "clock_skew_s": round(runtime.clock_skew_s, 1) if runtime.clock_skew_s is not None else None,
        "stream": f"{stream.codec} {stream.width}x{stream.height}" if stream else None,
        "device": runtime.device_info.model if runtime.device_info else None,
        "error": runtime.last_error if runtime.machine.state.value != "online" else None,
    }


def _bar(done: int, total: int, out: TextIO) -> None:
    filled = BAR_WIDTH * done // max(total, 1)
    out.write(f"\r探测 probing [{'#' * filled}{'.' * (BAR_WIDTH - filled)}] {done}/{total}")
    out.flush()


async def probe_round(config: GatewayConfig, progress: TextIO | None) -> tuple[list[dict[str, Any]], float | None]:
    """Poll every camera once (the offline threshold is one failure: there is no history to debounce)."""
    polling = config.polling.model_copy(update={"offline_after": 1})
    cameras = [c.model_copy(update={"offline_after": 1}) for c in config.cameras]
    done = 0

    def tick(_: CameraRuntime) -> None:
        nonlocal done
        done += 1
        if progress is not None:
            _bar(done, len(cameras), progress)

    async with aiohttp.ClientSession() as session:
        health = CameraHealth(cameras, polling, session)
        if progress is not None:
            _bar(0, len(cameras), progress)
        await health.round(on_done=tick)
    if progress is not None:
        progress.write("\n")
    runtimes = list(health.cameras.values())
    readings = [CameraReading(r.machine.state, bool(r.stream and r.stream.ok), r.machine.reasons) for r in runtimes]
    return [camera_row(r) for r in runtimes], networking_rate(readings, platform_link_ok=True).rate


def render_table(rows: list[dict[str, Any]], rate: float | None, target: float) -> str:
    headers = ["id", "name", "state", "reasons", "rtt_ms", "clock_skew_s", "stream"]
    cells = [
        [("" if r[h] is None else ", ".join(r[h]) if isinstance(r[h], list) else str(r[h])) for h in headers]
        for r in rows
    ]
    widths = [max([_width(h)] + [_width(c[i]) for c in cells]) for i, h in enumerate(headers)]
    lines = ["  ".join(_pad(h, w) for h, w in zip(headers, widths, strict=True))]
    lines += ["  ".join(_pad(c, w) for c, w in zip(row, widths, strict=True)) for row in cells]
    verdict = "达标 meets target" if rate is not None and rate >= target else "未达标 below target"
    shown = f"{rate * 100:.1f}%" if rate is not None else "—"
    lines.append(f"\n联网率 networking rate {shown} (目标 target {target * 100:.1f}%): {verdict}")
    lines.append("(the platform link is not part of a probe; the running gateway counts it)")
    return "\n".join(lines)


def _width(text: str) -> int:
    """Display width: CJK characters take two columns in a terminal."""
    return sum(2 if ord(ch) > 0x2E80 else 1 for ch in text)


def _pad(text: str, width: int) -> str:
    return text + " " * (width - _width(text))


def run_probe(config: GatewayConfig, as_json: bool) -> int:
    # The bar redraws one line with carriage returns: only a terminal shows that as a bar; a log file or a pipe
    # would get every frame of it.
    progress = sys.stderr if not as_json and sys.stderr.isatty() else None
    rows, rate = asyncio.run(probe_round(config, progress))
    target = config.targets.networking_rate
    if as_json:
        print(json.dumps({"cameras": rows, "networking_rate": rate, "target": target}, ensure_ascii=False, indent=1))
    else:
        print(render_table(rows, rate, target))
    return 0 if rate is not None and rate >= target else 1
