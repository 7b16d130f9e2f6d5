"""The command line as an installer uses it: real processes, real exit codes, a real HTTP port."""

from __future__ import annotations

import json
import os
import signal
import socket
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


# The usual mistakes, each answered with one clear line and no traceback.


def _one_clear_line(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode != 0
    assert "Traceback" not in result.stderr + result.stdout
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    return lines[0]


def _school(tmp_path: Path, port: int, extra: str = "") -> Path:
    config = tmp_path / "school.yaml"
    config.write_text(
        'school: {id: "51040200001", name: 一小}\n'
        f"storage: {{path: {tmp_path / 'gw.db'}}}\n"
        f'web: {{listen: "127.0.0.1:{port}"}}\n' + extra,
        encoding="utf-8",
    )
    return config


def test_a_missing_config_file_is_named_in_one_line() -> None:
    for verb in ("check-config", "run", "probe", "outbox", "patrol"):
        args = ["--out", "unused"] if verb == "patrol" else []
        line = _one_clear_line(huxiao(verb, "-c", "no/such/school.yaml", *args))
        assert "no/such/school.yaml" in line, verb
        assert "No such file" in line, verb


def test_an_unreadable_config_is_named_in_one_line(tmp_path: Path) -> None:
    # Tests run as root, which reads any file: a binary file and a folder are what a user really passes by mistake.
    binary = tmp_path / "photo.yaml"
    binary.write_bytes(b"\xff\xd8\xff\xe0 not a config")
    assert "not UTF-8" in _one_clear_line(huxiao("check-config", "-c", str(binary)))
    assert "Is a directory" in _one_clear_line(huxiao("run", "-c", str(tmp_path)))


def test_run_on_a_taken_port_says_so_and_which_key_to_change(tmp_path: Path) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        line = _one_clear_line(huxiao("run", "-c", str(_school(tmp_path, port))))
    assert f"127.0.0.1:{port}" in line
    assert "already in use" in line
    assert "web.listen" in line


def test_demo_on_a_taken_port_says_so_and_names_the_flag(tmp_path: Path) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        started = time.monotonic()
        line = _one_clear_line(huxiao("demo", "--port", str(port), "--workdir", str(tmp_path / "demo")))
    assert "already in use" in line
    assert "--port" in line
    assert time.monotonic() - started < 20  # it says so at once, before starting the simulated school


def test_press_with_the_broker_down_says_it_is_unreachable() -> None:
    line = _one_clear_line(huxiao("press", "--broker", f"mqtt://127.0.0.1:{free_port()}", "--school", "1", "gate"))
    assert "cannot connect" in line
    assert "broker" in line


def test_press_names_the_buttons_when_the_id_is_wrong(tmp_path: Path) -> None:
    extra = "buttons:\n  - {id: guard-room, name: 门卫室一键报警}\n"
    line = _one_clear_line(huxiao("press", "-c", str(_school(tmp_path, free_port(), extra)), "gaurd-room"))
    assert "gaurd-room" in line
    assert "guard-room" in line


def test_press_without_a_demo_running_in_that_workdir(tmp_path: Path) -> None:
    line = _one_clear_line(huxiao("press", "--workdir", str(tmp_path / "nothing"), "guard-room"))
    assert "school.yaml" in line
    assert "does not exist" in line


def test_patrol_into_a_file_instead_of_a_folder(tmp_path: Path) -> None:
    taken = tmp_path / "report.html"
    taken.write_text("an earlier report", encoding="utf-8")
    started = time.monotonic()
    line = _one_clear_line(huxiao("patrol", "-c", str(_school(tmp_path, free_port())), "--out", str(taken)))
    assert str(taken) in line
    assert "not a folder" in line
    assert time.monotonic() - started < 20
    assert taken.read_text(encoding="utf-8") == "an earlier report"


def test_discover_with_a_target_that_is_not_host_port() -> None:
    for target in ("127.0.0.1", "127.0.0.1:99999", "camera:abc"):
        line = _one_clear_line(huxiao("discover", "--target", target, "--timeout", "0.5"))
        assert f"--target {target}: expected host:port" in line
