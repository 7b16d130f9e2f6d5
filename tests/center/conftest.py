"""Every center test that takes `storage_url` runs on SQLite and on a real PostgreSQL."""

from __future__ import annotations

from pathlib import Path

import pytest

from simulators.postgres import PostgresServer
from tests.fixtures.mosquitto import broker
from tests.fixtures.postgres import postgres

__all__ = ["broker", "postgres"]


@pytest.fixture(params=["sqlite", "postgresql"])
def storage_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'center.db'}"
    server: PostgresServer = request.getfixturevalue("postgres")
    return server.new_database()
