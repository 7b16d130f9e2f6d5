"""Where secrets come from (`${ENV}`, `${file:/run/secrets/NAME}`) and how the log formatter blanks them."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from gateway.domain.config import parse_config, secret_values
from gateway.domain.errors import ConfigError
from gateway.logging_setup import RedactingFormatter, hide


def test_a_secret_file_is_read_without_its_trailing_newline(tmp_path: Path) -> None:
    secret = tmp_path / "mqtt_password"
    secret.write_text("s3cret-from-file\n", encoding="utf-8")
    text = f"school: {{id: '51040200001', name: 一小}}\nmqtt: {{username: gw, password: '${{file:{secret}}}'}}\n"
    config = parse_config(text, "gw.yaml", env={})
    assert config.mqtt.password is not None
    assert config.mqtt.password.get_secret_value() == "s3cret-from-file"


def test_a_missing_secret_file_is_a_config_error_with_its_line(tmp_path: Path) -> None:
    text = (
        "school: {id: '51040200001', name: 一小}\n"
        f"mqtt:\n  username: gw\n  password: '${{file:{tmp_path / 'absent'}}}'\n"
    )
    with pytest.raises(ConfigError) as caught:
        parse_config(text, "gw.yaml", env={})
    assert caught.value.problems[0].startswith("gw.yaml:4: mqtt.password: secret file:")
    assert "cannot be read" in caught.value.problems[0]


def test_every_configured_secret_is_blanked_in_log_lines() -> None:
    text = """
school: {id: '51040200001', name: 一小}
mqtt: {username: gw, password: "${P}"}
cameras: [{id: c1, name: c, rtsp: "rtsp://admin:cam-pass-77@127.0.0.1:8554/x"}]
buttons: [{id: b1, name: b, secret: btn-secret-88}]
web: {tokens: {patrol: tok-99-patrol}}
"""
    config = parse_config(text, "gw.yaml", env={"P": "mqtt-pass-66"})
    assert set(secret_values(config)) == {"mqtt-pass-66", "cam-pass-77", "btn-secret-88", "tok-99-patrol"}
    hide(secret_values(config))
    record = logging.LogRecord(
        "x", logging.ERROR, __file__, 1, "failed with %s and %s", ("mqtt-pass-66", "token tok-99-patrol"), None
    )
    line = RedactingFormatter("%(message)s").format(record)
    assert line == "failed with *** and token ***"
