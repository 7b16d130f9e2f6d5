"""One owner for every background task: started by name, restarted with back-off if it crashes, stopped together.

A crash in one part (a poller, a forwarder) must not take the service down, and no task may be left without a
reference (the loop keeps only weak ones, so an unowned task can vanish mid-run). Long-running parts are started
with `start`; short jobs (one alarm's pictures, one button's delivery queue) are run with `TaskSet.spawn` under a
family name, so their crashes are logged and counted like a part's and they are cancelled with the rest.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from typing import Any

logger = logging.getLogger(__name__)

# A crashed part is restarted after 1 s, doubling up to a minute: fast enough to recover from a passing fault,
# slow enough that a part failing on every start does not fill the log.
RESTART_FIRST_S = 1.0
RESTART_MAX_S = 60.0


class TaskSet:
    """Short-lived tasks with a kept reference each; a crash is logged with its traceback and counted."""

    def __init__(self, crashes: Counter[str]) -> None:
        self._tasks: set[asyncio.Task[Any]] = set()
        self._crashes = crashes

    def spawn(self, family: str, coroutine: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        task = asyncio.get_running_loop().create_task(coroutine, name=family)
        self._tasks.add(task)
        task.add_done_callback(self._done)
        return task

    def _done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if task.cancelled():
            return
        exc = task.exception()
        if exc is not None:
            self._crashes[task.get_name()] += 1
            logger.error("%s: crashed", task.get_name(), exc_info=exc)

    def __len__(self) -> int:
        return len(self._tasks)

    async def cancel_all(self, grace_s: float = 3.0) -> None:
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=grace_s)


@dataclass(slots=True)
class _Part:
    name: str
    factory: Callable[[], Awaitable[None]]
    restart: bool
    task: asyncio.Task[None] | None = None
    crashes: int = 0
    last_error: str | None = None
    running: bool = False  # inside factory() now, not waiting to be restarted
    since: float = 0.0  # when `running` last changed


@dataclass(frozen=True, slots=True)
class PartStatus:
    running: bool
    crashes: int
    last_error: str | None
    since: float


class Supervisor:
    """Owns named long-running coroutines, and the short tasks they spawn, for the life of the app."""

    def __init__(
        self,
        *,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._parts: dict[str, _Part] = {}
        self._sleep = sleep
        self._clock = clock
        self._stopping = False
        # Crashes by part or task family, for /metrics; kept after a part is stopped.
        self.crashes: Counter[str] = Counter()
        self.tasks = TaskSet(self.crashes)

    def start(self, name: str, factory: Callable[[], Awaitable[None]], *, restart: bool = True) -> None:
        """Run `factory()` as the part `name`; if it raises, log and run it again after back-off."""
        if name in self._parts:
            raise ValueError(f"a part named {name!r} is already running")
        part = _Part(name, factory, restart, since=self._clock())
        self._parts[name] = part
        part.task = asyncio.create_task(self._keep(part), name=name)

    def spawn(self, family: str, coroutine: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        """A short job owned by the supervisor (see TaskSet)."""
        return self.tasks.spawn(family, coroutine)

    def _running(self, part: _Part, running: bool) -> None:
        if part.running != running:
            part.running, part.since = running, self._clock()

    async def _keep(self, part: _Part) -> None:
        delay = RESTART_FIRST_S
        while True:
            self._running(part, True)
            try:
                await part.factory()
            except asyncio.CancelledError:
                self._running(part, False)
                raise
            except Exception as exc:
                self._running(part, False)
                part.crashes += 1
                self.crashes[part.name] += 1
                part.last_error = f"{type(exc).__name__}: {exc}"
                logger.exception("%s: crashed (%d so far)", part.name, part.crashes)
            else:
                self._running(part, False)
                if not part.restart or self._stopping:
                    return
                logger.warning("%s: returned while the gateway runs; starting it again", part.name)
            if not part.restart or self._stopping:
                return
            await self._sleep(delay * random.uniform(0.8, 1.2))
            delay = min(delay * 2, RESTART_MAX_S)

    def status(self) -> dict[str, PartStatus]:
        """Each part: running or not (a crashed part waiting for its restart is not), crashes, last error."""
        return {p.name: PartStatus(p.running, p.crashes, p.last_error, p.since) for p in self._parts.values()}

    async def stop_parts(self, *names: str, grace_s: float = 3.0) -> None:
        """Stop the named parts (before the resources they use are closed), leaving the others running."""
        parts = [self._parts.pop(name) for name in names if name in self._parts]
        tasks = [p.task for p in parts if p.task is not None]
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=grace_s)

    async def stop(self, grace_s: float = 3.0) -> None:
        """Cancel every part (newest first) and every short task, and wait for them, at most `grace_s` each."""
        self._stopping = True
        await self.tasks.cancel_all(grace_s)
        tasks = [p.task for p in reversed(self._parts.values()) if p.task is not None]
        for task in tasks:
            task.cancel()
        if tasks:
            _done, pending = await asyncio.wait(tasks, timeout=grace_s)
            for task in pending:
                logger.error("%s: did not stop within %.1f s", task.get_name(), grace_s)
        self._parts.clear()
