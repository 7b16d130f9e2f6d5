"""The deployment files as a machine checks them: systemd's own analyser on the unit, the compose file's references,
and the reference Mosquitto (run for real by tests/fixtures/secure_mosquitto.py in test_mqtt_tls_acl)."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.fixtures.paths import REPO

DEPLOY = REPO / "deploy"
UNIT = DEPLOY / "huxiao-gateway.service"
# systemd-analyze security's overall exposure (0 safest, 10 unsafe); "OK" starts below 4. The unit scores 1.1 with
# systemd 252: this bound catches a hardening line dropped by mistake, not a rounding change between versions.
MAX_EXPOSURE = 2.0


def analyze() -> str:
    found = shutil.which("systemd-analyze")
    if found is None:
        pytest.skip("systemd-analyze is not installed (Debian package systemd)")
    return found


def runnable_unit(tmp_path: Path) -> Path:
    """The unit with ExecStart pointing at this checkout's console script: `verify` checks that it exists."""
    script = Path(sys.executable).parent / "huxiao"
    text = UNIT.read_text(encoding="utf-8").replace("/opt/huxiao/bin/huxiao", str(script))
    unit = tmp_path / UNIT.name
    unit.write_text(text, encoding="utf-8")
    return unit


def test_systemd_verify_accepts_the_unit(tmp_path: Path) -> None:
    result = subprocess.run(
        [analyze(), "verify", str(runnable_unit(tmp_path))], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr.strip() == "", result.stderr


def test_systemd_security_rates_the_sandbox_ok(tmp_path: Path) -> None:
    result = subprocess.run(
        [analyze(), "security", "--offline=true", "--no-pager", str(runnable_unit(tmp_path))],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    exposure = re.search(r"Overall exposure level for \S+: ([\d.]+)", result.stdout)
    assert exposure is not None, result.stdout
    assert float(exposure.group(1)) <= MAX_EXPOSURE, result.stdout
    passed = {line.split()[1] for line in result.stdout.splitlines() if line.startswith("✓")}
    for setting in ("NoNewPrivileges=", "ProtectSystem=", "ProtectHome=", "PrivateDevices=", "User=/DynamicUser="):
        assert setting in passed, setting


def test_the_unit_writes_only_its_database_folder() -> None:
    lines = UNIT.read_text(encoding="utf-8").splitlines()
    assert "ProtectSystem=strict" in lines
    assert [line for line in lines if line.startswith("ReadWritePaths=")] == ["ReadWritePaths=/var/lib/huxiao"]
    assert "User=huxiao" in lines


def test_compose_runs_the_reference_broker_with_tls_and_the_acl() -> None:
    compose = yaml.safe_load((DEPLOY / "docker-compose.yml").read_text(encoding="utf-8"))
    broker, gateway = compose["services"]["mosquitto"], compose["services"]["gateway"]
    mounts = {volume.split(":")[1]: volume.split(":")[0] for volume in broker["volumes"]}
    assert mounts["/mosquitto/config/mosquitto.conf"] == "./mosquitto/mosquitto.conf"
    assert mounts["/mosquitto/config/acl"] == "./mosquitto/acl"
    for source in ("./mosquitto/mosquitto.conf", "./mosquitto/acl"):
        assert (DEPLOY / source).is_file(), source
    assert broker["ports"] == ["8883:8883"]  # no clear-text 1883
    conf = (DEPLOY / "mosquitto" / "mosquitto.conf").read_text(encoding="utf-8").splitlines()
    assert "allow_anonymous false" in conf
    assert "listener 8883" in conf
    for path in ("/mosquitto/config/passwd", "/mosquitto/config/acl", "/mosquitto/certs/ca.pem"):
        assert any(line.endswith(" " + path) for line in conf), path
    assert gateway["read_only"] is True
    assert gateway["cap_drop"] == ["ALL"]
    assert (REPO / gateway["build"].replace("..", ".") / "Dockerfile").is_file()
