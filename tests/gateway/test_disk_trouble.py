"""An alarm the disk cannot take still reaches the police: a full disk and a read-only one, made real.

The database sits on a small filesystem of its own (a 4 MiB tmpfs filled to the last byte; an ext4 image on a loop
device that the kernel turns read-only after an error, as it does for a failing disk), with a real Mosquitto and a
real platform receiver. The press goes to the platform from memory at once, the failure follows as an event of its
own, and once the disk works again the broker's redelivery lands on disk under the same CloudEvents id, not sent a
second time; what was stored before survives, and SQLite's `integrity_check` says ok.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import sqlite3
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from gateway.domain.config import GatewayConfig, parse_config
from gateway.domain.events import STORAGE_FAILED
from simulators.broker import MosquittoBroker
from simulators.buttons import SimulatedButton
from simulators.platform import PlatformReceiver, Received
from tests.fixtures.mosquitto import broker
from tests.fixtures.platform import PLATFORM_SECRET, platform
from tests.fixtures.waiting import eventually
from tests.gateway.test_health import becomes, gateway, health, small_disk

__all__ = ["broker", "platform", "small_disk"]
SCHOOL = "51040200001"
PANIC = "cn.huxiao.alarm.panic"
BUTTON_SECRET = "b3-secret-on-a-broken-disk"
POLICY_S = 2.0  # an alarm reaches the police within 2 s (DB15/T 3968-2025), disk or no disk


def config_for(db: Path, broker: MosquittoBroker, platform_url: str) -> GatewayConfig:
    document = {
        "school": {"id": SCHOOL, "name": "一小"},
        "storage": {"path": str(db)},
        "mqtt": {"url": broker.url, "client_id": f"gw-{db.parent.parent.name}"},
        "buttons": [
            {"id": "b1", "name": "门卫室", "heartbeat_timeout": "1h"},
            # A device that sends no id of its own: its redelivery is recognised by the payload digest.
            {"id": "b2", "name": "传达室", "profile": "plain", "heartbeat_timeout": "1h"},
            # A signed button: its sequence number cannot be recorded either, and the press must not wait for that.
            {"id": "b3", "name": "校长室", "secret": "${BTN_SECRET}", "heartbeat_timeout": "1h"},
        ],
        "upstreams": [
            {"name": "police", "kind": "http", "url": platform_url, "secret": PLATFORM_SECRET, "retry_max": "1s"}
        ],
        "web": {"listen": "127.0.0.1:0"},
    }
    return parse_config(json.dumps(document), env={"BTN_SECRET": BUTTON_SECRET})


def fill(disk: Path) -> Path:
    """Write zeros until the filesystem says it is full; returns the file to delete to make room again."""
    filler = disk / "filler"
    with contextlib.suppress(OSError), filler.open("wb") as sink:
        while True:
            sink.write(b"\0" * 65536)
    return filler


async def counters(base: str) -> dict[str, float]:
    async with aiohttp.ClientSession() as http, http.get(base + "/metrics") as response:
        text = await response.text()
    return {s.name: s.value for family in text_string_to_metric_families(text) for s in family.samples}


def alarms_for(receiver: PlatformReceiver, button_event_id: str) -> list[Received]:
    return [e for e in receiver.events if e.data.get("button_event_id") == button_event_id]


def stored_rows(db: Path) -> dict[str, tuple[str, str | None]]:
    """CloudEvents id → (button event id, police delivery state), read from the gateway's own database."""
    with contextlib.closing(sqlite3.connect(db)) as conn:
        rows = conn.execute(
            "SELECT e.id, e.button_event_id, d.state FROM events e "
            "LEFT JOIN deliveries d ON d.event_seq = e.seq AND d.upstream = 'police'"
        ).fetchall()
    return {str(i): (str(b), None if s is None else str(s)) for i, b, s in rows}


def integrity(db: Path) -> str:
    with contextlib.closing(sqlite3.connect(db)) as conn:
        return str(conn.execute("PRAGMA integrity_check").fetchone()[0])


async def police_refused(base: str) -> None:
    """Until the gateway has tried the police platform and been refused (its health part says so, at its next
    evaluation: within 15 s on a loaded machine)."""
    deadline = time.monotonic() + 15
    while (await health(base))[1]["parts"]["upstream:police"]["ok"]:
        assert time.monotonic() < deadline, "the police platform was never tried"
        await asyncio.sleep(0.05)


