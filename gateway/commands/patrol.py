"""`huxiao patrol -c FILE --out DIR`: one patrol round now, written as a report (HTML, JSON, CSV, thumbnails)."""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path

import aiohttp

from gateway.domain.config import GatewayConfig
from gateway.domain.errors import GatewayError
from gateway.faces.patrol_report import write_report
from gateway.services.camera_health import CameraHealth
from gateway.services.patrol import Patrol
from gateway.services.status import Pictures


def check_out_folder(out: Path) -> None:
    """Fail before the round (which takes a while) if the report could not be written where asked."""
    if out.exists() and not out.is_dir():
        raise GatewayError(f"--out {out}: is a file, not a folder")
    try:
        out.mkdir(parents=True, exist_ok=True)
        # Root passes every permission check, so try a real write rather than os.access.
        with tempfile.NamedTemporaryFile(dir=out, prefix=".huxiao-write-test-"):
            pass
    except OSError as exc:
        raise GatewayError(f"--out {out}: cannot write there ({exc.strerror or exc})") from None


async def patrol_once(config: GatewayConfig, out: Path, workers: int | None = None) -> tuple[Path, dict[str, int]]:
    pictures = Pictures()
    async with aiohttp.ClientSession() as session:
        health = CameraHealth(config.cameras, config.polling, session)
        await health.round()  # find the stream and snapshot URIs over ONVIF first
        results = await Patrol(health, pictures, config.patrol).round(workers)
    index = await asyncio.to_thread(
        write_report, [r.as_json() for r in results], pictures.thumbnails, out, config.school.name
    )
    counts: dict[str, int] = {}
    for result in results:
        counts[result.verdict] = counts.get(result.verdict, 0) + 1
    return index, counts


def run_patrol(config: GatewayConfig, out: Path) -> int:
    index, counts = asyncio.run(patrol_once(config, out))
    summary = ", ".join(f"{verdict} {n}" for verdict, n in sorted(counts.items()))
    print(f"视频巡查 patrol: {summary}\n报告 report: {index}")
    return 0
