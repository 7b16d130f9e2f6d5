"""The center's store: one schema on SQLite (default) or PostgreSQL, through the plain DB-API drivers.

Driver choice, measured (`bench/center.py --drivers`, 3,000 WAL inserts with synchronous=FULL on this 2-core machine,
run twice, noisy): sqlite3 p50 1.0–3.5 ms, SQLAlchemy Core over the same file p50 1.4–4.0 ms; the fsync dominates and
SQLAlchemy adds ~0.4 ms of Python per statement, on the one thread every write goes through. The SQL here is the
portable subset, so a dialect needs only its placeholder style and how it opens a transaction.

Every call runs on one thread of the store's own (a single connection is not shared across threads), so the event
loop never waits on the disk. Writes are batched by the caller: one transaction, one fsync, many events.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ParamSpec, TypeVar
from urllib.parse import unquote, urlsplit

from center.migrations import MIGRATIONS
from gateway.domain.errors import StorageError
from monitoring.city import DEFAULT_REPORT_EVERY_S

logger = logging.getLogger(__name__)

P = ParamSpec("P")
T = TypeVar("T")


def _driver_errors() -> tuple[type[Exception], ...]:
    try:
        import psycopg
    except ImportError:  # SQLite-only installs
        return (sqlite3.Error, OSError)
    return (sqlite3.Error, OSError, psycopg.Error)


DRIVER_ERRORS = _driver_errors()

# Two center instances migrating one PostgreSQL database at once take turns on this advisory lock.
PG_MIGRATION_LOCK = 0x48555849  # "HUXI"
# Threads for reads (API, report answers) beside the one writer: two cores, and reads mostly wait on the database.
READERS = 2
# SQLite: a writer waits this long for another process's lock before the write fails (a second process on the
# same file, such as `huxiao center` and a CLI reading it).
SQLITE_BUSY_TIMEOUT_S = 5.0


@dataclass(frozen=True, slots=True)
class IncomingEvent:
    """One CloudEvent as the intake parsed it; `body` is the exact text received."""

    id: str
    school_id: str
    type: str
    time: str | None
    data: dict[str, Any]
    body: str
    via: str  # "http" or "mqtt"


def _plain_url(url: str) -> str:
    """The URL without its password, for logs."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
    return parts._replace(netloc=netloc).geturl()


