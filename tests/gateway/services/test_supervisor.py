"""The supervisor keeps parts running through crashes and stops them all together."""

from __future__ import annotations

import asyncio

from gateway.services.supervisor import Supervisor


async def test_a_crashing_part_is_restarted_and_others_keep_running() -> None:
    restarted = asyncio.Event()
    runs = 0
    ticks = 0

    async def no_wait(_: float) -> None:
        return None

    async def flaky() -> None:
        nonlocal runs
        runs += 1
        if runs < 3:
            raise RuntimeError("camera adapter blew up")
        restarted.set()
        await asyncio.Event().wait()

    async def steady() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0)

    supervisor = Supervisor(sleep=no_wait)
    supervisor.start("flaky", flaky)
    supervisor.start("steady", steady)
    async with asyncio.timeout(5):
        await restarted.wait()
    status = supervisor.status()
    assert status["flaky"].crashes == 2
    assert supervisor.crashes["flaky"] == 2
    assert status["flaky"].running is True
    assert "camera adapter blew up" in str(status["flaky"].last_error)
    assert status["steady"].running is True
    assert ticks > 0
    await supervisor.stop()
    assert supervisor.status() == {}


async def test_stop_cancels_parts_that_wait_forever() -> None:
    cancelled = asyncio.Event()

    async def forever() -> None:
        try:
            await asyncio.Event().wait()
        finally:
            cancelled.set()

    supervisor = Supervisor()
    supervisor.start("forever", forever)
    await asyncio.sleep(0)
    await supervisor.stop(grace_s=1.0)
    assert cancelled.is_set()


async def test_a_part_waiting_for_its_restart_is_not_running() -> None:
    crashed = asyncio.Event()
    hold = asyncio.Event()

    async def held(_: float) -> None:
        crashed.set()
        await hold.wait()

    async def broken() -> None:
        raise RuntimeError("poisoned")

    supervisor = Supervisor(sleep=held)
    supervisor.start("broken", broken)
    async with asyncio.timeout(5):
        await crashed.wait()
    assert supervisor.status()["broken"].running is False
    await supervisor.stop()


async def test_short_tasks_are_owned_their_crashes_counted_and_cancelled_at_stop() -> None:
    supervisor = Supervisor()
    cancelled = asyncio.Event()

    async def crash() -> None:
        raise ValueError("bad picture")

    async def linger() -> None:
        try:
            await asyncio.Event().wait()
        finally:
            cancelled.set()

    failing = supervisor.spawn("alarm-pictures", crash())
    supervisor.spawn("alarm-pictures", linger())
    await asyncio.wait([failing])
    assert supervisor.crashes["alarm-pictures"] == 1
    assert len(supervisor.tasks) == 1
    await supervisor.stop()
    assert cancelled.is_set()
    assert len(supervisor.tasks) == 0
