"""Button payload profiles, fed with the payloads each device family publishes (tests/data/buttons/*.json)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from adapters.mqtt.profiles import (
    MAX_PAYLOAD_BYTES,
    Availability,
    ButtonMessage,
    Heartbeat,
    PayloadError,
    Press,
    decode,
    derived_event_id,
    routes,
)
from gateway.domain.config import ButtonConfig
from tests.fixtures.paths import DATA

DATA = DATA / "buttons"
SCHOOL = "51040200001"


def _cases() -> list[Any]:
    params = []
    for path in sorted(DATA.glob("*.json")):
        document = json.loads(path.read_text(encoding="utf-8"))
        button = ButtonConfig(name="按钮", **document["button"])
        for index, case in enumerate(document["cases"]):
            params.append(pytest.param(button, case, id=f"{path.stem}-{index}"))
    return params


def _described(message: ButtonMessage) -> dict[str, Any]:
    if isinstance(message, Press):
        return {
            "kind": "press",
            "type": message.type.value,
            "event_id": message.event_id,
            "pressed_at": message.pressed_at.astimezone(UTC).isoformat() if message.pressed_at else None,
        }
    if isinstance(message, Availability):
        return {"kind": "availability", "online": message.online}
    assert isinstance(message, Heartbeat)
    return {"kind": "heartbeat"}


@pytest.mark.parametrize(("button", "case"), _cases())
def test_each_captured_payload_means_what_the_device_meant(button: ButtonConfig, case: dict[str, Any]) -> None:
    route = routes("huxiao", SCHOOL, [button]).get(case["topic"])
    assert route is not None, f"the gateway does not subscribe to {case['topic']}"
    assert route.button_id == button.id
    expected = case["expect"]
    if expected["kind"] == "error":
        with pytest.raises(PayloadError):
            decode(route.kind, case["payload"].encode())
        return
    got = _described(decode(route.kind, case["payload"].encode()))
    assert {key: got[key] for key in expected} == expected


def test_every_profile_has_data() -> None:
    profiles = {json.loads(p.read_text(encoding="utf-8"))["button"]["profile"] for p in DATA.glob("*.json")}
    assert profiles == {"huxiao", "plain", "zigbee2mqtt", "shelly", "tasmota"}


def test_default_topics_per_profile() -> None:
    buttons = [
        ButtonConfig(id="a", name="a", profile="huxiao"),
        ButtonConfig(id="z", name="z", profile="zigbee2mqtt"),
        ButtonConfig(id="s", name="s", profile="shelly"),
        ButtonConfig(id="t", name="t", profile="tasmota"),
    ]
    table = routes("huxiao", SCHOOL, buttons)
    assert {topic for topic, route in table.items() if route.button_id == "a"} == {
        f"huxiao/{SCHOOL}/buttons/a/alarm",
        f"huxiao/{SCHOOL}/buttons/a/status",
        f"huxiao/{SCHOOL}/buttons/a/heartbeat",
    }
    assert "zigbee2mqtt/z" in table
    assert "zigbee2mqtt/z/availability" in table
    assert "shellies/s/input_event/0" in table
    assert "shellies/s/online" in table
    assert "stat/t/RESULT" in table
    assert "tele/t/LWT" in table


@pytest.mark.parametrize("kind", ["alarm", "plain_alarm", "z2m", "shelly_rpc", "tasmota_result", "status"])
def test_a_huge_payload_is_refused_on_every_route(kind: str) -> None:
    huge = b'{"id": "' + b"x" * MAX_PAYLOAD_BYTES + b'"}'
    with pytest.raises(PayloadError, match="refused"):
        decode(kind, huge)


def test_an_alarm_id_longer_than_128_characters_is_refused() -> None:
    with pytest.raises(PayloadError):
        decode("alarm", json.dumps({"id": "x" * 129}).encode())


def test_devices_without_ids_get_one_per_message() -> None:
    at = datetime(2026, 11, 28, 8, 0, tzinfo=UTC)
    first = derived_event_id("z", b'{"action":"single"}', at)
    assert first == derived_event_id("z", b'{"action":"single"}', at)
    assert first != derived_event_id("z", b'{"action":"single"}', at.replace(microsecond=1))
    assert first != derived_event_id("z", b'{"action":"double"}', at)
