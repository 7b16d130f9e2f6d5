"""Property-based hostile input (hypothesis): whatever arrives on a button topic, every payload profile answers with
a meaning or a PayloadError, never another exception; whatever an installer writes, the config loader answers with
a config or a ConfigError listing `file:line` problems."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adapters.mqtt import profiles
from adapters.mqtt.profiles import Availability, Heartbeat, PayloadError, Press
from adapters.mqtt.signed import Accepted, Refusal, verify
from gateway.domain.config import GatewayConfig, parse_config
from gateway.domain.errors import ConfigError

KINDS = sorted(
    {
        route.kind
        for route in profiles.routes(
            "huxiao",
            "51040200001",
            [
                GatewayConfig.model_validate(
                    {
                        "school": {"id": "51040200001", "name": "x"},
                        "buttons": [{"id": f"b{p}", "name": "b", "profile": p}],
                    }
                ).buttons[0]
                for p in ("huxiao", "plain", "zigbee2mqtt", "shelly", "tasmota")
            ],
        ).values()
    }
)
# Keys the decoders look at, so generated objects reach past the first check.
KEYS = [
    "id",
    "type",
    "ts",
    "seq",
    "mac",
    "action",
    "click",
    "state",
    "event",
    "event_cnt",
    "method",
    "params",
    "events",
    "Button1",
    "Action",
    "battery",
]
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False)
    | st.text(max_size=30)
    | st.sampled_from(
        ["panic", "test", "cancel", "single", "double", "S", "SS", "NotifyEvent", "online", "9999-12-31"]
    ),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(st.sampled_from(KEYS) | st.text(max_size=8), children, max_size=6)
    ),
    max_leaves=20,
)
FAST = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def meaning_or_payload_error(kind: str, payload: bytes) -> None:
    try:
        meaning = profiles.decode(kind, payload)
    except PayloadError:
        return
    assert isinstance(meaning, Press | Availability | Heartbeat)


@FAST
@given(kind=st.sampled_from(KINDS), payload=st.binary(max_size=2048))
def test_any_bytes_on_any_profile_topic(kind: str, payload: bytes) -> None:
    meaning_or_payload_error(kind, payload)


@FAST
@given(kind=st.sampled_from(KINDS), value=json_values)
def test_any_json_on_any_profile_topic(kind: str, value: Any) -> None:
    meaning_or_payload_error(kind, json.dumps(value).encode())


@FAST
@given(kind=st.sampled_from(KINDS), depth=st.integers(1, 100_000), opener=st.sampled_from([b"[", b"{", b'{"a":']))
def test_deep_nesting_on_any_profile_topic(kind: str, depth: int, opener: bytes) -> None:
    meaning_or_payload_error(kind, opener * min(depth, 16 * 1024 // len(opener)))


@FAST
@given(payload=st.binary(max_size=2048) | json_values.map(lambda v: json.dumps(v).encode()))
def test_signed_verification_never_raises(payload: bytes) -> None:
    verdict = verify(payload, button_id="b", secret="s", last=None, now=datetime.now(UTC), past_s=40, future_s=20)
    assert isinstance(verdict, Accepted | Refusal)


def config_or_config_error(text: str) -> None:
    problems: list[str] = []
    try:
        parse_config(text, "gw.yaml", env={"SECRET": "x"})
    except ConfigError as exc:
        problems = exc.problems or ["(a ConfigError with no problem listed)"]
    assert all(p.startswith("gw.yaml:") for p in problems), problems


@FAST
@given(text=st.text(max_size=400))
def test_any_text_as_a_config_file(text: str) -> None:
    config_or_config_error(text)


VALID: dict[str, Any] = {
    "school": {"id": "51040200001", "name": "一小", "students": 300},
    "mqtt": {"url": "mqtt://127.0.0.1:1883", "password": "${SECRET}"},
    "polling": {"interval": "30s", "timeout": "5s"},
    "cameras": [{"id": "gate-1", "name": "校门口", "onvif": "http://127.0.0.1:8001/onvif/device_service"}],
    "buttons": [{"id": "guard-room", "name": "门卫室", "cameras": ["gate-1"], "flood": {"presses": 5}}],
    "upstreams": [{"name": "police", "kind": "http", "url": "http://127.0.0.1:9000/alarms"}],
    "web": {"listen": "127.0.0.1:8080"},
}


def _paths(node: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [path]
    if isinstance(node, dict):
        for key, value in node.items():
            found += _paths(value, (*path, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            found += _paths(value, (*path, index))
    return found


PATHS = _paths(VALID)[1:]


def _mutated(path: tuple[Any, ...], value: Any, how: str) -> Any:
    document = json.loads(json.dumps(VALID))
    parent = document
    for part in path[:-1]:
        parent = parent[part]
    last = path[-1]
    if how == "replace":
        parent[last] = value
    elif how == "delete" and isinstance(parent, dict):
        del parent[last]
    elif how == "rename" and isinstance(parent, dict):
        parent[f"{last}x"] = parent.pop(last)
    return document


@FAST
@given(
    path=st.sampled_from(PATHS),
    value=json_values | st.sampled_from(["${UNSET}", "-5s", "0", "mqtt://", "http://[::1", "../../etc", "\x00"]),
    how=st.sampled_from(["replace", "delete", "rename"]),
)
def test_every_kind_of_mistake_in_a_valid_config(path: tuple[Any, ...], value: Any, how: str) -> None:
    config_or_config_error(yaml.safe_dump(_mutated(path, value, how), allow_unicode=True))