async def stored_before(receiver: PlatformReceiver, button: SimulatedButton) -> str:
    """One press while the disk still works, through to the platform, as every test here starts; its event id."""
    before = button.press()
    await eventually(lambda: len(alarms_for(receiver, before)) == 1, 5, "the alarm stored before")
    return before


async def press_while_broken(
    receiver: PlatformReceiver, button: SimulatedButton, plain: SimulatedButton, base: str, error_word: str
) -> tuple[Received, Received]:
    """Press both buttons on the broken disk: each alarm at the platform within 2 s, then the failure event."""
    pressed = time.time()
    event_id = button.press()
    await eventually(lambda: len(alarms_for(receiver, event_id)) == 1, POLICY_S, "the alarm at the police")
    (alarm,) = alarms_for(receiver, event_id)
    assert alarm.at - pressed <= POLICY_S
    assert await asyncio.to_thread(button.wait_for_ack, event_id, "received", 5)
    assert await asyncio.to_thread(button.wait_for_ack, event_id, "delivered", 5)

    await eventually(lambda: any(e.type == STORAGE_FAILED for e in receiver.events), 5, "the storage-failed event")
    (failure,) = [e for e in receiver.events if e.type == STORAGE_FAILED]
    assert error_word in failure.data["error"]
    assert [a["id"] for a in failure.data["alarms"]] == [alarm.id]
    assert failure.data["alarms"][0]["button_event_id"] == event_id

    plain_pressed = time.time()
    plain.press()
    await eventually(lambda: any(e.data.get("button", {}).get("id") == "b2" for e in receiver.events), POLICY_S)
    (plain_alarm,) = [e for e in receiver.events if e.data.get("button", {}).get("id") == "b2"]
    assert plain_alarm.at - plain_pressed <= POLICY_S
    # One failure, one event: the second refused commit does not raise it again.
    assert [e.type for e in receiver.events].count(STORAGE_FAILED) == 1

    code, body = await health(base)
    assert code == 503
    assert body["parts"]["storage"]["ok"] is False
    figures = await counters(base)
    assert figures["huxiao_alarms_unstored_total"] == 2
    assert figures["huxiao_storage_failures_total"] >= 2
    return alarm, plain_alarm


async def test_a_full_disk_sends_the_alarm_from_memory_and_stores_it_once_room_is_made(
    small_disk: Path, broker: MosquittoBroker, platform: tuple[PlatformReceiver, str]
) -> None:
    receiver, url = platform
    db = small_disk / "gw.db"
    button = SimulatedButton("b1", broker.port, school_id=SCHOOL)
    plain = SimulatedButton("b2", broker.port, school_id=SCHOOL, profile="plain")
    async with gateway(config_for(db, broker, url)) as base:
        await becomes(base, "ok", 10, "healthy")
        await asyncio.to_thread(button.connect)
        await asyncio.to_thread(plain.connect)
        try:
            before = await stored_before(receiver, button)
            filler = fill(small_disk)
            alarm, plain_alarm = await press_while_broken(receiver, button, plain, base, "No space left on device")
            assert not any(i in stored_rows(db) for i in (alarm.id, plain_alarm.id))

            filler.unlink()
            await becomes(base, "ok", 10, "healthy after room was made")
            # The broker sends the unacknowledged presses again; they land on disk under the ids the police have,
            # marked delivered there without a second send.
            await eventually(
                lambda: (
                    {stored_rows(db).get(alarm.id), stored_rows(db).get(plain_alarm.id)}
                    == {
                        (alarm.data["button_event_id"], "delivered"),
                        (plain_alarm.data["button_event_id"], "delivered"),
                    }
                ),
                10,
                "both alarms stored and marked delivered",
            )
        finally:
            button.disconnect()
            plain.disconnect()
        assert [e.type for e in receiver.events].count(PANIC) == 3  # before, b1 and b2: each once
        assert receiver.duplicates == 0
    assert before in {b for b, _state in stored_rows(db).values()}
    assert integrity(db) == "ok"


