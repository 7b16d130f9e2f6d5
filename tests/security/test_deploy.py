"""The deployment files as a machine checks them: systemd's own analyser on the unit, the compose file's references,
the reference Mosquitto (run for real by tests/fixtures/secure_mosquitto.py in test_mqtt_tls_acl), and the Docker
image built for real by deploy/build-image.sh and run with its HEALTHCHECK (where buildah and podman are installed
and the test runs as root: the build takes minutes, so CI does not install them)."""

from __future__ import annotations

import json
import os
import re
import resource
import shutil
import subprocess
import sys
import time
import tomllib
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from gateway.services.health import BROKER_GRACE_S
from simulators.broker import MosquittoBroker
from tests.fixtures.mosquitto import broker
from tests.fixtures.paths import REPO
from tests.fixtures.ports import free_port
from tests.fixtures.waiting import eventually

__all__ = ["broker"]

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


# --- The image, built and run for real ----------------------------------------------------------------------------

IMAGE = "localhost/huxiao-gateway:test"
# Measured here: a Debian base made with mmdebstrap about 1 min, the image about 1 min on it, more on a cold pip cache.
BUILD_TIMEOUT_S = 1800
IMAGE_TOOLS = ("buildah", "podman", "runc")


def require_image_tools() -> None:
    if os.geteuid() != 0:
        pytest.skip("building and running the image needs root (buildah's and podman's storage in /var/lib/containers)")
    missing = [tool for tool in IMAGE_TOOLS if shutil.which(tool) is None]
    if missing:
        pytest.skip(
            f"{', '.join(missing)} not installed (apt-get install buildah podman runc mmdebstrap); CI does not "
            "install them: the image build takes minutes"
        )


def run_options() -> list[str]:
    """Options that any host takes and this sandbox needs: crun refuses a hybrid cgroup layout (runc takes it), and
    without CAP_SYS_RESOURCE podman's default rlimits (a million open files) are refused, so ask for no more than the
    host's own hard limit."""
    files = min(resource.getrlimit(resource.RLIMIT_NOFILE)[1], 65536)
    return ["--runtime", "runc", "--ulimit", f"nofile={files}:{files}", "--ulimit", "nproc=4096:4096"]