class Database:
    """One DB-API connection with the dialect's differences (placeholders, transactions) in one place."""

    def __init__(self, url: str) -> None:
        self.url = url
        scheme = urlsplit(url).scheme
        self.dialect = "sqlite" if scheme == "sqlite" else "postgresql"
        try:
            self._conn: Any = self._connect_sqlite(url) if self.dialect == "sqlite" else self._connect_pg(url)
        except (sqlite3.Error, OSError) as exc:
            raise StorageError(f"cannot open {_plain_url(url)}: {exc}") from exc
        except Exception as exc:  # psycopg's errors are not importable when only SQLite is used
            if self.dialect == "postgresql":
                raise StorageError(f"cannot open {_plain_url(url)}: {exc}") from exc
            raise

    @staticmethod
    def _connect_sqlite(url: str) -> sqlite3.Connection:
        path = Path(url.removeprefix("sqlite:///"))
        path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(path, isolation_level=None, timeout=SQLITE_BUSY_TIMEOUT_S, check_same_thread=False)
        conn.execute("PRAGMA journal_mode=WAL")
        # An alarm is acknowledged to its sender only after this commit: FULL makes the commit survive power loss.
        conn.execute("PRAGMA synchronous=FULL")
        return conn

    @staticmethod
    def _connect_pg(url: str) -> Any:
        import psycopg

        parts = urlsplit(url)
        return psycopg.connect(
            host=parts.hostname or "127.0.0.1",
            port=parts.port or 5432,
            user=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password else None,
            dbname=parts.path.lstrip("/"),
            autocommit=True,
            connect_timeout=10,
        )

    def _sql(self, sql: str) -> str:
        return sql.replace("?", "%s") if self.dialect == "postgresql" else sql

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Any:
        return self._conn.execute(self._sql(sql), tuple(params))

    def rows(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        return list(self.execute(sql, params).fetchall())

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        if self.dialect == "sqlite":
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")
        else:
            with self._conn.transaction():
                yield

    def close(self) -> None:
        self._conn.close()

    def broken(self) -> bool:
        return self.dialect == "postgresql" and bool(self._conn.closed or self._conn.broken)


def migrate(db: Database) -> int:
    """Bring the schema to the newest version; returns it. Safe with several instances starting at once."""
    with db.transaction():
        if db.dialect == "postgresql":
            db.execute("SELECT pg_advisory_xact_lock(?)", (PG_MIGRATION_LOCK,))
        db.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
        found = db.rows("SELECT MAX(version) FROM schema_version")
        current = int(found[0][0]) if found and found[0][0] is not None else 0
        for version, statements in MIGRATIONS:
            if version <= current:
                continue
            for statement in statements:
                db.execute(statement)
            db.execute("INSERT INTO schema_version (version) VALUES (?)", (version,))
            current = version
    return current


ALARM_COLUMNS = (
    "id, school_id, button_id, button_name, location, type, button_event_id, pressed_at, received_at, stored_at, "
    "ack_by, ack_at"
)


REPORT_TYPE = "cn.huxiao.status"


def report_every(data: dict[str, Any]) -> float:
    every = data.get("report_every_s")
    valid = isinstance(every, int | float) and not isinstance(every, bool) and every > 0
    return float(every) if valid else DEFAULT_REPORT_EVERY_S  # type: ignore[arg-type]


def _alarm_type(event_type: str) -> str | None:
    """`cn.huxiao.alarm.panic` → `panic`; None for events that are not alarms (pictures, button offline...)."""
    prefix = "cn.huxiao.alarm."
    if event_type.startswith(prefix) and event_type != prefix + "pictures":
        return event_type[len(prefix) :]
    return None


class Store:
    """The center's tables. Sync methods run on the store's threads: `run` on the one writer (the intake's
    batches, acks, hazards), `read` on the readers (the API and report answers), each thread with its own
    connection, so a burst of reads never holds an alarm's commit back."""

    def __init__(self, url: str, clock: Callable[[], float] = time.time, instance: str | None = None) -> None:
        self.url = url
        # Names this process in cross-instance notices (PostgreSQL), so it skips its own.
        self.instance = instance or str(uuid.uuid4())
        self.dialect = "sqlite" if urlsplit(url).scheme == "sqlite" else "postgresql"
        self._clock = clock
        self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="center-store")
        self._readers = ThreadPoolExecutor(max_workers=READERS, thread_name_prefix="center-read")
        self._local = threading.local()
        self._connections: list[Database] = []
        self._lock = threading.Lock()
        self._opened = False  # migrated once: from then on every thread opens (and reopens) its own connection

    # lifecycle ----------------------------------------------------------------------------------------------------
    def open(self) -> None:
        version = migrate(self.connection())
        self._opened = True
        logger.info("store %s at schema version %d", _plain_url(self.url), version)

    def connection(self) -> Database:
        db = Database(self.url)
        with self._lock:
            self._connections.append(db)
        self._local.db = db
        return db

    async def start(self) -> None:
        await self.run(self.open)

    async def stop(self) -> None:
        self._opened = False
        self._writer.shutdown(wait=True)
        self._readers.shutdown(wait=True)
        with self._lock:
            connections, self._connections = self._connections, []
        for db in connections:
            with contextlib.suppress(*DRIVER_ERRORS):
                db.close()

    async def run(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """`fn` on the writer thread. A driver error becomes a StorageError; a PostgreSQL connection that broke
        (server restarted, network cut) is opened again for the next call."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._writer, lambda: self._guarded(fn, *args, **kwargs))

    async def read(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """`fn` on a reader thread (it may write now and then: the database serialises that)."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._readers, lambda: self._guarded(fn, *args, **kwargs))

    def _guarded(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        db: Database | None = getattr(self._local, "db", None)
        if db is not None and db.broken():
            logger.warning("store %s: connection lost; opening it again", _plain_url(self.url))
            with contextlib.suppress(*DRIVER_ERRORS):
                db.close()
            with self._lock:
                if db in self._connections:
                    self._connections.remove(db)
            self._local.db = None
        try:
            return fn(*args, **kwargs)
        except DRIVER_ERRORS as exc:
            raise StorageError(f"store {_plain_url(self.url)}: {type(exc).__name__}: {exc}") from exc

    @property
    def db(self) -> Database:
        """This thread's connection, opened on first use once the store is open."""
        db: Database | None = getattr(self._local, "db", None)
        if db is None:
            if not self._opened:
                raise StorageError("the store is not open")
            db = self.connection()
        return db

    def ping(self) -> None:
        self.db.rows("SELECT 1")

    # intake -------------------------------------------------------------------------------------------------------
    def take_events(self, events: Sequence[IncomingEvent]) -> list[bool]:
        """Store a batch in one transaction; for each event, True when it is new, False for a duplicate id.

        Multi-row statements (a few per batch, not a few per event): on PostgreSQL each statement is a round trip,
        which at 1,000 alarms/s would otherwise be most of the work."""
        db = self.db
        now = self._clock()
        new_ids: set[str] = set()
        try:
            with db.transaction():
                unique = list({e.id: e for e in events}.values())
                for chunk in _chunks(unique, ROWS_PER_STATEMENT):
                    rows = [(e.id, e.school_id, e.type, e.time, now, e.via, e.body) for e in chunk]
                    inserted = db.rows(
                        "INSERT INTO events (id, school_id, type, time, received_at, via, body) VALUES "
                        + _values(len(rows), 7)
                        + " ON CONFLICT (id) DO NOTHING RETURNING id",
                        [v for row in rows for v in row],
                    )
                    new_ids.update(str(r[0]) for r in inserted)
                fresh_events = [e for e in unique if e.id in new_ids]
                alarm_rows = [r for r in (_alarm_row(e, now) for e in fresh_events) if r is not None]
                for alarm_chunk in _chunks(alarm_rows, ROWS_PER_STATEMENT):
                    db.execute(
                        f"INSERT INTO alarms ({ALARM_COLUMNS}) VALUES " + _values(len(alarm_chunk), 12),
                        [v for row in alarm_chunk for v in row],
                    )
                # Reports are filed in the same transaction: 100 reports/s must not cost 100 more fsyncs.
                for event in fresh_events:
                    if event.type == REPORT_TYPE:
                        self._write_report(db, event.school_id, event.id, report_every(event.data), event.data, now)
                picture_rows = [row for e in fresh_events for row in _picture_rows(e)]
                for picture_chunk in _chunks(picture_rows, ROWS_PER_STATEMENT):
                    db.execute(
                        "INSERT INTO pictures (event_id, position, school_id, button_event_id, camera_id, camera_name, "
                        "jpeg_base64) VALUES " + _values(len(picture_chunk), 7) + " ON CONFLICT DO NOTHING",
                        [v for row in picture_chunk for v in row],
                    )
                if db.dialect == "postgresql" and alarm_rows:
                    shown: dict[str, list[dict[str, Any]]] = {}
                    for row in picture_rows:
                        shown.setdefault(str(row[0]), []).append(
                            {"camera": {"id": row[4], "name": row[5]}, "url": f"/api/pictures/{row[0]}/{row[1]}.jpg"}
                        )
                    feed_rows = [{**_alarm_dict(r), "pictures": shown.get(str(r[0]), [])} for r in alarm_rows]
                    self._notify(db, "alarm", feed_rows)
        except DRIVER_ERRORS as exc:
            raise StorageError(f"cannot store events: {exc}") from exc
        # The first of two events with one id in the same batch is the new one; the second a duplicate.
        first: set[str] = set()
        fresh = []
        for event in events:
            fresh.append(event.id in new_ids and event.id not in first)
            first.add(event.id)
        return fresh

    def _notify(self, db: Database, kind: str, items: list[Any]) -> None:
        """Tell the other instances on this PostgreSQL (delivered at commit; SQLite has one instance)."""
        if db.dialect == "postgresql" and items:
            from center.pg_feed import CHANNEL, notices

            for payload in notices(self.instance, kind, items):
                db.execute("SELECT pg_notify(?, ?)", (CHANNEL, payload))

    def connect_again(self) -> Any:
        """A connection of its own to the same database (the cross-instance listener's), not shared."""
        return Database(self.url)._conn

    def alarms_by_ids(self, ids: Sequence[str]) -> list[dict[str, Any]]:
        if not ids:
            return []
        marks = ", ".join("?" for _ in ids)
        rows = self.db.rows(f"SELECT {ALARM_COLUMNS} FROM alarms WHERE id IN ({marks}) ORDER BY stored_at", list(ids))
        return self._with_pictures([_alarm_dict(r) for r in rows])

    # alarms -------------------------------------------------------------------------------------------------------
    def alarms(self, limit: int, school_id: str | None = None) -> list[dict[str, Any]]:
        where, params = ("WHERE school_id = ?", [school_id]) if school_id else ("", [])
        rows = self.db.rows(
            f"SELECT {ALARM_COLUMNS} FROM alarms {where} ORDER BY stored_at DESC, id LIMIT ?", [*params, limit]
        )
        return self._with_pictures([_alarm_dict(r) for r in rows])

    def alarm(self, alarm_id: str) -> dict[str, Any] | None:
        rows = self.db.rows(f"SELECT {ALARM_COLUMNS} FROM alarms WHERE id = ?", (alarm_id,))
        return self._with_pictures([_alarm_dict(rows[0])])[0] if rows else None

    def alarm_by_button_event(self, school_id: str, button_event_id: str) -> dict[str, Any] | None:
        rows = self.db.rows(
            f"SELECT {ALARM_COLUMNS} FROM alarms WHERE school_id = ? AND button_event_id = ?",
            (school_id, button_event_id),
        )
        return self._with_pictures([_alarm_dict(rows[0])])[0] if rows else None

    def _with_pictures(self, alarms: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Each alarm's pictures (those it carried and those that followed it), in one query per 100 alarms."""
        found: dict[tuple[str, str], list[dict[str, Any]]] = {}
        wanted = sorted({str(a["button_event_id"]) for a in alarms})
        for chunk in _chunks(wanted, ROWS_PER_STATEMENT):
            marks = ", ".join("?" for _ in chunk)
            rows = self.db.rows(
                "SELECT school_id, button_event_id, event_id, position, camera_id, camera_name FROM pictures "
                f"WHERE button_event_id IN ({marks}) ORDER BY event_id, position",
                list(chunk),
            )
            for school_id, button_event_id, event_id, position, cam, name in rows:
                found.setdefault((school_id, button_event_id), []).append(
                    {"camera": {"id": cam, "name": name}, "url": f"/api/pictures/{event_id}/{position}.jpg"}
                )
        for alarm in alarms:
            alarm["pictures"] = found.get((alarm["school_id"], alarm["button_event_id"]), [])
        return alarms

    def picture(self, event_id: str, position: int) -> str | None:
        rows = self.db.rows(
            "SELECT jpeg_base64 FROM pictures WHERE event_id = ? AND position = ?", (event_id, position)
        )
        return str(rows[0][0]) if rows else None

    def acknowledge(self, alarm_id: str, by: str) -> tuple[dict[str, Any] | None, bool]:
        """(the alarm, whether this call acknowledged it); an alarm already acknowledged keeps its first ack."""
        db = self.db
        with db.transaction():
            changed = db.rows(
                "UPDATE alarms SET ack_by = ?, ack_at = ? WHERE id = ? AND ack_at IS NULL RETURNING id",
                (by, self._clock(), alarm_id),
            )
            if changed:
                self._notify(db, "ack", [alarm_id])
        return self.alarm(alarm_id), bool(changed)

    def pending_acks(self, school_id: str) -> list[dict[str, Any]]:
        """Operator acknowledgements the school's gateway has not confirmed, oldest first."""
        rows = self.db.rows(
            "SELECT button_event_id, ack_by, ack_at FROM alarms "
            "WHERE school_id = ? AND ack_at IS NOT NULL AND ack_confirmed = 0 ORDER BY ack_at",
            (school_id,),
        )
        return [{"button_event_id": b, "by": by, "at": _iso(at)} for b, by, at in rows]

    def acks_told(self, school_id: str, button_event_ids: Sequence[str], confirm_before: float) -> None:
        """Record that these acks went out in an answer; acks first told before `confirm_before` are confirmed
        (the gateway has had them in several answers and publishes `acknowledged` once whatever it gets)."""
        if not button_event_ids:
            return  # nothing pending, nothing to confirm: no transaction (and no fsync) per report
        db = self.db
        now = self._clock()
        with db.transaction():
            for button_event_id in button_event_ids:
                db.execute(
                    "UPDATE alarms SET ack_sent_at = ? WHERE school_id = ? AND button_event_id = ? "
                    "AND ack_sent_at IS NULL",
                    (now, school_id, button_event_id),
                )
            db.execute(
                "UPDATE alarms SET ack_confirmed = 1 WHERE school_id = ? AND ack_sent_at IS NOT NULL "
                "AND ack_sent_at < ? AND ack_confirmed = 0",
                (school_id, confirm_before),
            )

    def confirm_acks(self, school_id: str, button_event_ids: Sequence[str]) -> None:
        """The gateway said (in its report's `acknowledged`) that it has published these."""
        db = self.db
        with db.transaction():
            for button_event_id in button_event_ids:
                db.execute(
                    "UPDATE alarms SET ack_confirmed = 1 WHERE school_id = ? AND button_event_id = ?",
                    (school_id, button_event_id),
                )

    def recent_events(self, kinds: Sequence[str], since: float) -> list[dict[str, Any]]:
        """Non-alarm events (button offline, ...) since a moment, newest first, for the console's failures list."""
        if not kinds:
            return []
        marks = ", ".join("?" for _ in kinds)
        rows = self.db.rows(
            f"SELECT id, school_id, type, received_at, body FROM events WHERE type IN ({marks}) AND received_at >= ? "
            "ORDER BY received_at DESC LIMIT 200",
            [*kinds, since],
        )
        out = []
        for event_id, school_id, kind, at, body in rows:
            data = json.loads(body).get("data", {})
            out.append({"id": event_id, "school_id": school_id, "type": kind, "at": _iso(at), "data": data})
        return out

    # reports ------------------------------------------------------------------------------------------------------
    def save_report(self, school_id: str, event_id: str, report_every_s: float, data: dict[str, Any]) -> None:
        with self.db.transaction():
            self._write_report(self.db, school_id, event_id, report_every_s, data, self._clock())

    @staticmethod
    def _write_report(
        db: Database, school_id: str, event_id: str, report_every_s: float, data: dict[str, Any], now: float
    ) -> None:
        cameras = data.get("cameras") if isinstance(data.get("cameras"), list) else []
        db.execute(
            "INSERT INTO reports (school_id, event_id, received_at, report_every_s, data) VALUES (?, ?, ?, ?, ?) "
            "ON CONFLICT (school_id) DO UPDATE SET event_id = excluded.event_id, "
            "received_at = excluded.received_at, report_every_s = excluded.report_every_s, data = excluded.data",
            (school_id, event_id, now, report_every_s, json.dumps(data, ensure_ascii=False)),
        )
        rows = {
            str(c["id"]): (school_id, str(c["id"]), str(c.get("state", "unknown")), now)
            for c in cameras or []
            if isinstance(c, dict) and "id" in c
        }
        for chunk in _chunks(list(rows.values()), ROWS_PER_STATEMENT):
            db.execute(
                "INSERT INTO camera_states (school_id, camera_id, state, since) VALUES "
                + _values(len(chunk), 4)
                + " ON CONFLICT (school_id, camera_id) DO UPDATE SET state = excluded.state, "
                "since = CASE WHEN camera_states.state = excluded.state THEN camera_states.since "
                "ELSE excluded.since END",
                [v for row in chunk for v in row],
            )

    def reports(self) -> dict[str, tuple[float, float, dict[str, Any]]]:
        """school id → (received_at, report_every_s, data) of its latest report."""
        rows = self.db.rows("SELECT school_id, received_at, report_every_s, data FROM reports")
        return {s: (float(at), float(every), json.loads(data)) for s, at, every, data in rows}

    def report(self, school_id: str) -> tuple[float, float, dict[str, Any]] | None:
        rows = self.db.rows("SELECT received_at, report_every_s, data FROM reports WHERE school_id = ?", (school_id,))
        return (float(rows[0][0]), float(rows[0][1]), json.loads(rows[0][2])) if rows else None

    def camera_states(self, school_id: str) -> dict[str, tuple[str, float]]:
        rows = self.db.rows("SELECT camera_id, state, since FROM camera_states WHERE school_id = ?", (school_id,))
        return {c: (str(state), float(since)) for c, state, since in rows}

    # hazards and patrols ------------------------------------------------------------------------------------------
    def open_hazard(
        self, school_id: str, kind: str, subject: str, detail: str, deadline: float, by: str, auto: bool
    ) -> dict[str, Any]:
        """Open a hazard, unless the same (school, kind, subject) is open already: then that one is returned."""
        db = self.db
        with db.transaction():
            found = db.rows(
                f"SELECT {HAZARD_COLUMNS} FROM hazards WHERE school_id = ? AND kind = ? AND subject = ? "
                "AND closed_at IS NULL",
                (school_id, kind, subject),
            )
            if found:
                return _hazard_dict(found[0])
            hazard_id = str(uuid.uuid4())
            db.execute(
                "INSERT INTO hazards (id, school_id, kind, subject, detail, opened_at, deadline, opened_by, auto) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (hazard_id, school_id, kind, subject, detail, self._clock(), deadline, by, int(auto)),
            )
            return _hazard_dict(db.rows(f"SELECT {HAZARD_COLUMNS} FROM hazards WHERE id = ?", (hazard_id,))[0])

    def close_hazard(self, hazard_id: str, by: str, reason: str) -> dict[str, Any] | None:
        db = self.db
        with db.transaction():
            db.execute(
                "UPDATE hazards SET closed_at = ?, closed_by = ?, close_reason = ? WHERE id = ? AND closed_at IS NULL",
                (self._clock(), by, reason, hazard_id),
            )
            rows = db.rows(f"SELECT {HAZARD_COLUMNS} FROM hazards WHERE id = ?", (hazard_id,))
        return _hazard_dict(rows[0]) if rows else None

    def hazards(self, open_only: bool = False, school_id: str | None = None) -> list[dict[str, Any]]:
        clauses, params = [], []
        if open_only:
            clauses.append("closed_at IS NULL")
        if school_id is not None:
            clauses.append("school_id = ?")
            params.append(school_id)
        where = ("WHERE " + " AND ".join(clauses)) if clauses else ""
        rows = self.db.rows(f"SELECT {HAZARD_COLUMNS} FROM hazards {where} ORDER BY opened_at DESC", params)
        return [_hazard_dict(r) for r in rows]

    def hazards_told(self, hazard_ids: Sequence[str]) -> None:
        if not hazard_ids:
            return
        db = self.db
        with db.transaction():
            for hazard_id in hazard_ids:
                db.execute(
                    "UPDATE hazards SET told_at = ? WHERE id = ? AND told_at IS NULL", (self._clock(), hazard_id)
                )

    def log_patrol(self, school_id: str, by: str, found: str) -> dict[str, Any]:
        patrol_id = str(uuid.uuid4())
        at = self._clock()
        with self.db.transaction():
            self.db.execute(
                "INSERT INTO patrols (id, school_id, by_name, at, found) VALUES (?, ?, ?, ?, ?)",
                (patrol_id, school_id, by, at, found),
            )
        return {"id": patrol_id, "school_id": school_id, "by": by, "at": _iso(at), "found": found}

    def patrols(self, school_id: str | None = None, limit: int = 200) -> list[dict[str, Any]]:
        where, params = ("WHERE school_id = ?", [school_id]) if school_id else ("", [])
        rows = self.db.rows(
            f"SELECT id, school_id, by_name, at, found FROM patrols {where} ORDER BY at DESC LIMIT ?", [*params, limit]
        )
        return [{"id": i, "school_id": s, "by": b, "at": _iso(at), "found": f} for i, s, b, at, f in rows]


HAZARD_COLUMNS = (
    "id, school_id, kind, subject, detail, opened_at, deadline, opened_by, auto, told_at, closed_at, closed_by, "
    "close_reason"
)


ROWS_PER_STATEMENT = 100  # 100 rows × 12 columns stays far below SQLite's 32,766 variables per statement


def _chunks(items: Sequence[T], size: int) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _values(rows: int, columns: int) -> str:
    one = "(" + ", ".join("?" for _ in range(columns)) + ")"
    return ", ".join(one for _ in range(rows))


def _alarm_row(event: IncomingEvent, now: float) -> tuple[Any, ...] | None:
    kind = _alarm_type(event.type)
    if kind is None:
        return None
    data = event.data
    button: dict[str, Any] = data["button"] if isinstance(data.get("button"), dict) else {}
    return (
        event.id,
        event.school_id,
        str(button.get("id", "")),
        str(button.get("name", "")),
        str(button.get("location", "") or ""),
        kind,
        str(data.get("button_event_id") or event.id),
        _text(data.get("pressed_at")),
        _text(data.get("received_at")),
        now,
        None,
        None,
    )


def _picture_rows(event: IncomingEvent) -> list[tuple[Any, ...]]:
    cameras = event.data.get("cameras")
    if not isinstance(cameras, list):
        return []
    button_event_id = str(event.data.get("button_event_id") or event.id)
    return [
        (
            event.id,
            position,
            event.school_id,
            button_event_id,
            str(c.get("id", "")),
            str(c.get("name", "")),
            str(c["snapshot_jpeg_base64"]),
        )
        for position, c in enumerate(cameras)
        if isinstance(c, dict) and c.get("snapshot_jpeg_base64")
    ]


def _text(value: object) -> str | None:
    return None if value is None else str(value)


def _iso(at: float | None) -> str | None:
    if at is None:
        return None
    from datetime import UTC, datetime

    return datetime.fromtimestamp(float(at), UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _alarm_dict(row: tuple[Any, ...]) -> dict[str, Any]:
    (
        alarm_id,
        school_id,
        button_id,
        button_name,
        location,
        kind,
        button_event_id,
        pressed,
        received,
        stored,
        by,
        at,
    ) = row
    return {
        "id": alarm_id,
        "school_id": school_id,
        "button": {"id": button_id, "name": button_name, "location": location},
        "type": kind,
        "button_event_id": button_event_id,
        "pressed_at": pressed,
        "received_at": received,
        "stored_at": _iso(stored),
        "acknowledged": {"by": by, "at": _iso(at)} if at is not None else None,
    }


def _hazard_dict(row: tuple[Any, ...]) -> dict[str, Any]:
    (hazard_id, school_id, kind, subject, detail, opened, deadline, by, auto, told, closed, closed_by, reason) = row
    return {
        "id": hazard_id,
        "school_id": school_id,
        "kind": kind,
        "subject": subject,
        "detail": detail,
        "opened_at": _iso(opened),
        "deadline": _iso(deadline),
        "deadline_ts": float(deadline),
        "opened_by": by,
        "auto": bool(auto),
        "told_at": _iso(told),
        "closed_at": _iso(closed),
        "closed_by": closed_by,
        "close_reason": reason,
    }