async def test_a_signed_press_on_a_full_disk_reaches_the_police_and_is_stored_once_with_its_sequence(
    small_disk: Path, broker: MosquittoBroker, platform: tuple[PlatformReceiver, str]
) -> None:
    receiver, url = platform
    db = small_disk / "gw.db"
    button = SimulatedButton("b3", broker.port, school_id=SCHOOL, secret=BUTTON_SECRET)
    async with gateway(config_for(db, broker, url)) as base:
        await becomes(base, "ok", 10, "healthy")
        await asyncio.to_thread(button.connect)
        try:
            await stored_before(receiver, button)
            filler = fill(small_disk)
            pressed = time.time()
            event_id = button.press()
            await eventually(lambda: len(alarms_for(receiver, event_id)) == 1, POLICY_S, "the signed alarm")
            (alarm,) = alarms_for(receiver, event_id)
            assert alarm.at - pressed <= POLICY_S
            filler.unlink()
            await eventually(lambda: stored_rows(db).get(alarm.id) == (event_id, "delivered"), 10, "stored later")
        finally:
            button.disconnect()
        assert len(alarms_for(receiver, event_id)) == 1
        assert receiver.duplicates == 0
    with contextlib.closing(sqlite3.connect(db)) as conn:
        assert conn.execute("SELECT event_id FROM button_sequences WHERE button_id = 'b3'").fetchone() == (event_id,)
    assert integrity(db) == "ok"


async def test_a_press_sent_from_memory_to_a_platform_that_is_down_is_delivered_once_after_it_lands_on_disk(
    small_disk: Path, broker: MosquittoBroker, platform: tuple[PlatformReceiver, str]
) -> None:
    receiver, url = platform
    db = small_disk / "gw.db"
    button = SimulatedButton("b1", broker.port, school_id=SCHOOL)
    async with gateway(config_for(db, broker, url)) as base:
        await becomes(base, "ok", 10, "healthy")
        await asyncio.to_thread(button.connect)
        try:
            await stored_before(receiver, button)
            receiver.fail_with = 503
            filler = fill(small_disk)
            event_id = button.press()
            await police_refused(base)
            # The memory copy is retrying when the disk comes back and the broker's redelivery is stored.
            filler.unlink()
            await eventually(lambda: any(b == event_id for b, _state in stored_rows(db).values()), 10, "stored")
            ((stored_id, (_b, state)),) = [(i, r) for i, r in stored_rows(db).items() if r[0] == event_id]
            assert state == "pending"
            assert alarms_for(receiver, event_id) == []
            receiver.fail_with = None
            await eventually(lambda: stored_rows(db)[stored_id][1] == "delivered", 10, "delivered and marked")
        finally:
            button.disconnect()
        (alarm,) = alarms_for(receiver, event_id)
        assert alarm.id == stored_id
        assert receiver.duplicates == 0
        # The failure event waits its own back-off in the gateway's queue; it arrives once, too.
        await eventually(lambda: any(e.type == STORAGE_FAILED for e in receiver.events), 5, "the failure event")
        types = [e.type for e in receiver.events]
        assert (types.count(PANIC), types.count(STORAGE_FAILED)) == (2, 1)  # the press before, and this one
    assert integrity(db) == "ok"


async def test_a_press_sent_from_memory_keeps_its_id_when_the_gateway_restarts_before_the_disk_is_back(
    small_disk: Path, broker: MosquittoBroker, platform: tuple[PlatformReceiver, str]
) -> None:
    """The gateway stops while a press lives only in its memory (the police have it, the disk does not): after the
    restart the broker sends the press again, and it is stored and forwarded under the id the police already have,
    so their dedupe by id shows one alarm, not two."""
    receiver, url = platform
    db = small_disk / "gw.db"
    config = config_for(db, broker, url)
    button = SimulatedButton("b1", broker.port, school_id=SCHOOL)
    try:
        async with gateway(config) as base:
            await becomes(base, "ok", 10, "healthy")
            await asyncio.to_thread(button.connect)
            await stored_before(receiver, button)
            filler = fill(small_disk)
            event_id = button.press()
            await eventually(lambda: len(alarms_for(receiver, event_id)) == 1, POLICY_S, "the alarm at the police")
            (alarm,) = alarms_for(receiver, event_id)
        assert alarm.id not in stored_rows(db)
        filler.unlink()
        async with gateway(config):
            await eventually(
                lambda: stored_rows(db).get(alarm.id) == (event_id, "delivered"), 10, "stored under the same id"
            )
    finally:
        button.disconnect()
    # Repeats of an id the platform has are dropped there (the restart resends what it could not mark delivered on
    # the full disk); what counts is that each press reached the police under one id.
    assert {a.id for a in alarms_for(receiver, event_id)} == {alarm.id}
    assert len({e.id for e in receiver.events if e.type == PANIC}) == 2  # the press before, and this one
    assert integrity(db) == "ok"


