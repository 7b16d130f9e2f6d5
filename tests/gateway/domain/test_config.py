"""The installer's checks on a config file: every mistake named with its file and line."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.domain.config import HttpUpstreamConfig, load_config, parse_config
from gateway.domain.errors import ConfigError
from tests.fixtures.paths import REPO

MINIMAL = 'school: {id: "51040200001", name: 攀枝花市第一小学}\n'


def problems_of(text: str, env: dict[str, str] | None = None) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse_config(text, "school.yaml", env or {})
    return caught.value.problems


def test_example_config_is_valid_and_shows_every_section() -> None:
    config = load_config(REPO / "config" / "example.yaml", env={})
    assert config.school.name == "攀枝花市第一小学"
    assert config.polling.interval == 30.0
    assert config.patrol.interval == 600.0
    assert [c.id for c in config.cameras] == ["gate-1", "corridor-2", "playground"]
    assert config.buttons[0].cameras == ["gate-1"]
    assert {u.name for u in config.upstreams} == {"police", "education"}
    raw = (REPO / "config" / "example.yaml").read_text(encoding="utf-8")
    for section in type(config).model_fields:
        assert f"\n{section}:" in raw or raw.startswith(f"{section}:"), section


def test_minimal_config_gets_sensible_defaults() -> None:
    config = parse_config(MINIMAL, env={})
    assert config.targets.networking_rate == 0.80
    assert config.polling.offline_after == 3
    assert config.mqtt.port == 1883
    assert config.web.port == 8080


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("30s", 30.0), ("5m", 300.0), ("2h", 7200.0), ("1d", 86400.0), ("250ms", 0.25), (45, 45.0)],
)
def test_durations(text: object, seconds: float) -> None:
    config = parse_config(MINIMAL + f"polling: {{interval: {text}}}\n", env={})
    assert config.polling.interval == seconds


def test_env_substitution_fills_secrets_and_never_shows_them() -> None:
    text = MINIMAL + 'upstreams:\n  - {name: police, kind: http, url: "http://127.0.0.1:9000/a", secret: "${S}"}\n'
    config = parse_config(text, env={"S": "hunter2-secret"})
    upstream = config.upstreams[0]
    assert isinstance(upstream, HttpUpstreamConfig)
    secret = upstream.secret
    assert secret is not None
    assert secret.get_secret_value() == "hunter2-secret"
    assert "hunter2" not in repr(config)
    assert "hunter2" not in str(config.model_dump())


def test_missing_env_variable_is_named_with_its_line() -> None:
    text = MINIMAL + 'mqtt:\n  password: "${MQTT_PASSWORD}"\n'
    assert problems_of(text) == ["school.yaml:3: mqtt.password: environment variable MQTT_PASSWORD is not set"]


def test_env_default_is_used_when_unset() -> None:
    config = parse_config(MINIMAL + 'mqtt: {username: "${U:-gw}"}\n', env={})
    assert config.mqtt.username == "gw"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (MINIMAL + "polling:\n  intervall: 30s\n", "school.yaml:3: polling.intervall: unknown key"),
        (MINIMAL + "polling:\n  offline_after: three\n", "school.yaml:3: polling.offline_after: Input should be"),
        (MINIMAL + "polling:\n  interval: 30 seconds\n", "school.yaml:3: polling.interval: expected a duration"),
        (
            MINIMAL + "cameras:\n  - {id: a, name: 门口, onvif: 'ftp://127.0.0.1/x'}\n",
            "school.yaml:3: cameras[0].onvif: expected a http:// or https:// URL",
        ),
        (
            MINIMAL + "cameras:\n  - {id: a, name: 门口, rtsp: 'rtsp://127.0.0.1:99999/x'}\n",
            "school.yaml:3: cameras[0].rtsp: URL has a bad port",
        ),
        (
            MINIMAL + "cameras:\n  - {id: a, name: 门口, rtsp: 'rtsp://127.0.0.1/a'}\n"
            "  - {id: a, name: 又一个, rtsp: 'rtsp://127.0.0.1/b'}\n",
            "school.yaml:4: cameras[1].id: duplicate camera id 'a'",
        ),
        (
            MINIMAL + "buttons:\n  - {id: b, name: 门卫室}\n  - {id: b, name: 办公室}\n",
            "school.yaml:4: buttons[1].id: duplicate button id 'b'",
        ),
        (
            MINIMAL + "cameras:\n  - {id: a, name: 门口, rtsp: 'rtsp://127.0.0.1/a'}\n"
            "buttons:\n  - id: b\n    name: 门卫室\n    cameras:\n      - a\n      - gate-9\n",
            "school.yaml:9: buttons[0].cameras[1]: button 'b' links unknown camera 'gate-9'",
        ),
        (MINIMAL + "upstreams:\n  - {name: p, kind: fax}\n", "school.yaml:3: upstreams[0]: Input tag 'fax'"),
        (
            MINIMAL + "upstreams:\n  - {name: p, kind: http, url: 'http:///nohost'}\n",
            "school.yaml:3: upstreams[0].url: URL has no host",
        ),
        (MINIMAL + "mqtt: {url: 'tcp://127.0.0.1'}\n", "school.yaml:2: mqtt.url: expected a mqtt:// or mqtts://"),
        ("school: {name: 一小}\n", "school.yaml:1: school.id: required key is missing"),
        ("cameras: []\n", "school.yaml:1: school: required key is missing"),
        (MINIMAL + "web: {}\nweb: {}\n", "school.yaml:3: web: key appears twice"),
        ("school: [unclosed\n", "school.yaml:2: YAML syntax error"),
        ("", "school.yaml:1: the file is empty"),
        ("- just\n- a list\n", "school.yaml:1: the top level must be a mapping"),
    ],
)
def test_each_mistake_is_named_with_file_line_and_key(text: str, expected: str) -> None:
    problems = problems_of(text)
    assert any(p.startswith(expected) for p in problems), problems


def test_all_mistakes_are_reported_at_once_in_file_order() -> None:
    text = (
        MINIMAL
        + "polling: {interval: soon}\n"
        + "cameras:\n  - {id: a, name: 门口}\n"
        + "buttons:\n  - {id: b, name: 门卫, cameras: [zz]}\n"
    )
    problems = problems_of(text)
    assert [p.split(":")[1] for p in problems] == ["2", "4", "6"]


def test_unreadable_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(tmp_path / "missing.yaml")
    assert "cannot read the file" in caught.value.problems[0]
