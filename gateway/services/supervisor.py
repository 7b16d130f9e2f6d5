"""One owner for every background task: started by name, restarted with back-off if it crashes, stopped together.

A crash in one part (a poller, a forwarder) must not take the service down, and no task may be left without a
reference (the loop keeps only weak ones, so an unowned task can vanish mid-run).
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

logger = logging.getLogger(__name__)

# A crashed part is restarted after 1 s, doubling up to a minute: fast enough to recover from a passing fault,
# slow enough that a part failing on every start does not fill the log.
RESTART_FIRST_S = 1.0
RESTART_MAX_S = 60.0


@dataclass(slots=True)
class _Part:
    name: str
    factory: Callable[[], Awaitable[None]]
    restart: bool
    task: asyncio.Task[None] | None = None
    crashes: int = 0
    last_error: str | None = field(default=None)


class Supervisor:
    """Owns named long-running coroutines for the life of the app."""

    def __init__(self, *, sleep: Callable[[float], Awaitable[None]] = asyncio.sleep) -> None:
        self._parts: dict[str, _Part] = {}
        self._sleep = sleep
        self._stopping = False

    def start(self, name: str, factory: Callable[[], Awaitable[None]], *, restart: bool = True) -> None:
        """Run `factory()` as the part `name`; if it raises, log and run it again after back-off."""
        if name in self._parts:
            raise ValueError(f"a part named {name!r} is already running")
        part = _Part(name, factory, restart)
        self._parts[name] = part
        part.task = asyncio.create_task(self._keep(part), name=name)

    async def _keep(self, part: _Part) -> None:
        delay = RESTART_FIRST_S
        while True:
            try:
                await part.factory()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                part.crashes += 1
                part.last_error = f"{type(exc).__name__}: {exc}"
                logger.exception("%s: crashed (%d so far)", part.name, part.crashes)
            else:
                if not part.restart or self._stopping:
                    return
                logger.warning("%s: returned while the gateway runs; starting it again", part.name)
            if not part.restart or self._stopping:
                return
            await self._sleep(delay * random.uniform(0.8, 1.2))
            delay = min(delay * 2, RESTART_MAX_S)

    def status(self) -> dict[str, dict[str, object]]:
        """Each part: running or not, how often it crashed, its last error."""
        return {
            p.name: {
                "running": p.task is not None and not p.task.done(),
                "crashes": p.crashes,
                "last_error": p.last_error,
            }
            for p in self._parts.values()
        }

    async def stop_parts(self, *names: str, grace_s: float = 3.0) -> None:
        """Stop the named parts (before the resources they use are closed), leaving the others running."""
        parts = [self._parts.pop(name) for name in names if name in self._parts]
        tasks = [p.task for p in parts if p.task is not None]
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=grace_s)

    async def stop(self, grace_s: float = 3.0) -> None:
        """Cancel every part (newest first) and wait for them, at most `grace_s` seconds in all."""
        self._stopping = True
        tasks = [p.task for p in reversed(self._parts.values()) if p.task is not None]
        for task in tasks:
            task.cancel()
        if tasks:
            _done, pending = await asyncio.wait(tasks, timeout=grace_s)
            for task in pending:
                logger.error("%s: did not stop within %.1f s", task.get_name(), grace_s)
        self._parts.clear()
