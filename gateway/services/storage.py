"""The one SQLite database of a gateway: opened in WAL mode and migrated to the current schema."""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import sqlite3
from pathlib import Path

from gateway.domain.errors import StorageError
from gateway.services.migrations import MIGRATIONS, Migration

logger = logging.getLogger(__name__)

# A writer waits this long for another connection's lock before failing; far above any one transaction here.
BUSY_TIMEOUT_MS = 5000
# What `write_error` writes to ask the filesystem why a commit failed: one page, as a commit needs at least.
PROBE_BYTES = 4096


def connect(path: Path | str, *, synchronous: str = "FULL") -> sqlite3.Connection:
    """A connection with the gateway's pragmas: WAL, fsync on every commit (FULL) unless told otherwise.

    `synchronous=FULL` in WAL mode makes each commit durable before it returns: an alarm acknowledged to a
    button after its commit survives a power cut, not just a process crash.
    """
    path = Path(path)
    if str(path) != ":memory:":
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StorageError(f"cannot create the folder for {path}: {exc.strerror}") from exc
    try:
        conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute(f"PRAGMA synchronous = {synchronous}")
        conn.execute("PRAGMA foreign_keys = ON")
    except sqlite3.Error as exc:
        raise StorageError(f"cannot open the database {path}: {exc}") from exc
    return conn


def write_error(exc: sqlite3.Error, path: Path | str) -> str:
    """A failed write as the operator needs it. SQLite says only "disk I/O error" for a filesystem the kernel has
    turned read-only, so the filesystem is asked itself: a page written and synced beside the database, whose
    error (`Read-only file system`, `No space left on device`, `Input/output error`) goes beside SQLite's."""
    said = str(exc)
    code = getattr(exc, "sqlite_errorname", None)
    if code:
        said = f"{said} ({code})"
    probe = Path(f"{path}.write-probe")
    try:
        fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.write(fd, bytes(PROBE_BYTES))
            os.fsync(fd)
        finally:
            os.close(fd)
    except OSError as failed:
        return f"{said}: {failed.strerror or os.strerror(failed.errno or errno.EIO)}"
    finally:
        with contextlib.suppress(OSError):
            probe.unlink()
    return said


def schema_version(conn: sqlite3.Connection) -> int:
    return int(conn.execute("PRAGMA user_version").fetchone()[0])


def migrate(conn: sqlite3.Connection, migrations: tuple[Migration, ...] = MIGRATIONS) -> int:
    """Apply every migration newer than the database, each in its own transaction; returns the new version."""
    current = schema_version(conn)
    latest = max((m.version for m in migrations), default=0)
    if current > latest:
        raise StorageError(
            f"the database is at schema version {current}, newer than this gateway knows ({latest}); "
            "run a newer gateway or restore a backup"
        )
    for migration in sorted(migrations, key=lambda m: m.version):
        if migration.version <= current:
            continue
        conn.execute("BEGIN IMMEDIATE")
        try:
            for statement in _statements(migration.sql):
                conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {migration.version}")
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            conn.execute("ROLLBACK")
            raise StorageError(f"migration {migration.version} ({migration.description}) failed: {exc}") from exc
        logger.info("database migrated to version %d: %s", migration.version, migration.description)
    return schema_version(conn)


def _statements(sql: str) -> list[str]:
    """Split a migration script into statements (executescript would commit the open transaction)."""
    out: list[str] = []
    buffer = ""
    for line in sql.splitlines(keepends=True):
        if line.strip().startswith("--"):
            continue
        buffer += line
        if sqlite3.complete_statement(buffer):
            out.append(buffer.strip())
            buffer = ""
    if buffer.strip():
        out.append(buffer.strip())
    return out


def open_database(path: Path | str) -> sqlite3.Connection:
    """Open (creating if needed) and migrate the gateway database."""
    conn = connect(path)
    migrate(conn)
    return conn