@pytest.fixture
def failing_disk(tmp_path: Path) -> Iterator[tuple[Path, Path]]:
    """An 8 MiB ext4 image on a loop device, mounted `errors=remount-ro`; yields (mount point, error trigger)."""
    if os.geteuid() != 0 or shutil.which("mkfs.ext4") is None or shutil.which("losetup") is None:
        pytest.skip("an ext4 loop mount needs root and e2fsprogs (CI and the dev machine run as root)")
    image, mount = tmp_path / "disk.img", tmp_path / "disk"
    mount.mkdir()
    with image.open("wb") as sink:
        sink.truncate(8 * 1024 * 1024)
    subprocess.run(["mkfs.ext4", "-q", "-F", str(image)], check=True)
    subprocess.run(["mount", "-o", "loop,errors=remount-ro", str(image), str(mount)], check=True)
    try:
        device = subprocess.run(
            ["findmnt", "-n", "-o", "SOURCE", str(mount)], check=True, capture_output=True, text=True
        ).stdout.strip()
        trigger = Path("/sys/fs/ext4") / Path(device).name / "trigger_fs_error"
        if not trigger.exists():
            pytest.skip(f"this kernel has no {trigger} to make ext4 fail")
        yield mount, trigger
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def remount_after_check(image_mount: Path) -> None:
    """Unmount the failed filesystem, let e2fsck repair what the error marked, and mount it again read-write."""
    device = subprocess.run(
        ["findmnt", "-n", "-o", "SOURCE", str(image_mount)], check=True, capture_output=True, text=True
    ).stdout.strip()
    image = Path(
        subprocess.run(
            ["losetup", "-n", "-O", "BACK-FILE", device], check=True, capture_output=True, text=True
        ).stdout.strip()
    )
    subprocess.run(["umount", str(image_mount)], check=True)
    fsck = subprocess.run(["e2fsck", "-fy", str(image)], capture_output=True, text=True)
    assert fsck.returncode in (0, 1), fsck.stdout + fsck.stderr  # 1: errors corrected
    subprocess.run(["mount", "-o", "loop", str(image), str(image_mount)], check=True)


async def test_a_disk_gone_read_only_sends_the_alarm_from_memory_and_loses_nothing_stored(
    failing_disk: tuple[Path, Path], broker: MosquittoBroker, platform: tuple[PlatformReceiver, str]
) -> None:
    receiver, url = platform
    mount, trigger = failing_disk
    db = mount / "gw.db"
    button = SimulatedButton("b1", broker.port, school_id=SCHOOL)
    plain = SimulatedButton("b2", broker.port, school_id=SCHOOL, profile="plain")
    async with gateway(config_for(db, broker, url)) as base:
        await becomes(base, "ok", 10, "healthy")
        await asyncio.to_thread(button.connect)
        await asyncio.to_thread(plain.connect)
        try:
            before = await stored_before(receiver, button)
            await eventually(
                lambda: stored_rows(db).get(alarms_for(receiver, before)[0].id, ("", ""))[1] == "delivered"
            )
            # What the kernel does when a disk fails under ext4: the filesystem goes read-only under open files.
            trigger.write_text("huxiao test: the disk failed\n")
            alarm, plain_alarm = await press_while_broken(receiver, button, plain, base, "Read-only file system")
            assert "Read-only file system" in (await health(base))[1]["parts"]["storage"]["detail"]
        finally:
            button.disconnect()
            plain.disconnect()
    remount_after_check(mount)
    rows = stored_rows(db)
    assert alarms_for(receiver, before)[0].id in rows
    assert alarm.id not in rows
    assert plain_alarm.id not in rows
    assert integrity(db) == "ok"
