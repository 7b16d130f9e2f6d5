"""A police platform that takes `http` alarms: checks signatures and their ±300 s window, dedupes by id,
records when each event arrived, and can be told to fail (answer 503) for a while. The seed of `huxiao center`.

    python -m simulators.platform --port 9000 --secret s3cret
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import time
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from adapters.upstreams.signing import HEADER, verify

logger = logging.getLogger(__name__)


@dataclass
class Received:
    id: str
    type: str
    data: dict[str, Any]
    at: float  # time.time() when it arrived
    body: bytes


@dataclass
class PlatformReceiver:
    """Records what arrives; `fail_with` set to a status makes it refuse everything with that status."""

    secret: str | None = None
    fail_with: int | None = None
    # Each event as a JSON line on stdout as it arrives (for a bench in another process: no polling of the list).
    print_arrivals: bool = False
    events: list[Received] = field(default_factory=list)
    duplicates: int = 0
    refused: int = 0
    arrived: asyncio.Condition = field(default_factory=asyncio.Condition)
    # Every id ever taken: a set, so deduplication costs the same at the 10,000th alarm as at the first.
    _ids: set[str] = field(default_factory=set, repr=False)

    def app(self) -> web.Application:
        app = web.Application(client_max_size=16 * 1024 * 1024)
        app.router.add_post("/alarms", self._take)
        app.router.add_get("/alarms", self._list)
        return app

    def ids(self) -> list[str]:
        return [e.id for e in self.events]

    def by_button_event(self) -> dict[str, Received]:
        return {str(e.data.get("button_event_id")): e for e in self.events if "button_event_id" in e.data}

    async def wait_for(self, count: int, timeout: float = 30.0, kind: str | None = None) -> None:
        """Until `count` distinct events (of type `kind`, if given) have arrived."""
        async with asyncio.timeout(timeout), self.arrived:
            await self.arrived.wait_for(lambda: sum(1 for e in self.events if kind in (None, e.type)) >= count)

    async def _take(self, request: web.Request) -> web.Response:
        body = await request.read()
        now = time.time()
        if self.fail_with is not None:
            return web.Response(status=self.fail_with, text="platform unavailable")
        if self.secret is not None:
            problem = verify(self.secret, body, request.headers.get(HEADER, ""), now)
            if problem is not None:
                self.refused += 1
                return web.json_response({"error": problem}, status=401)
        try:
            event = json.loads(body)
            event_id, event_type, data = str(event["id"]), str(event["type"]), dict(event["data"])
        except (ValueError, KeyError, TypeError):
            return web.json_response({"error": "not a CloudEvent"}, status=400)
        if event_id in self._ids:
            self.duplicates += 1
            return web.json_response({"id": event_id, "status": "already received"}, status=409)
        self._ids.add(event_id)
        self.events.append(Received(event_id, event_type, data, now, body))
        if self.print_arrivals:
            button = data.get("button")
            row = {
                "id": event_id,
                "at": now,
                "button": button.get("id") if isinstance(button, dict) else None,
                "button_event_id": data.get("button_event_id"),
            }
            print(json.dumps(row), flush=True)
        async with self.arrived:
            self.arrived.notify_all()
        return web.json_response({"id": event_id, "status": "received"})

    async def _list(self, request: web.Request) -> web.Response:
        """What arrived, oldest first: the last 200, or everything after the first `after` events."""
        after = request.query.get("after")
        chosen = self.events[int(after) :] if after and after.isdigit() else self.events[-200:]
        rows = [
            {
                "id": e.id,
                "type": e.type,
                "at": e.at,
                "button": e.data.get("button"),
                "button_event_id": e.data.get("button_event_id"),
            }
            for e in chosen
        ]
        return web.json_response(rows)


async def _serve(port: int, secret: str | None, print_arrivals: bool) -> None:
    receiver = PlatformReceiver(secret=secret, print_arrivals=print_arrivals)
    runner = web.AppRunner(receiver.app(), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    print(f"READY platform on http://127.0.0.1:{port}/alarms", flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()


def main() -> None:
    parser = argparse.ArgumentParser(description="a police platform receiving huxiao alarms, on 127.0.0.1")
    parser.add_argument("--port", type=int, default=9000)
    parser.add_argument("--secret", default=None)
    parser.add_argument("--print-arrivals", action="store_true", help="each event as a JSON line on stdout")
    args = parser.parse_args()
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve(args.port, args.secret, args.print_arrivals))


if __name__ == "__main__":
    main()
