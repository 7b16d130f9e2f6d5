"""Delivery to one upstream: at least once, in order per button, with capped exponential back-off and jitter.

Each button has its own queue, so a platform that refuses one event holds back only the later events of that
button, and each upstream has its own forwarder, so the education platform being down never delays the police.

An event the outbox could not store (disk full, read-only) goes through the same queue from memory
(`submit_unstored`, seq `UNSTORED_SEQ`). When the broker's redelivery lands it on disk later, under the same id,
it is not sent again: delivered already, it is only marked so in the outbox; still on its way, the stored copy's
delivery row takes the marks of the copy in the queue.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections import Counter, deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from adapters.upstreams.base import Upstream
from gateway.domain.errors import UpstreamError
from gateway.domain.events import UNSTORED_SEQ, OutboxEvent
from gateway.services.outbox import Outbox
from gateway.services.supervisor import TaskSet
from monitoring.latency import LatencyHistogram

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Backoff:
    """Retry delays: first, doubling, capped; each multiplied by a random factor in [1 - jitter, 1]."""

    first_s: float = 0.5
    cap_s: float = 60.0
    jitter: float = 0.5

    def delay(self, attempt: int, draw: float) -> float:
        """The wait after failed attempt number `attempt` (1-based); `draw` is uniform in [0, 1)."""
        base = min(self.cap_s, self.first_s * 2.0 ** (attempt - 1))
        return base * (1 - self.jitter * draw)


@dataclass
class _Queue:
    items: deque[tuple[OutboxEvent, int]] = field(default_factory=deque)
    worker: asyncio.Task[None] | None = None


class Forwarder:
    """Owns the delivery of every outbox event to one upstream."""

    def __init__(
        self,
        upstream: Upstream,
        outbox: Outbox,
        *,
        backoff: Backoff = Backoff(),
        on_delivered: Callable[[Upstream, OutboxEvent], None] | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        draw: Callable[[], float] = random.random,
        tasks: TaskSet | None = None,
    ) -> None:
        self.upstream = upstream
        self._outbox = outbox
        self._backoff = backoff
        self._on_delivered = on_delivered
        self._sleep = sleep
        self._draw = draw
        self._queues: dict[str, _Queue] = {}
        # Each button's queue is drained by a task owned here (and, in the app, by the supervisor's task set).
        self._tasks = tasks if tasks is not None else TaskSet(Counter())
        self._queued: set[int] = set()
        # Events sent from memory, by id: those still queued (with their stored copy once it lands), and those
        # delivered (with the attempts it took) whose stored copy has not landed yet.
        self._unstored_queued: dict[str, OutboxEvent | None] = {}
        self._unstored_delivered: dict[str, int] = {}
        self.latency = LatencyHistogram()
        self._stopped = asyncio.Event()

    @property
    def pending(self) -> int:
        return sum(len(q.items) for q in self._queues.values())

    async def load(self) -> None:
        """Queue what the outbox still holds for this upstream (after a restart); the read is off the loop."""
        for event, attempts in await asyncio.to_thread(self._outbox.pending, self.upstream.name):
            self._enqueue(event, attempts)

    def submit(self, event: OutboxEvent) -> None:
        """A new event, already committed to the outbox."""
        self._enqueue(event, 0)

    def submit_unstored(self, event: OutboxEvent) -> None:
        """A new event the outbox could not store: sent from memory, once per id."""
        if event.id in self._unstored_queued or event.id in self._unstored_delivered or self._stopped.is_set():
            return
        self._unstored_queued[event.id] = None
        self._append(event, 0)

    def _enqueue(self, event: OutboxEvent, attempts: int) -> None:
        if event.seq in self._queued or self._stopped.is_set():
            # Stopping: the event is on disk, and the next start sends it (its session may be closed already).
            return
        if event.id in self._unstored_delivered:
            # Sent from memory while the disk was broken, and now stored: the platform has it.
            self._outbox.mark_delivered(self.upstream.name, event.seq, self._unstored_delivered.pop(event.id))
            return
        if event.id in self._unstored_queued:
            self._unstored_queued[event.id] = event  # the copy in the queue marks this one when it is through
            return
        self._queued.add(event.seq)
        self._append(event, attempts)

    def _append(self, event: OutboxEvent, attempts: int) -> None:
        key = event.button_id or ""
        queue = self._queues.setdefault(key, _Queue())
        queue.items.append((event, attempts))
        if queue.worker is None or queue.worker.done():
            queue.worker = self._tasks.spawn(f"deliveries:{self.upstream.name}", self._drain(key, queue))

    async def _drain(self, key: str, queue: _Queue) -> None:
        while queue.items:
            event, attempts = queue.items[0]
            while True:
                attempts += 1
                try:
                    await self.upstream.send(event)
                except UpstreamError as exc:
                    now = time.time()
                    delay = self._backoff.delay(attempts, self._draw())
                    self.upstream.state.down(now, str(exc))
                    stored = self._stored_copy(event)
                    if stored is not None:
                        self._outbox.mark_failed(self.upstream.name, stored.seq, attempts, now + delay, str(exc))
                    if attempts == 1 or attempts % 10 == 0:
                        logger.warning(
                            "%s: event %s not delivered (attempt %d): %s; retry in %.1f s",
                            self.upstream.name,
                            event.id,
                            attempts,
                            exc,
                            delay,
                        )
                    await self._sleep(delay)
                    continue
                break
            now = time.time()
            self.upstream.state.up(now)
            stored = self._stored_copy(event)
            if stored is not None:
                self._outbox.mark_delivered(self.upstream.name, stored.seq, attempts)
            else:
                self._unstored_delivered[event.id] = attempts
            self.latency.observe(max(0.0, now - event.created_at))
            logger.info(
                "%s: %s from %s delivered in %.0f ms (attempt %d)",
                self.upstream.name,
                event.type,
                event.button_id or "the gateway",
                (now - event.created_at) * 1000,
                attempts,
            )
            queue.items.popleft()
            self._queued.discard(event.seq)
            self._unstored_queued.pop(event.id, None)
            if self._on_delivered is not None:
                self._on_delivered(self.upstream, event)

    def _stored_copy(self, event: OutboxEvent) -> OutboxEvent | None:
        """The outbox's copy of `event` (itself, unless it was sent from memory and has not landed yet)."""
        if event.seq != UNSTORED_SEQ:
            return event
        return self._unstored_queued.get(event.id)

    async def stop(self) -> None:
        self._stopped.set()
        workers = [q.worker for q in self._queues.values() if q.worker is not None and not q.worker.done()]
        for worker in workers:
            worker.cancel()
        await asyncio.gather(*workers, return_exceptions=True)

    async def idle(self) -> None:
        """Wait until every queued event is delivered (for tests and benchmarks)."""
        while True:
            workers = [q.worker for q in self._queues.values() if q.worker is not None and not q.worker.done()]
            if not workers:
                return
            await asyncio.wait(workers)
