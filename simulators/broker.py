"""A real Mosquitto broker on a 127.0.0.1 port, for tests, the demo and benchmarks.

Persistence is on, so a broker restarted with SIGTERM keeps the queued QoS 1 messages of persistent sessions, as a
school's broker does across a power cycle. `tcp_nodelay=False` leaves Mosquitto's stock setting (Nagle's algorithm on
its side), as on a school's existing broker that is not ours to tune.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

from gateway.domain.errors import GatewayError

MOSQUITTO_PATHS = ("/usr/sbin/mosquitto", "/usr/bin/mosquitto")


def find_mosquitto() -> str | None:
    found = shutil.which("mosquitto")
    if found:
        return found
    return next((p for p in MOSQUITTO_PATHS if Path(p).exists()), None)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class MosquittoBroker:
    """Start, stop and restart one mosquitto process; its data lives in `workdir`."""

    def __init__(
        self,
        workdir: Path,
        port: int = 0,
        *,
        extra: list[str] | None = None,
        config: str | None = None,
        tls: bool = False,
        tcp_nodelay: bool = True,
    ) -> None:
        """`config`: a whole mosquitto.conf to run instead of the open test broker (its listener on `port`);
        `extra`: more lines for the open one (an acl_file, a password_file)."""
        self.workdir = Path(workdir)
        self.port = port or _free_port()
        self.extra = list(extra or [])
        self._config = config
        self._tls = tls
        self.tcp_nodelay = tcp_nodelay
        self._proc: subprocess.Popen[bytes] | None = None
        binary = find_mosquitto()
        if binary is None:
            raise GatewayError(
                "mosquitto is not installed: run ./dev setup as root, or: sudo apt-get install mosquitto"
            )
        self._binary = binary

    @property
    def url(self) -> str:
        return f"{'mqtts' if self._tls else 'mqtt'}://127.0.0.1:{self.port}"

    def start(self, timeout: float = 10.0) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        conf = self.workdir / "mosquitto.conf"
        lines = [
            f"listener {self.port} 127.0.0.1",
            "allow_anonymous true",
            "persistence true",
            f"persistence_location {self.workdir}/",
            "max_queued_messages 100000",
            # QoS 1 messages in flight to one client: a gateway acknowledging after its disk commit needs a wide
            # window to take a burst (mosquitto's default is 20).
            "max_inflight_messages 1000",
            # Small packets (alarms, acknowledgements) go out at once instead of waiting on Nagle's algorithm.
            f"set_tcp_nodelay {'true' if self.tcp_nodelay else 'false'}",
            "log_dest stderr",
            "log_type error",
            "log_type warning",
            *self.extra,
        ]
        if self._config is not None:
            lines = self._config.splitlines()
        if os.geteuid() == 0:
            # Run as root, mosquitto switches to the `mosquitto` user, which may not write our (root-owned)
            # persistence folder: then it silently keeps nothing across a restart. This broker is a test and
            # demo stand-in on loopback, so it keeps the user that started it.
            lines.append("user root")
        conf.write_text("\n".join(lines) + "\n", encoding="utf-8")
        log = (self.workdir / "mosquitto.log").open("ab")
        # A session of its own: Ctrl-C in the demo's terminal reaches the demo, which stops the broker last, not the
        # broker first (which would drop every button while the gateway still runs).
        self._proc = subprocess.Popen([self._binary, "-c", str(conf)], stdout=log, stderr=log, start_new_session=True)
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise GatewayError(f"mosquitto exited at start; see {self.workdir / 'mosquitto.log'}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return
            except OSError:
                time.sleep(0.02)
        raise GatewayError(f"mosquitto did not listen on 127.0.0.1:{self.port} within {timeout} s")

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM, so mosquitto writes its persistence file, as on a clean shutdown."""
        if self._proc is None:
            return
        if self._proc.poll() is None:
            self._proc.send_signal(signal.SIGTERM)
            try:
                self._proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        self._proc = None

    def reload(self) -> None:
        """SIGHUP: mosquitto reads its ACL and password files again, keeping every connection and session."""
        if self._proc is not None and self._proc.poll() is None:
            self._proc.send_signal(signal.SIGHUP)

    def restart(self) -> None:
        self.stop()
        self.start()

    def __enter__(self) -> MosquittoBroker:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
