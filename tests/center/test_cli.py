"""`huxiao center -c FILE` as an operator runs it: a real process, a real port, a signed alarm, SIGTERM."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from tests.center.senders import SCHOOL_A, SECRETS, alarm_event, signed
from tests.fixtures.paths import REPO
from tests.fixtures.ports import free_port

START_WITHIN_S = 15.0


def test_the_example_config_is_valid() -> None:
    from center.config import load_center_config

    config = load_center_config(REPO / "config" / "center.yaml", env={})
    assert len(config.schools) == 2


def test_a_bad_config_exits_2_with_file_line_messages(tmp_path: Path) -> None:
    bad = tmp_path / "center.yaml"
    bad.write_text('center: {listen: "127.0.0.1:9000"}\nstorage: {url: "mysql://x/y"}\nschools: []\n', encoding="utf-8")
    result = subprocess.run(
        [sys.executable, "-m", "gateway", "center", "-c", str(bad)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO,
        check=False,
    )
    assert result.returncode == 2
    assert f"{bad}:2: storage.url: expected a sqlite:/// or postgresql:// URL" in result.stderr


def test_huxiao_center_takes_a_signed_alarm_and_stops_on_sigterm(tmp_path: Path) -> None:
    port = free_port()
    config = tmp_path / "center.yaml"
    config.write_text(
        f'center: {{listen: "127.0.0.1:{port}"}}\n'
        f'storage: {{url: "sqlite:///{tmp_path}/c.db"}}\n'
        f'schools:\n  - {{id: "{SCHOOL_A}", name: 一小, district: 东区, secret: "${{S1}}"}}\n',
        encoding="utf-8",
    )
    env = {"S1": SECRETS[SCHOOL_A], "PATH": "/usr/bin:/bin"}
    log = tmp_path / "center.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "gateway", "center", "-c", str(config)], cwd=REPO, env=env, stdout=out, stderr=out
        )
    try:
        deadline = time.monotonic() + START_WITHIN_S
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1) as answer:
                    assert json.load(answer)["status"] == "ok"
                    break
            except (urllib.error.URLError, ConnectionError):
                assert proc.poll() is None, log.read_text(encoding="utf-8")
                assert time.monotonic() < deadline, "the center did not answer /healthz"
                time.sleep(0.1)
        body = alarm_event(SCHOOL_A, "cli-press")
        request = urllib.request.Request(f"http://127.0.0.1:{port}/alarms", data=body, headers=signed(SCHOOL_A, body))
        with urllib.request.urlopen(request, timeout=5) as answer:
            assert answer.status == 200
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/alarms", timeout=5) as answer:
            assert [a["button_event_id"] for a in json.load(answer)] == ["cli-press"]
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=5) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert SECRETS[SCHOOL_A] not in log.read_text(encoding="utf-8")
