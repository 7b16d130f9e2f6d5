"""The database: WAL, durable commits, versioned migrations."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.domain.errors import StorageError
from gateway.services.migrations import MIGRATIONS, Migration
from gateway.services.storage import connect, migrate, open_database, schema_version


def test_new_database_is_wal_fully_synchronous_and_at_latest_version(tmp_path: Path) -> None:
    conn = open_database(tmp_path / "sub" / "gw.db")
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    assert schema_version(conn) == max(m.version for m in MIGRATIONS)


def test_reopening_keeps_data_and_applies_only_new_migrations(tmp_path: Path) -> None:
    path = tmp_path / "gw.db"
    conn = open_database(path)
    conn.execute("INSERT INTO gateway_runs (started_at, alive_at) VALUES (1, 1)")
    conn.close()
    extra = (*MIGRATIONS, Migration(999, "test column", "ALTER TABLE gateway_runs ADD COLUMN note TEXT;"))
    conn = connect(path)
    assert migrate(conn, extra) == 999
    assert conn.execute("SELECT started_at, note FROM gateway_runs").fetchall() == [(1.0, None)]


def test_failed_migration_rolls_back_and_says_which(tmp_path: Path) -> None:
    conn = open_database(tmp_path / "gw.db")
    before = schema_version(conn)
    broken = (*MIGRATIONS, Migration(999, "broken", "CREATE TABLE ok_table (x);\nNOT SQL AT ALL;"))
    with pytest.raises(StorageError, match="migration 999"):
        migrate(conn, broken)
    assert schema_version(conn) == before
    assert conn.execute("SELECT name FROM sqlite_master WHERE name = 'ok_table'").fetchone() is None


def test_database_from_a_newer_gateway_is_refused(tmp_path: Path) -> None:
    conn = open_database(tmp_path / "gw.db")
    conn.execute("PRAGMA user_version = 9999")
    with pytest.raises(StorageError, match="newer than this gateway"):
        migrate(conn)


def test_unwritable_location_is_a_storage_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(StorageError):
        open_database(blocker / "gw.db")
