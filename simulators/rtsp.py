"""Starts and stops the GStreamer RTSP server (simulators/rtsp_server.py) under the system Python.

GStreamer's Python bindings come from Debian's python3-gi, which lives in the system interpreter, not in the
project's virtualenv: so the server runs as a child process of its own.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

from gateway.errors import GatewayError

SERVER_SCRIPT = Path(__file__).with_name("rtsp_server.py")
SYSTEM_PYTHON = "/usr/bin/python3"
DEBIAN_PACKAGES = (
    "gstreamer1.0-rtsp gir1.2-gst-rtsp-server-1.0 python3-gi gstreamer1.0-plugins-base "
    "gstreamer1.0-plugins-good gstreamer1.0-plugins-ugly"
)
PATTERNS = ("moving", "black", "frozen", "covered", "blurred", "color_cast", "too_dark", "too_bright")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def check_gstreamer() -> str | None:
    """None when the system Python can run the server, else what to install."""
    if not Path(SYSTEM_PYTHON).exists() or shutil.which(SYSTEM_PYTHON) is None:
        return f"{SYSTEM_PYTHON} is missing: apt-get install python3 {DEBIAN_PACKAGES}"
    probe = subprocess.run(
        [
            SYSTEM_PYTHON,
            "-c",
            "import gi; gi.require_version('GstRtspServer', '1.0'); from gi.repository import GstRtspServer",
        ],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    if probe.returncode != 0:
        return f"GStreamer's RTSP server is not installed: apt-get install {DEBIAN_PACKAGES}"
    return None


class RtspServer:
    """A real RTSP server on 127.0.0.1 with every test pattern mounted (plus `streams` name=pattern)."""

    def __init__(
        self,
        streams: dict[str, str] | None = None,
        *,
        port: int = 0,
        auth_password: str | None = None,
        auth_user: str = "admin",
        log: Path | None = None,
    ) -> None:
        self.streams = dict(streams or {})
        self.port = port or _free_port()
        self.auth_port = _free_port() if auth_password else 0
        self.auth_user = auth_user
        self.auth_password = auth_password
        self._log = log
        self._proc: subprocess.Popen[str] | None = None

    def url(self, name: str, *, auth: bool = False) -> str:
        return f"rtsp://127.0.0.1:{self.auth_port if auth else self.port}/{name}"

    def start(self, timeout: float = 20.0) -> None:
        problem = check_gstreamer()
        if problem:
            raise GatewayError(problem)
        args = [
            SYSTEM_PYTHON,
            str(SERVER_SCRIPT),
            "--port",
            str(self.port),
            "--streams",
            ",".join(f"{k}={v}" for k, v in self.streams.items()),
        ]
        if self.auth_password:
            args += ["--auth-port", str(self.auth_port), "--user", self.auth_user, "--password", self.auth_password]
        stderr = self._log.open("a") if self._log else subprocess.DEVNULL
        # A clean environment for the system Python: the virtualenv's variables must not leak into it.
        env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME")}
        self._proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=stderr, text=True, env=env)
        if self._log:
            stderr.close()  # type: ignore[union-attr]
        assert self._proc.stdout is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            line = self._proc.stdout.readline()
            if line.startswith("READY"):
                return
            if not line and self._proc.poll() is not None:
                break
        self.stop()
        raise GatewayError(f"the RTSP server did not start on 127.0.0.1:{self.port}")

    def stop(self) -> None:
        if self._proc is None:
            return
        if self._proc.poll() is None:
            self._proc.send_signal(signal.SIGTERM)
            try:
                self._proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        if self._proc.stdout is not None:
            self._proc.stdout.close()
        self._proc = None

    def __enter__(self) -> RtspServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
