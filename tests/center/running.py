"""A center started for real on a free 127.0.0.1 port, with two schools in two districts."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import yaml
from aiohttp import web

from center.app import create_center_app
from center.config import CenterConfig, parse_center_config
from tests.center.senders import SCHOOL_A, SCHOOL_B, SECRETS
from tests.fixtures.ports import free_port
from tests.fixtures.waiting import POLL_S


def center_config(
    storage_url: str, mqtt_url: str | None = None, tokens: dict[str, str] | None = None, port: int | None = None
) -> CenterConfig:
    document: dict[str, Any] = {
        "center": {"listen": f"127.0.0.1:{port or free_port()}"},
        "storage": {"url": storage_url},
        "targets": {"networking_rate": 0.8, "compliant_share": 0.8},
        "schools": [
            {"id": SCHOOL_A, "name": "攀枝花市第一小学", "district": "东区", "secret": SECRETS[SCHOOL_A]},
            {"id": SCHOOL_B, "name": "攀枝花市第二小学", "district": "西区", "secret": SECRETS[SCHOOL_B]},
        ],
    }
    if mqtt_url is not None:
        document["mqtt"] = {"url": mqtt_url, "topic": "huxiao/events", "share": "center"}
    if tokens:
        document["web"] = {"tokens": tokens}
    return parse_center_config(yaml.safe_dump(document, allow_unicode=True), "center.yaml", env={})


def sqlite_url(tmp_path: Path, name: str = "center.db") -> str:
    return f"sqlite:///{tmp_path / name}"


@contextlib.asynccontextmanager
async def running_center(config: CenterConfig, instance: str | None = None) -> AsyncIterator[str]:
    """The center's base URL while it runs."""
    runner = web.AppRunner(create_center_app(config, instance), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, config.center.host, config.center.port)
    await site.start()
    try:
        yield f"http://{config.center.listen}"
    finally:
        await runner.cleanup()


async def until(check: Callable[[], Awaitable[bool]], timeout: float = 10.0, what: str = "condition") -> None:
    """`eventually` for a check that must itself await (an HTTP read of the running center)."""
    try:
        async with asyncio.timeout(timeout):
            # Polling: the state lives in another server (the center), which cannot set our events.
            while not await check():  # noqa: ASYNC110
                await asyncio.sleep(POLL_S)
    except TimeoutError:
        raise AssertionError(f"{what} not reached within {timeout} s") from None
