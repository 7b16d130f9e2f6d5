"""The database schema, as an append-only list of migrations: never edit a released step, add the next one."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    description: str
    sql: str


MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        1,
        "camera state history, gateway runs, discovered media, patrol results",
        """
        CREATE TABLE camera_transitions (
            id INTEGER PRIMARY KEY,
            camera_id TEXT NOT NULL,
            at REAL NOT NULL,
            old_state TEXT NOT NULL,
            new_state TEXT NOT NULL,
            reasons TEXT NOT NULL DEFAULT '[]'
        );
        CREATE INDEX camera_transitions_by_camera ON camera_transitions (camera_id, at);

        -- One row per process lifetime; the gaps between runs are the gateway's own downtime, shown as
        -- unknown rather than counted against the cameras.
        CREATE TABLE gateway_runs (
            id INTEGER PRIMARY KEY,
            started_at REAL NOT NULL,
            alive_at REAL NOT NULL,
            stopped_at REAL
        );

        CREATE TABLE camera_media (
            camera_id TEXT PRIMARY KEY,
            manufacturer TEXT, model TEXT, firmware TEXT, serial TEXT,
            auth_method TEXT,
            profile_token TEXT,
            stream_uri TEXT,
            snapshot_uri TEXT,
            codec TEXT, width INTEGER, height INTEGER,
            refreshed_at REAL NOT NULL
        );

        CREATE TABLE patrol_results (
            id INTEGER PRIMARY KEY,
            camera_id TEXT NOT NULL,
            at REAL NOT NULL,
            verdict TEXT NOT NULL,
            checks TEXT NOT NULL DEFAULT '[]',
            thumbnail BLOB
        );
        CREATE INDEX patrol_results_by_camera ON patrol_results (camera_id, at);
        """,
    ),
    Migration(
        2,
        "alarm outbox: events (same CloudEvents id on every retry) and their delivery per upstream",
        """
        CREATE TABLE events (
            seq INTEGER PRIMARY KEY AUTOINCREMENT,
            id TEXT NOT NULL UNIQUE,
            type TEXT NOT NULL,
            button_id TEXT,
            button_event_id TEXT,
            created_at REAL NOT NULL,
            body TEXT NOT NULL
        );
        -- A button's event id is unique per button and type: the same press delivered twice is one alarm.
        CREATE UNIQUE INDEX events_by_button_event ON events (button_id, type, button_event_id);
        CREATE INDEX events_by_type ON events (type, button_id, created_at);

        CREATE TABLE deliveries (
            upstream TEXT NOT NULL,
            event_seq INTEGER NOT NULL REFERENCES events (seq),
            state TEXT NOT NULL DEFAULT 'pending',
            attempts INTEGER NOT NULL DEFAULT 0,
            next_attempt_at REAL NOT NULL DEFAULT 0,
            delivered_at REAL,
            last_error TEXT,
            PRIMARY KEY (upstream, event_seq)
        );
        CREATE INDEX deliveries_pending ON deliveries (upstream, state, event_seq);
        """,
    ),
    Migration(
        3,
        "operator acknowledgements from the command center, each published to its button once",
        """
        -- One row per alarm an operator acknowledged at the center; published_at is set once the button's ack
        -- topic has it, so a restart neither repeats nor forgets an `acknowledged`.
        CREATE TABLE acknowledgements (
            button_id TEXT NOT NULL,
            button_event_id TEXT NOT NULL,
            by TEXT NOT NULL,
            at TEXT NOT NULL,
            received_at REAL NOT NULL,
            published_at REAL,
            PRIMARY KEY (button_id, button_event_id)
        );
        """,
    ),
    Migration(
        4,
        "signed buttons: the last sequence number accepted from each, so a replay is refused after a restart too",
        """
        CREATE TABLE button_sequences (
            button_id TEXT PRIMARY KEY,
            last_seq INTEGER NOT NULL,
            event_id TEXT NOT NULL,
            accepted_at REAL NOT NULL
        );
        """,
    ),
)
