"""The second-wave upstream keys: `mqtt` upstreams and status reports (`reports`, `report_every`, `report_url`)."""

from __future__ import annotations

import pytest

from gateway.domain.config import HttpUpstreamConfig, MqttUpstreamConfig, parse_config
from gateway.domain.errors import ConfigError

HEAD = 'school: {id: "51040200001", name: 攀枝花市第一小学}\nupstreams:\n'


def test_reports_go_beside_the_alarms_unless_a_report_url_is_given() -> None:
    config = parse_config(
        HEAD + '  - {name: city, kind: http, url: "http://127.0.0.1:9000/api/alarms?x=1", reports: true}\n'
        '  - {name: other, kind: http, url: "http://127.0.0.1:9001/in", report_url: "http://127.0.0.1:9002/r"}\n',
        env={},
    )
    city, other = config.upstreams
    assert isinstance(city, HttpUpstreamConfig)
    assert isinstance(other, HttpUpstreamConfig)
    assert city.reports
    assert city.report_every == 30.0
    assert city.reports_to == "http://127.0.0.1:9000/api/reports"
    assert not other.reports
    assert other.reports_to == "http://127.0.0.1:9002/r"


def test_an_mqtt_upstream_has_its_broker_topic_and_report_cadence() -> None:
    config = parse_config(
        HEAD + '  - {name: city, kind: mqtt, url: "mqtt://127.0.0.1:1884", topic: huxiao/events, '
        "reports: true, report_every: 1m}\n",
        env={},
    )
    (city,) = config.upstreams
    assert isinstance(city, MqttUpstreamConfig)
    assert (city.host, city.port, city.topic, city.report_every) == ("127.0.0.1", 1884, "huxiao/events", 60.0)


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ('{name: c, kind: mqtt, url: "http://127.0.0.1:1"}', "expected a mqtt:// or mqtts:// URL"),
        ('{name: c, kind: mqtt, url: "mqtt://127.0.0.1:1", topic: "a/#"}', "topic"),
        ('{name: c, kind: http, url: "http://127.0.0.1:1/a", report_url: "ftp://x/r"}', "report_url"),
        ('{name: c, kind: http, url: "http://127.0.0.1:1/a", report_every: soon}', "expected a duration"),
        ('{name: c, kind: mqtt, url: "mqtt://127.0.0.1:1", reprots: true}', "unknown key"),
    ],
)
def test_mistakes_in_the_new_keys_are_reported_with_their_line(line: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as caught:
        parse_config(HEAD + f"  - {line}\n", "school.yaml", env={})
    assert caught.value.problems[0].startswith("school.yaml:3:")
