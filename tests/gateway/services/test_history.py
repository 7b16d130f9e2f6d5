"""Stored history: transitions read back per camera, and the gateway's own downtime between runs."""

from __future__ import annotations

from pathlib import Path

from gateway.services.history import gateway_downtime, record_transition, transitions_since
from gateway.services.storage import open_database


def test_transitions_since_include_the_state_in_force_at_the_window_start(tmp_path: Path) -> None:
    conn = open_database(tmp_path / "gw.db")
    record_transition(conn, "gate-1", 100.0, "unknown", "online", frozenset())
    record_transition(conn, "gate-1", 200.0, "online", "offline", frozenset({"timeout"}))
    record_transition(conn, "gate-1", 300.0, "offline", "online", frozenset())
    record_transition(conn, "hall", 50.0, "unknown", "degraded", frozenset({"clock_skew", "auth_failed"}))
    history = transitions_since(conn, 250.0)
    assert [(t.at, t.new) for t in history["gate-1"]] == [(200.0, "offline"), (300.0, "online")]
    assert history["hall"][0].reasons == ("auth_failed", "clock_skew")


def test_gaps_between_runs_are_gateway_downtime(tmp_path: Path) -> None:
    conn = open_database(tmp_path / "gw.db")
    runs = [(0.0, 100.0, 100.0), (160.0, 400.0, None), (500.0, 600.0, None)]  # the second run crashed at ~400
    for started, alive, stopped in runs:
        conn.execute(
            "INSERT INTO gateway_runs (started_at, alive_at, stopped_at) VALUES (?, ?, ?)", (started, alive, stopped)
        )
    assert gateway_downtime(conn, 0.0, 1000.0) == [(100.0, 160.0), (400.0, 500.0)]
    assert gateway_downtime(conn, 450.0, 1000.0) == [(450.0, 500.0)]
