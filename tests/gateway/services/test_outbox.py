"""The durable outbox and delivery from it: restarts, duplicates, per-button order, back-off, independent upstreams.

The platform here is a scripted `Upstream` (the protocol every kind implements) and the clock and the back-off
sleep are injected, so retries take no real time; the http edge is tested for real in tests/adapters.
"""

from __future__ import annotations

import asyncio
import json
from collections import defaultdict
from pathlib import Path

import pytest

from adapters.upstreams.base import LinkState
from gateway.domain.errors import UpstreamError
from gateway.domain.events import OutboxEvent
from gateway.services.forwarder import Backoff, Forwarder
from gateway.services.outbox import NewEvent, Outbox
from tests.fixtures.waiting import eventually

PANIC = "cn.huxiao.alarm.panic"


class ScriptedPlatform:
    """An `Upstream` that refuses chosen events a number of times, and records every attempt."""

    kind = "scripted"

    def __init__(self, name: str = "police", role: str = "police") -> None:
        self.name, self.role = name, role
        self.state = LinkState()
        self.refuse: dict[str, int] = defaultdict(int)  # event id → attempts still to refuse
        self.down = False
        self.attempts: list[str] = []
        self.delivered: list[OutboxEvent] = []

    async def send(self, event: OutboxEvent) -> None:
        self.attempts.append(event.id)
        if self.down or self.refuse[event.id] > 0:
            self.refuse[event.id] -= 1
            raise UpstreamError(f"{self.name}: HTTP 503")
        self.delivered.append(event)


def body(seq: int) -> bytes:
    return json.dumps({"sequence": seq}).encode()


def store(outbox: Outbox, event_id: str, button: str, button_event: str | None = None) -> OutboxEvent:
    event = outbox.store(event_id, PANIC, button, button_event or f"press-{event_id}", body)
    assert event is not None
    return event


