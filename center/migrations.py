"""The center's schema, one list of versioned steps for SQLite and PostgreSQL alike.

The SQL is the subset both speak: TEXT, INTEGER, DOUBLE PRECISION (SQLite gives it REAL affinity), composite
primary keys, `ON CONFLICT DO NOTHING`; ids are text (event ids, uuids), so no SERIAL/AUTOINCREMENT split is needed.
Times the center makes are unix seconds (DOUBLE PRECISION); times a gateway sent are kept as it wrote them (TEXT).
"""

from __future__ import annotations

MIGRATIONS: list[tuple[int, list[str]]] = [
    (
        1,
        [
            # Every CloudEvent taken, whatever its type: the id is the dedupe key across all instances.
            """CREATE TABLE events (
                id TEXT PRIMARY KEY,
                school_id TEXT NOT NULL,
                type TEXT NOT NULL,
                time TEXT,
                received_at DOUBLE PRECISION NOT NULL,
                via TEXT NOT NULL,
                body TEXT NOT NULL)""",
            "CREATE INDEX events_by_school ON events (school_id, received_at)",
            """CREATE TABLE alarms (
                id TEXT PRIMARY KEY,
                school_id TEXT NOT NULL,
                button_id TEXT NOT NULL,
                button_name TEXT NOT NULL,
                location TEXT NOT NULL,
                type TEXT NOT NULL,
                button_event_id TEXT NOT NULL,
                pressed_at TEXT,
                received_at TEXT,
                stored_at DOUBLE PRECISION NOT NULL,
                ack_by TEXT,
                ack_at DOUBLE PRECISION,
                ack_sent_at DOUBLE PRECISION,
                ack_confirmed INTEGER NOT NULL DEFAULT 0)""",
            "CREATE INDEX alarms_by_time ON alarms (stored_at)",
            "CREATE INDEX alarms_by_button_event ON alarms (school_id, button_event_id)",
            """CREATE TABLE pictures (
                event_id TEXT NOT NULL,
                position INTEGER NOT NULL,
                school_id TEXT NOT NULL,
                button_event_id TEXT NOT NULL,
                camera_id TEXT NOT NULL,
                camera_name TEXT NOT NULL,
                jpeg_base64 TEXT NOT NULL,
                PRIMARY KEY (event_id, position))""",
            "CREATE INDEX pictures_by_button_event ON pictures (school_id, button_event_id)",
            """CREATE TABLE reports (
                school_id TEXT PRIMARY KEY,
                event_id TEXT NOT NULL,
                received_at DOUBLE PRECISION NOT NULL,
                report_every_s DOUBLE PRECISION NOT NULL,
                data TEXT NOT NULL)""",
            """CREATE TABLE camera_states (
                school_id TEXT NOT NULL,
                camera_id TEXT NOT NULL,
                state TEXT NOT NULL,
                since DOUBLE PRECISION NOT NULL,
                PRIMARY KEY (school_id, camera_id))""",
            """CREATE TABLE hazards (
                id TEXT PRIMARY KEY,
                school_id TEXT NOT NULL,
                kind TEXT NOT NULL,
                subject TEXT NOT NULL,
                detail TEXT NOT NULL,
                opened_at DOUBLE PRECISION NOT NULL,
                deadline DOUBLE PRECISION NOT NULL,
                opened_by TEXT NOT NULL,
                auto INTEGER NOT NULL,
                told_at DOUBLE PRECISION,
                closed_at DOUBLE PRECISION,
                closed_by TEXT,
                close_reason TEXT)""",
            "CREATE INDEX hazards_by_school ON hazards (school_id, closed_at)",
            """CREATE TABLE patrols (
                id TEXT PRIMARY KEY,
                school_id TEXT NOT NULL,
                by_name TEXT NOT NULL,
                at DOUBLE PRECISION NOT NULL,
                found TEXT NOT NULL)""",
            "CREATE INDEX patrols_by_school ON patrols (school_id, at)",
        ],
    ),
]
