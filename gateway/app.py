"""App wiring and lifecycle: every part is started in a cleanup context, in order, and stopped in reverse."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
import time
from collections.abc import AsyncIterator

import aiohttp
from aiohttp import web

from adapters.mqtt.state_topics import StatePublisher
from adapters.upstreams.base import Upstream
from adapters.upstreams.http import HttpUpstream
from gateway.domain.config import GatewayConfig, HttpUpstreamConfig
from gateway.faces import web as faces
from gateway.services.alarms import AlarmFaces, AlarmService
from gateway.services.camera_health import CameraHealth, CameraRuntime
from gateway.services.history import record_transition
from gateway.services.outbox import Outbox
from gateway.services.patrol import Patrol
from gateway.services.snapshots import CameraSnapshots
from gateway.services.status import GatewayStatus
from gateway.services.storage import open_database
from gateway.services.supervisor import Supervisor
from monitoring.camera_state import CameraState, Transition

logger = logging.getLogger(__name__)

CONFIG = web.AppKey("config", GatewayConfig)
DB = web.AppKey("db", sqlite3.Connection)
SUPERVISOR = web.AppKey("supervisor", Supervisor)
STATUS = web.AppKey("status", GatewayStatus)
STATE_TOPICS = web.AppKey("state_topics", StatePublisher)
ALARMS = web.AppKey("alarms", AlarmService)
_RUN_ID = web.AppKey("run_id", int)

# How often the gateway notes that it is alive: the gap after the last note is its own downtime after a crash,
# shown as unknown in uptime rather than blamed on the cameras.
ALIVE_EVERY_S = 15.0
# Connections to cameras: many cameras, few requests each; one per camera at a time is what firmware expects.
CAMERA_CONNECTIONS = 512


async def _storage(app: web.Application) -> AsyncIterator[None]:
    config = app[CONFIG]
    conn = await asyncio.to_thread(open_database, config.storage.path)
    now = time.time()
    cursor = conn.execute("INSERT INTO gateway_runs (started_at, alive_at) VALUES (?, ?)", (now, now))
    app[DB] = conn
    app[_RUN_ID] = int(cursor.lastrowid or 0)
    logger.info("storage: %s open", config.storage.path)
    yield
    stopped = time.time()
    conn.execute("UPDATE gateway_runs SET alive_at = ?, stopped_at = ? WHERE id = ?", (stopped, stopped, app[_RUN_ID]))
    conn.close()


async def _supervisor(app: web.Application) -> AsyncIterator[None]:
    supervisor = Supervisor()
    app[SUPERVISOR] = supervisor

    async def note_alive() -> None:
        while True:
            await asyncio.sleep(ALIVE_EVERY_S)
            app[DB].execute("UPDATE gateway_runs SET alive_at = ? WHERE id = ?", (time.time(), app[_RUN_ID]))

    supervisor.start("alive", note_alive)
    yield
    await supervisor.stop()


async def _state_topics(app: web.Application) -> AsyncIterator[None]:
    config = app[CONFIG]
    publisher = StatePublisher(config.mqtt, config.school.id)
    app[STATE_TOPICS] = publisher
    await publisher.start()
    yield
    await publisher.stop()


def _camera_state_json(runtime: CameraRuntime) -> dict[str, object]:
    return {
        "state": runtime.machine.state.value,
        "reasons": sorted(runtime.machine.reasons),
        "since": runtime.machine.since,
        "name": runtime.config.name,
    }


async def _cameras(app: web.Application) -> AsyncIterator[None]:
    config, db, status = app[CONFIG], app[DB], app[STATUS]
    publisher = app[STATE_TOPICS]

    def on_transition(runtime: CameraRuntime, transition: Transition) -> None:
        record_transition(
            db, runtime.config.id, transition.at, transition.old.value, transition.new.value, transition.reasons
        )
        publisher.publish_camera(runtime.config.id, _camera_state_json(runtime))
        status.note_transition()

    connector = aiohttp.TCPConnector(limit=CAMERA_CONNECTIONS, limit_per_host=0, ttl_dns_cache=300)
    async with aiohttp.ClientSession(connector=connector) as session:
        health = CameraHealth(config.cameras, config.polling, session, on_transition=on_transition)
        _mark_restart(db, health)
        status.health = health
        for runtime in health.cameras.values():
            publisher.publish_camera(runtime.config.id, _camera_state_json(runtime))

        app[SUPERVISOR].start("cameras", health.run)
        app[SUPERVISOR].start("uptime", status.keep_uptime)
        patrol = Patrol(health, status.pictures, config.patrol, db=lambda: app[DB])
        app[SUPERVISOR].start("patrol", patrol.run)
        yield
        # Stop what uses the session before the session closes.
        await app[SUPERVISOR].stop_parts("patrol", "uptime", "cameras")


def _mark_restart(db: sqlite3.Connection, health: CameraHealth) -> None:
    """Each camera starts a run as unknown (or maintenance): say so in the history, so the state it had when the
    gateway last stopped is not carried over the restart."""
    now = time.time()
    last = dict(
        db.execute(
            "SELECT camera_id, new_state FROM camera_transitions WHERE id IN "
            "(SELECT MAX(id) FROM camera_transitions GROUP BY camera_id)"
        ).fetchall()
    )
    for camera_id, runtime in health.cameras.items():
        state = runtime.machine.state
        if last.get(camera_id, CameraState.UNKNOWN.value) != state.value:
            record_transition(db, camera_id, now, last.get(camera_id, "unknown"), state.value, frozenset())


async def _alarms(app: web.Application) -> AsyncIterator[None]:
    config, status = app[CONFIG], app[STATUS]
    supported = [u for u in config.upstreams if isinstance(u, HttpUpstreamConfig)]
    for upstream in config.upstreams:
        if not isinstance(upstream, HttpUpstreamConfig):
            logger.warning(
                "%s: upstream kind %r is not available in this version; not forwarding to it",
                upstream.name,
                upstream.kind,
            )
    outbox = await asyncio.to_thread(Outbox, config.storage.path, [u.name for u in supported])
    async with contextlib.AsyncExitStack() as stack:
        upstreams: list[Upstream] = []
        for upstream_config in supported:
            # One session per upstream for the life of the app: its connection pool and limits are its own.
            session = await stack.enter_async_context(aiohttp.ClientSession())
            upstreams.append(HttpUpstream(upstream_config, session))
        health = status.health
        service = AlarmService(config, outbox, upstreams, snapshots=CameraSnapshots(health) if health else None)
        app[ALARMS] = service
        await service.start()
        status.alarm_view = AlarmFaces(service)
        app[SUPERVISOR].start("buttons", service.supervise)
        yield
        await app[SUPERVISOR].stop_parts("buttons")
        await service.stop()
    outbox.close()


def create_app(config: GatewayConfig) -> web.Application:
    """The gateway as an aiohttp application; `web.run_app(create_app(cfg))` runs it."""
    app = web.Application()
    app[CONFIG] = config
    status = GatewayStatus(config, lambda: app[DB])
    app[STATUS] = status
    app.cleanup_ctx.append(_storage)
    app.cleanup_ctx.append(_supervisor)
    app.cleanup_ctx.append(_state_topics)
    app.cleanup_ctx.append(_cameras)
    app.cleanup_ctx.append(_alarms)
    tokens = {str(role): token.get_secret_value() for role, token in config.web.tokens.items()}
    faces.add_routes(app, status, tokens, config.web.host)
    return app
