"""Intake: signed CloudEvents from gateways, checked, deduplicated, on disk, then answered and shown.

Checks, in order: the body is a CloudEvent with a `source` of the form `huxiao/<school id>` naming a configured
school; over HTTP the `X-Huxiao-Signature` is that school's (gateway's `adapters/upstreams/signing.py`) and its `t`
within ±300 s; over MQTT the broker authenticated the sender, so the event's school must be its topic's. An event is
answered only after its transaction committed (group commit: every event waiting at that moment shares one fsync).
A signature seen before is a replay: answered 409 (the event is stored already) and counted.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections import Counter, OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from adapters.upstreams.signing import WINDOW_S, verify
from center.config import CenterConfig
from center.store import IncomingEvent, Store
from gateway.domain.errors import GatewayError, StorageError

logger = logging.getLogger(__name__)

# Events committed in one transaction at most: bounds the latency one batch adds to the first event in it.
MAX_BATCH = 500
# Signatures remembered for replay detection: all of the ±300 s window at the bench's 1,000 events/s, and more.
REMEMBERED_SIGNATURES = 1_000_000
SOURCE_PREFIX = "huxiao/"


class Refusal(StrEnum):
    MALFORMED = "malformed"
    UNKNOWN_SCHOOL = "unknown_school"
    FORGED = "forged"
    STALE = "stale"
    REPLAYED = "replayed"
    WRONG_TOPIC = "wrong_topic"


class Refused(GatewayError):
    def __init__(self, reason: Refusal, detail: str, status: int) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail
        self.status = status


@dataclass(frozen=True, slots=True)
class Taken:
    event: IncomingEvent
    fresh: bool


def parse_event(body: bytes, via: str) -> IncomingEvent:
    try:
        document = json.loads(body)
        event_id, source, kind = document["id"], document["source"], document["type"]
        data = document.get("data") or {}
    except (ValueError, KeyError, TypeError):
        raise Refused(Refusal.MALFORMED, "not a CloudEvents JSON document", 400) from None
    if not all(isinstance(v, str) and v for v in (event_id, source, kind)) or not isinstance(data, dict):
        raise Refused(Refusal.MALFORMED, "id, source and type must be strings and data an object", 400)
    if not source.startswith(SOURCE_PREFIX) or not source[len(SOURCE_PREFIX) :]:
        raise Refused(Refusal.MALFORMED, f"source must be huxiao/<school id>, got {source[:80]!r}", 400)
    time_value = document.get("time")
    return IncomingEvent(
        id=event_id[:200],
        school_id=source[len(SOURCE_PREFIX) :],
        type=kind,
        time=str(time_value) if time_value is not None else None,
        data=data,
        body=body.decode("utf-8", errors="replace"),
        via=via,
    )


class Intake:
    """Checks and stores events from both faces (HTTP and MQTT); `on_taken` runs for every new one, in order."""

    def __init__(
        self,
        config: CenterConfig,
        store: Store,
        on_taken: Callable[[list[IncomingEvent]], Awaitable[None]],
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._config = config
        self._store = store
        self._on_taken = on_taken
        self._clock = clock
        self.refused: Counter[str] = Counter()
        self.taken: Counter[str] = Counter()  # by via
        self.duplicates = 0
        self._signatures: OrderedDict[str, float] = OrderedDict()
        self._queue: asyncio.Queue[tuple[IncomingEvent, asyncio.Future[bool]]] = asyncio.Queue()
        self._writer: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._writer = asyncio.create_task(self._write_batches(), name="center-intake-writer")

    async def stop(self) -> None:
        if self._writer is not None:
            self._writer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._writer
            self._writer = None

    def _refuse(self, reason: Refusal, detail: str, status: int, school: str = "-") -> Refused:
        self.refused[reason.value] += 1
        logger.warning("%s: refused (%s): %s", school, reason.value, detail)
        return Refused(reason, detail, status)

    async def take_http(self, body: bytes, signature: str) -> Taken:
        try:
            event = parse_event(body, "http")
        except Refused as exc:
            raise self._refuse(exc.reason, exc.detail, exc.status) from None
        school = self._config.school(event.school_id)
        if school is None:
            raise self._refuse(Refusal.UNKNOWN_SCHOOL, "no such school in the center's config", 403, event.school_id)
        secret = school.secret.get_secret_value() if school.secret is not None else ""
        if not secret:
            raise self._refuse(Refusal.FORGED, "the school has no secret configured for http", 401, school.id)
        now = self._clock()
        problem = verify(secret, body, signature, now)
        if problem is not None:
            reason = Refusal.STALE if "window" in problem else Refusal.FORGED
            raise self._refuse(reason, problem, 401, school.id)
        mac = signature.rsplit("v1=", 1)[-1]
        if mac in self._signatures:
            self._refuse(Refusal.REPLAYED, f"signature of event {event.id} seen before", 409, school.id)
            return Taken(event, fresh=False)
        fresh = await self._commit(event)
        self._remember(mac, now)
        return Taken(event, fresh)

    async def take_mqtt(self, payload: bytes, topic_school: str) -> Taken:
        try:
            event = parse_event(payload, "mqtt")
        except Refused as exc:
            raise self._refuse(exc.reason, exc.detail, exc.status, topic_school) from None
        if event.school_id != topic_school:
            # The broker's ACL lets a gateway write only its own topics; an event naming another school is forged.
            detail = f"source names school {event.school_id} on the topic of {topic_school}"
            raise self._refuse(Refusal.WRONG_TOPIC, detail, 403, topic_school)
        if self._config.school(event.school_id) is None:
            raise self._refuse(Refusal.UNKNOWN_SCHOOL, "no such school in the center's config", 403, event.school_id)
        return Taken(event, await self._commit(event))

    def _remember(self, mac: str, now: float) -> None:
        self._signatures[mac] = now
        # Signatures older than the window cannot be replayed (verify refuses them as stale): forget them.
        while self._signatures:
            oldest_mac, at = next(iter(self._signatures.items()))
            if now - at <= 2 * WINDOW_S and len(self._signatures) <= REMEMBERED_SIGNATURES:
                break
            del self._signatures[oldest_mac]

    async def _commit(self, event: IncomingEvent) -> bool:
        future: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        await self._queue.put((event, future))
        fresh = await future
        self.taken[event.via] += 1
        if not fresh:
            self.duplicates += 1
        return fresh

    async def _write_batches(self) -> None:
        while True:
            batch = [await self._queue.get()]
            while len(batch) < MAX_BATCH and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            events = [event for event, _ in batch]
            try:
                fresh = await self._store.run(self._store.take_events, events)
            except StorageError as exc:
                logger.error("intake: %d events not stored: %s", len(batch), exc)
                for _, future in batch:
                    if not future.done():
                        future.set_exception(exc)
                continue
            new = [event for event, is_new in zip(events, fresh, strict=True) if is_new]
            for (_, future), is_new in zip(batch, fresh, strict=True):
                if not future.done():
                    future.set_result(is_new)
            if new:
                try:
                    await self._on_taken(new)
                except GatewayError as exc:
                    logger.error("intake: after-store step failed: %s", exc)

    def metrics(self) -> dict[str, Any]:
        return {"refused": dict(self.refused), "taken": dict(self.taken), "duplicates": self.duplicates}
