"""The center's config file: every mistake at once, each with its line, like the gateway's."""

from __future__ import annotations

import pytest

from center.config import parse_center_config
from gateway.domain.errors import ConfigError

BAD = """center: {listen: "127.0.0.1:9000", colour: blue}
storage: {url: "mysql://x/y"}
targets: {networking_rate: 1.5}
schools:
  - {id: "51040200001", name: 一小, secret: "${NOT_SET}"}
  - {id: "51040200001", name: 二小}
  - {id: "abc", name: 三小}
mqtt: {url: "http://127.0.0.1:1883", share: "a/b"}
"""


def test_every_mistake_is_reported_with_its_line() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_center_config(BAD, "center.yaml", env={})
    problems = caught.value.problems
    expected = [
        "center.yaml:1: center.colour: unknown key",
        "center.yaml:2: storage.url: expected a sqlite:/// or postgresql:// URL",
        "center.yaml:3: targets.networking_rate:",
        "center.yaml:5: schools[0].secret: environment variable NOT_SET is not set",
        "center.yaml:6: schools[1].id: duplicate school id '51040200001'",
        "center.yaml:7: schools[2].id:",
        "center.yaml:8: mqtt.url: expected a mqtt:// or mqtts:// URL",
        "center.yaml:8: mqtt.share:",
    ]
    for start in expected:
        assert any(p.startswith(start) for p in problems), (start, problems)


def test_a_good_config_gives_secrets_from_the_environment_and_defaults() -> None:
    config = parse_center_config(
        'schools:\n  - {id: "51040200001", name: 一小, district: 东区, secret: "${S}"}\n', "c.yaml", env={"S": "x1"}
    )
    school = config.school("51040200001")
    assert school is not None
    assert school.secret is not None
    assert school.secret.get_secret_value() == "x1"
    assert "x1" not in repr(config)
    assert config.storage.url.startswith("sqlite:///")
    assert (config.targets.networking_rate, config.targets.compliant_share) == (0.8, 0.8)
    assert config.mqtt is None
