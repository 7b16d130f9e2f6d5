"""A press's CloudEvents id: the same message gives the same id; anything that makes it another press, another id."""

from __future__ import annotations

import json
import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from gateway.domain.config import parse_config
from gateway.domain.events import AlarmType, ButtonPress, press_event_id
from gateway.services.alarm_events import AlarmEvents

AT = datetime(2026, 12, 2, 8, 30, tzinfo=UTC)
PRESS = ButtonPress("b1", "evt-17", AlarmType.PANIC, AT, AT, device_time=AT)


def test_the_same_message_received_again_later_keeps_its_id() -> None:
    again = replace(PRESS, received_at=AT + timedelta(minutes=5), pressed_at=AT + timedelta(minutes=5))
    assert press_event_id("s1", again) == press_event_id("s1", PRESS)
    assert uuid.UUID(press_event_id("s1", PRESS)).version == 5


def test_another_school_button_type_event_or_device_time_is_another_id() -> None:
    others = [
        ("s2", PRESS),
        ("s1", replace(PRESS, button_id="b2")),
        ("s1", replace(PRESS, type=AlarmType.CANCEL)),
        ("s1", replace(PRESS, event_id="evt-18")),
        # a button that counts its ids from 1 again after a new battery: its clock tells the presses apart
        ("s1", replace(PRESS, device_time=AT + timedelta(days=40))),
        ("s1", replace(PRESS, device_time=None)),
    ]
    ids = {press_event_id(school, press) for school, press in others}
    assert len(ids) == len(others)
    assert press_event_id("s1", PRESS) not in ids


def test_the_alarm_path_names_a_press_by_its_derived_id() -> None:
    config = parse_config(
        json.dumps({"school": {"id": "51040200001", "name": "一小"}, "buttons": [{"id": "b1", "name": "门卫室"}]})
    )
    made = AlarmEvents(config).press(config.buttons[0], PRESS)
    assert made.event_id == press_event_id("51040200001", PRESS)
