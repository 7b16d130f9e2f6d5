"""Starts and stops the GStreamer RTSP server (simulators/rtsp_server.py) under the system Python.

GStreamer's Python bindings come from Debian's python3-gi, which lives in the system interpreter, not in the
project's virtualenv: so the server runs as a child process of its own. `RtspServer` is a context manager for
synchronous callers (the demo, benches) and an async one for tests and services (the start then runs in a thread,
so the event loop is never blocked while GStreamer comes up).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import selectors
import signal
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from types import TracebackType
from typing import IO

from gateway.domain.errors import GatewayError

logger = logging.getLogger(__name__)

SERVER_SCRIPT = Path(__file__).with_name("rtsp_server.py")
SYSTEM_PYTHON = "/usr/bin/python3"
DEBIAN_PACKAGES = (
    "gstreamer1.0-rtsp gir1.2-gst-rtsp-server-1.0 python3-gi gstreamer1.0-plugins-base "
    "gstreamer1.0-plugins-good gstreamer1.0-plugins-ugly gstreamer1.0-plugins-bad gstreamer1.0-tools gstreamer1.0-x"
)
# The patterns named for the verdict they show (`moving` shows `ok`).
PATTERNS = ("moving", "black", "frozen", "covered", "blurred", "color_cast", "too_dark", "too_bright")
# Patterns that must also stay `ok`: `still`, a still scene with a live noisy area (nothing moves, the sensor
# lives), which compression noise alone must not be told from.
LIVE_PATTERNS = ("still",)
# GStreamer registers its plugins on first use in a fresh home (seconds on a loaded 2-core machine); later
# starts take well under a second.
START_TIMEOUT_S = 30.0
# The server quits its main loop on SIGTERM at once; a few seconds covers a machine busy with other tests.
STOP_TIMEOUT_S = 5.0
# An assertion inside GStreamer aborts the server process (SIGABRT); the one the suite used to hit (a PLAY during
# another viewer's seek) is gone (rtsp_server.py), and what the process said last is quoted in the warning. A
# camera that reboots comes back on the same ports, and so does this server, this often.
RESTARTS = 5
GI_CHECK_TIMEOUT_S = 30.0
_READ_CHUNK = 4096


def check_gstreamer() -> str | None:
    """None when the system Python can run the server, else what to install."""
    if not Path(SYSTEM_PYTHON).exists():
        return f"{SYSTEM_PYTHON} is missing: apt-get install python3 {DEBIAN_PACKAGES}"
    probe = subprocess.run(
        [
            SYSTEM_PYTHON,
            "-c",
            "import gi; gi.require_version('GstRtspServer', '1.0'); from gi.repository import GstRtspServer",
        ],
        capture_output=True,
        text=True,
        timeout=GI_CHECK_TIMEOUT_S,
        check=False,
        env=_system_env(),
    )
    if probe.returncode != 0:
        why = (probe.stderr.strip().splitlines() or ["no error text"])[-1]
        return f"{SYSTEM_PYTHON} cannot import GStreamer's RTSP server ({why}): apt-get install {DEBIAN_PACKAGES}"
    return None


def _system_env() -> dict[str, str]:
    # The virtualenv's variables must not leak into the system Python (they would hide its dist-packages).
    return {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME")}


class RtspServer:
    """A real RTSP server on 127.0.0.1 with every test pattern mounted (plus `streams`, name → pattern[:h265]).

    With `auth_password`, a second port serves the same mounts behind digest auth (`url(name, auth=True)`).
    Ports default to 0: the server binds free ones itself and reports them, so there is no pick-then-bind race.
    """

    def __init__(
        self,
        streams: dict[str, str] | None = None,
        *,
        port: int = 0,
        auth_password: str | None = None,
        auth_user: str = "admin",
        auth_port: int = 0,
        log: Path | None = None,
    ) -> None:
        self.streams = dict(streams or {})
        self.port = port
        self.auth_port = auth_port
        self.auth_user = auth_user
        self.auth_password = auth_password
        self.mounts = 0
        self._log = log
        self._proc: subprocess.Popen[bytes] | None = None
        self._output = b""  # what the server printed before READY, for the error when it does not start
        # Without a log file, the server's stderr goes to an unnamed temporary file: what GStreamer or Python says
        # before an abort is then quoted in the warning, where /dev/null would lose it.
        self._stderr: IO[bytes] | None = None
        self._stopping = threading.Event()
        self.restarts = 0  # times the process died and was started again on its ports

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    def url(self, name: str, *, auth: bool = False) -> str:
        if auth and not self.auth_password:
            raise GatewayError("this RTSP server was started without a password: no auth mounts")
        return f"rtsp://127.0.0.1:{self.auth_port if auth else self.port}/{name}"

    def start(self, timeout: float = START_TIMEOUT_S) -> None:
        """Start the server and return once it listens; GatewayError (with its output) if it does not."""
        problem = check_gstreamer()
        if problem:
            raise GatewayError(problem)
        self._stopping.clear()
        proc = self._launch(timeout)
        logger.info("RTSP server pid %d on 127.0.0.1:%d, %d mounts", proc.pid, self.port, self.mounts)
        threading.Thread(target=self._watch, args=(proc,), name="rtsp-server-watch", daemon=True).start()

    def _launch(self, timeout: float) -> subprocess.Popen[bytes]:
        args = [SYSTEM_PYTHON, str(SERVER_SCRIPT), "--port", str(self.port)]
        args += ["--streams", ",".join(f"{k}={v}" for k, v in self.streams.items())]
        if self.auth_password:
            args += ["--auth-port", str(self.auth_port), "--user", self.auth_user, "--password", self.auth_password]
        self._output = b""
        self._close_stderr()
        if self._log is None:
            # Open as long as the process runs (last_words reads it back); closed by the next launch or the stop.
            self._stderr = tempfile.TemporaryFile(prefix="rtsp-server-")  # noqa: SIM115
        with self._log.open("ab") if self._log else contextlib.nullcontext(self._stderr) as stderr:
            # Own session: Ctrl-C reaches the demo, which stops this server itself, in order.
            proc = subprocess.Popen(
                args, stdout=subprocess.PIPE, stderr=stderr, env=_system_env(), start_new_session=True
            )
        self._proc = proc
        ready = self._wait_ready(proc.stdout, timeout) if proc.stdout is not None else None
        if ready is None:
            output = self._stop_process() + self.last_words(300)
            self._close_stderr()
            raise GatewayError(f"the RTSP server did not start within {timeout:g} s: {output[-300:]!r}")
        self.port, self.auth_port, self.mounts = ready
        return proc

    def _watch(self, proc: subprocess.Popen[bytes]) -> None:
        """Start the server again on the same ports when its process dies while it should be running."""
        while True:
            code = proc.wait()
            # Only the abort: a test that kills the server on purpose (a camera dying mid-play) keeps it dead.
            if (
                self._stopping.is_set()
                or self._proc is not proc
                or code != -signal.SIGABRT
                or self.restarts >= RESTARTS
            ):
                return
            self.restarts += 1
            logger.warning(
                "RTSP server pid %d died (exit %s), its last words %r: starting it again on its ports",
                proc.pid,
                code,
                self.last_words(),
            )
            if proc.stdout is not None:
                proc.stdout.close()
            try:
                proc = self._launch(START_TIMEOUT_S)
            except GatewayError as exc:
                logger.error("RTSP server could not be started again: %s", exc)
                return
            if self._stopping.is_set():  # stopped while it was starting again
                self._stop_process()
                return

    def last_words(self, size: int = 2000) -> str:
        """The end of what the server wrote to stderr (its temporary file, or the log file)."""
        stderr = self._stderr
        if stderr is not None:
            try:
                stderr.seek(0, os.SEEK_END)
                stderr.seek(max(0, stderr.tell() - size))
                return stderr.read().decode("utf-8", "replace")
            except ValueError:  # closed by a stop meanwhile
                return ""
        if self._log is not None and self._log.exists():
            return self._log.read_bytes()[-size:].decode("utf-8", "replace")
        return ""

    def _close_stderr(self) -> None:
        if self._stderr is not None:
            self._stderr.close()
            self._stderr = None

    def _wait_ready(self, stdout: IO[bytes], timeout: float) -> tuple[int, int, int] | None:
        """The ports and mount count from the READY line; None if the process quits or stays silent."""
        deadline = time.monotonic() + timeout
        with selectors.DefaultSelector() as selector:
            selector.register(stdout, selectors.EVENT_READ)
            # A bounded wait: readline() on the pipe would hang for ever on a server that never prints.
            while (remaining := deadline - time.monotonic()) > 0:
                if not selector.select(remaining):
                    continue
                chunk = os.read(stdout.fileno(), _READ_CHUNK)
                if not chunk:
                    return None
                self._output += chunk
                for line in self._output.decode("utf-8", "replace").splitlines():
                    fields = line.split()
                    if len(fields) == 4 and fields[0] == "READY" and all(f.isdigit() for f in fields[1:]):
                        return int(fields[1]), int(fields[2]), int(fields[3])
        return None

    def _stop_process(self) -> str:
        self._stopping.set()
        if self._proc is None:
            return ""
        if self._proc.poll() is None:
            self._proc.send_signal(signal.SIGTERM)
            try:
                self._proc.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                logger.warning("RTSP server pid %d ignored SIGTERM; killing it", self._proc.pid)
                self._proc.kill()
                self._proc.wait(timeout=STOP_TIMEOUT_S)
        if self._proc.stdout is not None:
            self._proc.stdout.close()
        self._proc = None
        return self._output.decode("utf-8", "replace")

    def stop(self) -> None:
        self._stop_process()
        self._close_stderr()

    def __enter__(self) -> RtspServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    async def __aenter__(self) -> RtspServer:
        await asyncio.to_thread(self.start)
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await asyncio.to_thread(self.stop)