class Sleeps:
    """The back-off sleep, injected: records each delay and yields once instead of waiting."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, delay: float) -> None:
        self.delays.append(delay)
        await asyncio.sleep(0)


def test_an_event_survives_a_restart_with_the_same_id_and_body(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path / "gw.db", ["police", "education"])
    stored = store(outbox, "ce-1", "b1")
    assert json.loads(stored.body) == {"sequence": stored.seq}
    outbox.close()
    reopened = Outbox(tmp_path / "gw.db", ["police", "education"])
    for upstream in ("police", "education"):
        ((event, attempts),) = reopened.pending(upstream)
        assert (event.id, event.body, attempts) == ("ce-1", stored.body, 0)
    reopened.close()


def test_the_same_button_event_is_stored_once(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path / "gw.db", ["police"])
    first = NewEvent("ce-1", PANIC, "b1", "press-1", body)
    again = NewEvent("ce-2", PANIC, "b1", "press-1", body)
    other_button = NewEvent("ce-3", PANIC, "b2", "press-1", body)
    result = outbox.store_many([first, again, other_button])
    assert [e.id if e else None for e in result] == ["ce-1", None, "ce-3"]
    assert [e.id for e, _ in outbox.pending("police")] == ["ce-1", "ce-3"]
    outbox.close()


def test_delivery_marks_reach_the_disk_on_flush_or_with_the_next_alarm(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path / "gw.db", ["police"])
    one, two = store(outbox, "ce-1", "b1"), store(outbox, "ce-2", "b1")
    outbox.mark_delivered("police", one.seq, 1)
    assert outbox.flush_marks() == 1
    assert outbox.counts()["police"] == {"pending": 1, "delivered": 1}
    outbox.mark_failed("police", two.seq, 3, 0.0, "HTTP 503")
    store(outbox, "ce-3", "b2")  # the next alarm's commit carries the mark
    assert outbox.pending("police")[0][1] == 3
    outbox.close()


def test_recent_alarms_show_each_upstreams_delivery(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path / "gw.db", ["education", "police"])
    event = store(outbox, "ce-1", "guard-room")
    outbox.mark_delivered("police", event.seq, 2)
    outbox.flush_marks()
    (alarm,) = outbox.recent_alarms(10)
    assert (alarm["id"], alarm["button"], alarm["type"]) == ("ce-1", "guard-room", "panic")
    deliveries = {d["upstream"]: d for d in alarm["deliveries"]}
    assert deliveries["police"]["state"] == "delivered"
    assert deliveries["police"]["attempts"] == 2
    assert deliveries["police"]["delivered_at"].endswith("Z")
    assert deliveries["education"] == {"upstream": "education", "state": "pending", "attempts": 0, "delivered_at": None}
    outbox.close()


def test_backoff_doubles_from_the_first_delay_up_to_the_cap_with_jitter_below() -> None:
    backoff = Backoff(first_s=0.5, cap_s=4.0, jitter=0.5)
    assert [backoff.delay(n, 0.0) for n in range(1, 7)] == [0.5, 1.0, 2.0, 4.0, 4.0, 4.0]
    assert backoff.delay(3, 0.999) == pytest.approx(1.0, abs=0.01)  # jitter only shortens: never above the cap
    assert all(1.0 <= backoff.delay(3, d / 10) <= 2.0 for d in range(10))


async def test_retries_carry_the_same_id_and_back_off(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path / "gw.db", ["police"])
    platform, sleeps = ScriptedPlatform(), Sleeps()
    forwarder = Forwarder(platform, outbox, backoff=Backoff(0.5, 2.0, 0.5), sleep=sleeps, draw=lambda: 0.0)
    event = store(outbox, "ce-1", "b1")
    platform.refuse["ce-1"] = 4
    forwarder.submit(event)
    await asyncio.wait_for(forwarder.idle(), 5)
    assert platform.attempts == ["ce-1"] * 5
    assert sleeps.delays == [0.5, 1.0, 2.0, 2.0]
    assert platform.state.link == "up"
    outbox.close()
    reopened = Outbox(tmp_path / "gw.db", ["police"])
    assert reopened.counts()["police"] == {"pending": 0, "delivered": 1}
    reopened.close()


async def test_a_refused_alarm_holds_back_only_its_own_buttons_later_alarms(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path / "gw.db", ["police"])
    platform = ScriptedPlatform()
    released = asyncio.Event()

    async def sleep(_delay: float) -> None:
        await released.wait()  # button a's first alarm stays refused until the test says so

    forwarder = Forwarder(platform, outbox, sleep=sleep)
    a1, a2 = store(outbox, "a1", "a"), store(outbox, "a2", "a")
    b1, b2 = store(outbox, "b1", "b"), store(outbox, "b2", "b")
    platform.refuse["a1"] = 1
    for event in (a1, a2, b1, b2):
        forwarder.submit(event)
    await eventually(lambda: len(platform.delivered) == 2, timeout=5, what="button b's alarms delivered")
    assert [e.id for e in platform.delivered] == ["b1", "b2"]  # b is not held back by a
    assert "a2" not in platform.attempts  # a's later alarm does not overtake its refused first one
    released.set()
    await asyncio.wait_for(forwarder.idle(), 5)
    assert [e.id for e in platform.delivered if e.button_id == "a"] == ["a1", "a2"]
    outbox.close()


async def test_one_upstream_down_does_not_hold_back_another_and_catches_up_after_a_restart(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path / "gw.db", ["police", "education"])
    police, education = ScriptedPlatform("police"), ScriptedPlatform("education", "education")
    education.down = True
    gate = asyncio.Event()

    async def stalled(_delay: float) -> None:
        await gate.wait()

    forwarders = [Forwarder(police, outbox), Forwarder(education, outbox, sleep=stalled)]
    events = [store(outbox, f"ce-{n}", f"b{n % 2}") for n in range(6)]
    for event in events:
        for forwarder in forwarders:
            forwarder.submit(event)
    await asyncio.wait_for(forwarders[0].idle(), 5)
    assert sorted(e.id for e in police.delivered) == [e.id for e in events]
    assert education.delivered == []
    for forwarder in forwarders:
        await forwarder.stop()
    outbox.close()

    # The gateway restarts with education back: what it still owes education is sent, nothing again to police.
    outbox = Outbox(tmp_path / "gw.db", ["police", "education"])
    police_again, education_again = ScriptedPlatform("police"), ScriptedPlatform("education", "education")
    forwarders = [Forwarder(police_again, outbox), Forwarder(education_again, outbox)]
    for forwarder in forwarders:
        await forwarder.load()
        await asyncio.wait_for(forwarder.idle(), 5)
    assert police_again.attempts == []
    assert [e.id for e in education_again.delivered if e.button_id == "b0"] == ["ce-0", "ce-2", "ce-4"]
    assert [e.id for e in education_again.delivered if e.button_id == "b1"] == ["ce-1", "ce-3", "ce-5"]
    outbox.close()