def podman(*args: str, check: bool = True, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(["podman", *args], capture_output=True, text=True, timeout=timeout, check=False)
    if check and result.returncode != 0:
        raise AssertionError(f"podman {' '.join(args)}: {result.returncode}\n{result.stdout}{result.stderr}")
    return result


@pytest.fixture(scope="module")
def image() -> str:
    require_image_tools()
    started = time.monotonic()
    result = subprocess.run(
        [str(DEPLOY / "build-image.sh"), IMAGE], capture_output=True, text=True, timeout=BUILD_TIMEOUT_S, check=False
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    size = int(podman("image", "inspect", IMAGE, "--format", "{{.Size}}").stdout)
    print(f"image {IMAGE} built in {time.monotonic() - started:.0f} s, {size / 1e6:.0f} MB")
    return IMAGE


def packaged_top_levels() -> list[str]:
    """The top-level packages pyproject.toml installs (gateway*, center*, ...): each must be in the image."""
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    return [pattern.rstrip("*") for pattern in pyproject["tool"]["setuptools"]["packages"]["find"]["include"]]


@pytest.mark.timeout(BUILD_TIMEOUT_S + 120)
def test_the_image_runs_as_its_own_user_with_every_package_and_a_healthcheck(image: str) -> None:
    config = json.loads(podman("image", "inspect", image, "--format", "{{json .Config}}").stdout)
    assert config["User"] == "huxiao"
    healthcheck = json.loads(podman("image", "inspect", image, "--format", "{{json .HealthCheck}}").stdout)
    assert healthcheck is not None  # kept: the Docker format has it, the OCI format has not
    assert "HUXIAO_HEALTHZ" in " ".join(healthcheck["Test"])
    probe = (
        "import importlib, json, os, pathlib, sys;"
        "mods = {name: importlib.import_module(name).__file__ for name in sys.argv[1:]};"
        "static = {p: len(list(pathlib.Path(importlib.import_module(p).__file__).parent.joinpath('static').iterdir()))"
        " for p in ('gateway.faces', 'center')};"
        "print(json.dumps({'uid': os.getuid(), 'mods': mods, 'static': static}))"
    )
    packages = packaged_top_levels()
    assert {"gateway", "center", "adapters", "monitoring", "simulators"} <= set(packages)
    out = podman(
        "run", "--rm", *run_options(), "--network", "none", "--entrypoint", "python", image, "-c", probe, *packages
    ).stdout
    found = json.loads(out.strip().splitlines()[-1])
    assert found["uid"] != 0
    assert all(path.startswith("/opt/huxiao/") for path in found["mods"].values()), found
    assert all(count > 0 for count in found["static"].values()), found


def healthz(port: int) -> tuple[int, dict[str, object]]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def health_run(name: str) -> int:
    """`podman healthcheck run`: the image's HEALTHCHECK command run in the container, 0 healthy, 1 unhealthy."""
    return podman("healthcheck", "run", name, check=False).returncode


@pytest.fixture
def container_name() -> Iterator[str]:
    name = f"huxiao-image-test-{os.getpid()}"
    yield name
    podman("rm", "--force", "--volumes", name, check=False)


@pytest.mark.timeout(BUILD_TIMEOUT_S + 180)
async def test_the_image_starts_healthy_and_its_healthcheck_fails_while_the_broker_is_away(
    image: str, broker: MosquittoBroker, tmp_path: Path, container_name: str
) -> None:
    web = free_port()
    school = tmp_path / "school.yaml"
    school.write_text(
        'school: {id: "51040200001", name: 镜像小学}\n'
        "storage: {path: /var/lib/huxiao/huxiao.db}\n"
        f'mqtt: {{url: "{broker.url}"}}\n'
        f'web: {{listen: "127.0.0.1:{web}"}}\n',
        encoding="utf-8",
    )
    school.chmod(0o644)
    started = time.monotonic()
    # As docker-compose.yml runs it: read-only root, /tmp in memory, no capabilities; the database on the image's
    # volume. Host network: the broker and /healthz stay on this machine's loopback.
    podman(
        "run", "--detach", "--name", container_name, *run_options(), "--network", "host", "--read-only",
        "--tmpfs", "/tmp", "--cap-drop", "ALL", "--security-opt", "no-new-privileges",
        "--env", f"HUXIAO_HEALTHZ=http://127.0.0.1:{web}/healthz",
        "--volume", f"{school}:/etc/huxiao/school.yaml:ro", image,
    )  # fmt: skip
    try:
        await eventually(lambda: health_run(container_name) == 0, timeout=60, what="the HEALTHCHECK passing")
        print(f"start -> healthy in {time.monotonic() - started:.1f} s")
        state = podman("inspect", container_name, "--format", "{{.State.Health.Status}}").stdout.strip()
        assert state == "healthy"
        status, body = healthz(web)
        assert (status, body["status"]) == (200, "ok"), body

        broker.stop()
        await eventually(
            lambda: health_run(container_name) == 1, timeout=BROKER_GRACE_S + 30, what="the HEALTHCHECK failing"
        )
        status, body = healthz(web)
        assert status == 503, body
        assert body["status"] == "failing", body
        assert body["parts"]["buttons"]["ok"] is False, body  # type: ignore[index]
        state = podman("inspect", container_name, "--format", "{{.State.Health.Status}}").stdout.strip()
        assert state == "unhealthy"

        broker.start()
        await eventually(lambda: health_run(container_name) == 0, timeout=30, what="healthy again")

        stopping = time.monotonic()
        podman("stop", "--time", "10", container_name)
        assert time.monotonic() - stopping < 5, "the gateway stops within 5 s of SIGTERM"
        assert podman("inspect", container_name, "--format", "{{.State.ExitCode}}").stdout.strip() == "0"
    except BaseException:
        print(podman("logs", container_name, check=False).stderr[-4000:])
        raise
