"""The command line as an installer uses it: real processes, real exit codes, a real HTTP port."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from tests.fixtures.paths import REPO
from tests.fixtures.ports import free_port


def huxiao(*args: str, **kwargs: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gateway", *args], capture_output=True, text=True, timeout=60, cwd=REPO, check=False
    )


def test_check_config_accepts_the_example() -> None:
    result = huxiao("check-config", "-c", "config/example.yaml")
    assert result.returncode == 0, result.stderr
    assert "OK" in result.stdout


def test_check_config_exits_2_with_file_line_messages(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text('school: {id: "51040200001", name: 一小}\npolling:\n  interval: often\n', encoding="utf-8")
    result = huxiao("check-config", "-c", str(bad))
    assert result.returncode == 2
    assert f"{bad}:3: polling.interval: expected a duration" in result.stderr
    assert "Traceback" not in result.stderr


def test_console_script_is_installed_and_lists_commands() -> None:
    script = Path(sys.executable).parent / "huxiao"
    result = subprocess.run([str(script), "--help"], capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0
    for command in ("run", "check-config"):
        assert command in result.stdout


def _get(url: str) -> tuple[int, bytes]:
    with urllib.request.urlopen(url, timeout=2) as response:
        return int(response.status), bytes(response.read())


def test_run_serves_healthz_and_stops_on_sigterm_within_5s(tmp_path: Path) -> None:
    port = free_port()
    config = tmp_path / "school.yaml"
    config.write_text(
        'school: {id: "51040200001", name: 一小}\n'
        f"storage: {{path: {tmp_path / 'gw.db'}}}\n"
        f'web: {{listen: "127.0.0.1:{port}"}}\n',
        encoding="utf-8",
    )
    log = tmp_path / "gateway.log"
    with (
        log.open("wb") as sink,
        subprocess.Popen(
            [sys.executable, "-m", "gateway", "run", "-c", str(config)],
            cwd=REPO,
            stdout=sink,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        ) as proc,
    ):
        try:
            deadline = time.monotonic() + 20
            status, body = 0, b""
            while time.monotonic() < deadline and proc.poll() is None:
                try:
                    status, body = _get(f"http://127.0.0.1:{port}/healthz")
                    break
                except OSError:
                    time.sleep(0.05)
            assert status == 200, log.read_text()
            assert json.loads(body)["status"] == "ok"
            started = time.monotonic()
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=10)
            assert time.monotonic() - started < 5.0
            assert proc.returncode == 0, log.read_text()
        finally:
            if proc.poll() is None:
                proc.kill()
    assert (tmp_path / "gw.db").exists()
