"""A real PostgreSQL server in a temporary folder on a 127.0.0.1 port, for the center's tests and bench.

PostgreSQL refuses to run as root: as root the data folder is given to the `postgres` user (Debian's package makes
it) and every server command runs as that user through `runuser`. Authentication is `trust` on loopback: a stand-in
on 127.0.0.1, never a deployment.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from gateway.domain.errors import GatewayError

PG_BIN_DIRS = sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)
SERVER_USER = "postgres"
DATABASE = "huxiao"
ROLE = "huxiao"


def find_pg_bin() -> Path | None:
    for directory in PG_BIN_DIRS:
        if (directory / "initdb").exists() and (directory / "pg_ctl").exists():
            return directory
    found = shutil.which("initdb")
    return Path(found).parent if found else None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class PostgresServer:
    def __init__(self, port: int = 0) -> None:
        binaries = find_pg_bin()
        if binaries is None:
            raise GatewayError("PostgreSQL is not installed: run ./dev setup as root, or: apt-get install postgresql")
        self._bin = binaries
        self.port = port or _free_port()
        self._root: Path | None = None
        self._created = 0

    @property
    def url(self) -> str:
        return f"postgresql://{ROLE}@127.0.0.1:{self.port}/{DATABASE}"

    def _run(self, *args: str, timeout: float = 60.0) -> None:
        command = [str(self._bin / args[0]), *args[1:]]
        if os.geteuid() == 0:
            command = ["runuser", "-u", SERVER_USER, "--", *command]
        result = subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False)
        if result.returncode != 0:
            raise GatewayError(f"{args[0]} failed: {result.stderr.strip()[-500:]}")

    def new_database(self) -> str:
        """A fresh, empty database on this server; its URL."""
        self._created += 1
        name = f"{DATABASE}_{self._created}"
        self._run("createdb", "-h", "127.0.0.1", "-p", str(self.port), "-U", ROLE, name)
        return f"postgresql://{ROLE}@127.0.0.1:{self.port}/{name}"

    def start(self, timeout: float = 30.0) -> None:
        # Not under pytest's tmp_path: that is private to root, and the server runs as another user.
        self._root = Path(tempfile.mkdtemp(prefix="huxiao-pg-"))
        data = self._root / "data"
        if os.geteuid() == 0:
            shutil.chown(self._root, SERVER_USER, SERVER_USER)
        self._run("initdb", "-D", str(data), "-A", "trust", "-U", ROLE, "-E", "UTF8", "--no-instructions")
        options = f"-c listen_addresses=127.0.0.1 -c port={self.port} -c unix_socket_directories={self._root}"
        self._run("pg_ctl", "-D", str(data), "-o", options, "-l", str(self._root / "server.log"), "-w", "start")
        self._run("createdb", "-h", "127.0.0.1", "-p", str(self.port), "-U", ROLE, DATABASE)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return
            except OSError:
                time.sleep(0.05)
        raise GatewayError(f"PostgreSQL did not listen on 127.0.0.1:{self.port}")

    def restart(self) -> None:
        """A fast shutdown and start again: every client connection is cut, as when the server restarts."""
        assert self._root is not None
        options = f"-c listen_addresses=127.0.0.1 -c port={self.port} -c unix_socket_directories={self._root}"
        self._run("pg_ctl", "-D", str(self._root / "data"), "-m", "fast", "-w", "stop")
        self._run(
            "pg_ctl", "-D", str(self._root / "data"), "-o", options, "-l", str(self._root / "server.log"), "-w", "start"
        )

    def stop(self) -> None:
        if self._root is None:
            return
        try:
            self._run("pg_ctl", "-D", str(self._root / "data"), "-m", "fast", "-w", "stop")
        finally:
            shutil.rmtree(self._root, ignore_errors=True)
            self._root = None

    def __enter__(self) -> PostgresServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
