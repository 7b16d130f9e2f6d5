"""App wiring and lifecycle: every part is started in a cleanup context, in order, and stopped in reverse.

Every long-running task is a part of the one supervisor (crashes logged, counted, restarted, shown in /healthz);
every part adds its checks to the health board as it starts.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import time
from collections.abc import AsyncIterator

import aiohttp
from aiohttp import web

from adapters.mqtt.state_topics import StatePublisher
from adapters.upstreams.gb28181 import Gb28181Upstream
from adapters.upstreams.http import HttpUpstream
from adapters.upstreams.mqtt import MqttUpstream
from gateway.domain.camera import CameraState
from gateway.domain.config import GatewayConfig, Gb28181UpstreamConfig, HttpUpstreamConfig, MqttUpstreamConfig
from gateway.faces import web as faces
from gateway.services.acknowledgements import AckRelay
from gateway.services.alarm_path import AlarmPath
from gateway.services.alarm_view import AlarmView
from gateway.services.alarms import AlarmService
from gateway.services.camera_health import CameraHealth, CameraRuntime
from gateway.services.database import Database
from gateway.services.forwarder import Forwarder
from gateway.services.health import BROKER_GRACE_S, EVALUATE_EVERY_S, Check, HealthBoard, Verdict
from gateway.services.history import record_transition
from gateway.services.live_video import CameraStream, LiveVideoRelay
from gateway.services.patrol import Patrol
from gateway.services.reports import ReportSender, ReportTarget
from gateway.services.snapshots import CameraSnapshots
from gateway.services.status import GatewayStatus
from gateway.services.supervisor import Supervisor
from monitoring.camera_state import Transition

logger = logging.getLogger(__name__)

CONFIG = web.AppKey("config", GatewayConfig)
DB = web.AppKey("db", Database)
SUPERVISOR = web.AppKey("supervisor", Supervisor)
STATUS = web.AppKey("status", GatewayStatus)
HEALTH = web.AppKey("health", HealthBoard)
STATE_TOPICS = web.AppKey("state_topics", StatePublisher)
ALARMS = web.AppKey("alarms", AlarmService)
LIVE = web.AppKey("live_video", LiveVideoRelay)
# The GB/T 28181 devices of this gateway, once the alarm path has opened them: camera and button changes become
# their channels' ON/OFF.
GB_DEVICES = web.AppKey("gb_devices", list[Gb28181Upstream])
REPORTS = web.AppKey("reports", ReportSender)
_RUN_ID = web.AppKey("run_id", int)

# How often the gateway notes that it is alive, which is also the storage probe: the gap after the last note is
# its own downtime after a crash (shown as unknown in uptime, not blamed on the cameras), and a failed note is an
# unwritable disk in /healthz within this long.
ALIVE_EVERY_S = 2.0
# Connections to cameras: many cameras, few requests each; one per camera at a time is what firmware expects.
CAMERA_CONNECTIONS = 512


def _start_run(conn: sqlite3.Connection) -> int:
    now = time.time()
    cursor = conn.execute("INSERT INTO gateway_runs (started_at, alive_at) VALUES (?, ?)", (now, now))
    return int(cursor.lastrowid or 0)


def _note_alive(conn: sqlite3.Connection, run_id: int) -> None:
    conn.execute("UPDATE gateway_runs SET alive_at = ? WHERE id = ?", (time.time(), run_id))


def _end_run(conn: sqlite3.Connection, run_id: int) -> None:
    stopped = time.time()
    conn.execute("UPDATE gateway_runs SET alive_at = ?, stopped_at = ? WHERE id = ?", (stopped, stopped, run_id))


async def _storage(app: web.Application) -> AsyncIterator[None]:
    config = app[CONFIG]
    db = await Database.open(config.storage.path)
    app[DB] = db
    app[_RUN_ID] = await db.run(_start_run)
    logger.info("storage: %s open", config.storage.path)

    def storage() -> Verdict:
        outbox = app[ALARMS].outbox if ALARMS in app else None
        failure = db.failure or (outbox.failure if outbox is not None else None)
        return Verdict(failure is None, failure or f"{config.storage.path} writable")

    app[HEALTH].add("storage", storage, critical=True)
    yield
    try:
        await db.run(_end_run, app[_RUN_ID])
    except sqlite3.Error as exc:
        logger.error("storage: the end of this run was not recorded: %s", exc)
    await asyncio.to_thread(db.close)


async def _supervisor(app: web.Application) -> AsyncIterator[None]:
    supervisor = Supervisor()
    app[SUPERVISOR] = supervisor
    app[STATUS].crashes = supervisor.crashes
    db, board = app[DB], app[HEALTH]

    async def note_alive() -> None:
        while True:
            await db.write_now(_note_alive, app[_RUN_ID])
            await asyncio.sleep(ALIVE_EVERY_S)

    async def keep_health() -> None:
        # Evaluated on a timer too, not only when asked, so each part's `since` is the time it changed.
        while True:
            board.evaluate()
            await asyncio.sleep(EVALUATE_EVERY_S)

    supervisor.start("alive", note_alive)
    supervisor.start("health", keep_health)
    yield
    await supervisor.stop()


def running(supervisor: Supervisor, *names: str) -> Verdict:
    """Ok while every named part is running; else which one is not, and its last error."""
    status = supervisor.status()
    for name in names:
        part = status.get(name)
        if part is None or not part.running:
            why = part.last_error if part is not None and part.last_error else "not started"
            return Verdict(False, f"{name} is not running ({why})")
    return Verdict(True, "running")


async def _state_topics(app: web.Application) -> AsyncIterator[None]:
    config = app[CONFIG]
    publisher = StatePublisher(config.mqtt, config.school.id)
    app[STATE_TOPICS] = publisher
    app[SUPERVISOR].start("state-topics", publisher.run)
    yield
    await app[SUPERVISOR].stop_parts("state-topics")
    await publisher.stop()


def _camera_state_json(runtime: CameraRuntime) -> dict[str, object]:
    return {
        "state": runtime.machine.state.value,
        "reasons": sorted(runtime.machine.reasons),
        "since": runtime.machine.since,
        "name": runtime.config.name,
    }


async def _cameras(app: web.Application) -> AsyncIterator[None]:
    config, db, status, supervisor = app[CONFIG], app[DB], app[STATUS], app[SUPERVISOR]
    publisher = app[STATE_TOPICS]

    def on_transition(runtime: CameraRuntime, transition: Transition) -> None:
        # Queued to the database thread in order: a bad minute's thousand transitions never wait on the disk here.
        db.write(
            record_transition,
            runtime.config.id,
            transition.at,
            transition.old.value,
            transition.new.value,
            transition.reasons,
        )
        publisher.publish_camera(runtime.config.id, _camera_state_json(runtime))
        status.note_transition()
        for device in app[GB_DEVICES]:
            device.set_online(runtime.config.id, channel_on(runtime))

    connector = aiohttp.TCPConnector(limit=CAMERA_CONNECTIONS, limit_per_host=0, ttl_dns_cache=300)
    async with aiohttp.ClientSession(connector=connector) as session:
        health = CameraHealth(config.cameras, config.polling, session, on_transition=on_transition)
        await db.run(_mark_restart, health)
        status.health = health
        for runtime in health.cameras.values():
            publisher.publish_camera(runtime.config.id, _camera_state_json(runtime))

        supervisor.start("cameras", health.run)
        supervisor.start("uptime", status.keep_uptime)
        patrol = Patrol(health, status.pictures, config.patrol, db=lambda: db.conn)
        supervisor.start("patrol", patrol.run)
        app[HEALTH].add("cameras", lambda: running(supervisor, "cameras", "uptime"), critical=True)
        app[HEALTH].add("patrol", lambda: running(supervisor, "patrol"), critical=True)
        yield
        # Stop what uses the session before the session closes.
        app[HEALTH].remove("cameras", "patrol")
        await supervisor.stop_parts("patrol", "uptime", "cameras")


def channel_on(runtime: CameraRuntime) -> bool:
    """A camera's GB/T 28181 channel is ON while it is online, or degraded with a working stream."""
    state = runtime.machine.state
    working = runtime.stream is not None and runtime.stream.ok
    return state is CameraState.ONLINE or (state is CameraState.DEGRADED and working)


async def _live_video(app: web.Application) -> AsyncIterator[None]:
    """The relay a GB/T 28181 platform plays the cameras through (only with a gb28181 upstream)."""
    config, status = app[CONFIG], app[STATUS]
    gb = [u for u in config.upstreams if isinstance(u, Gb28181UpstreamConfig)]
    if not gb:
        yield
        return

    async def lookup(camera_id: str) -> CameraStream | None:
        runtime = status.health.cameras.get(camera_id) if status.health is not None else None
        if runtime is None or runtime.stream_uri is None:
            return None
        camera = runtime.config
        password = camera.password.get_secret_value() if camera.password else None
        return CameraStream(runtime.stream_uri, camera.username, password)

    # Media from the address the SIP side binds (`local`), so a platform on loopback gets loopback media.
    host = gb[0].local.rsplit(":", 1)[0] if gb[0].local else "0.0.0.0"
    async with LiveVideoRelay(lookup, bind_host=host, tasks=app[SUPERVISOR].tasks) as relay:
        app[LIVE] = relay
        status.live = relay
        yield
        status.live = None


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
    config, status, supervisor, board = app[CONFIG], app[STATUS], app[SUPERVISOR], app[HEALTH]
    snapshots = CameraSnapshots(status.health) if status.health is not None else None
    live = app.get(LIVE, None)
    async with AlarmPath(config, snapshots=snapshots, supervisor=supervisor, live=live) as path:
        service = path.service
        devices = [u for u in (f.upstream for f in service.forwarders) if isinstance(u, Gb28181Upstream)]
        app[GB_DEVICES].extend(devices)
        for device in devices:
            if status.health is not None:
                for runtime in status.health.cameras.values():
                    device.set_online(runtime.config.id, channel_on(runtime))
            service.supervision.watchers.append(device.set_online)
        app[ALARMS] = service
        status.alarm_view = AlarmView(service)
        listener = service.listener

        def buttons() -> Verdict:
            parts = running(supervisor, "buttons", "button-supervision", "delivery-marks", "storage-recovery")
            if not parts.ok:
                return parts
            if not listener.committing:
                return Verdict(False, "the alarm commit thread has stopped")
            if listener.down_since is not None:
                away = time.time() - listener.down_since
                detail = f"no broker session for {away:.0f} s: {listener.last_error}"
                return Verdict(away <= BROKER_GRACE_S, detail)
            return Verdict(True, f"subscribed at {config.mqtt.host}:{config.mqtt.port}")

        board.add("buttons", buttons, critical=True)
        for forwarder in service.forwarders:
            board.add(f"upstream:{forwarder.upstream.name}", _upstream_check(forwarder), critical=False)
        yield
        board.remove("buttons", *(f"upstream:{f.upstream.name}" for f in service.forwarders))


def _upstream_check(forwarder: Forwarder) -> Check:
    """Ok until a delivery fails (a platform not yet tried is not a fault); the detail says what waits."""

    def check() -> Verdict:
        state = forwarder.upstream.state
        if state.link == "down":
            return Verdict(False, f"{state.last_error}; {forwarder.pending} pending")
        return Verdict(True, f"link {state.link}, {forwarder.pending} pending")

    return check


async def _reports(app: web.Application) -> AsyncIterator[None]:
    """Status reports to the command centers, and their operators' acknowledgements back to the buttons."""
    config, status, service = app[CONFIG], app[STATUS], app[ALARMS]

    def publish(button_id: str, alarm_id: str) -> bool:
        if not service.listener.connected.is_set():
            return False
        service.listener.publish_ack(button_id, alarm_id, "acknowledged")
        return True

    relay = await asyncio.to_thread(AckRelay, config.storage.path, publish)
    status.relay = relay
    by_name = {f.upstream.name: f.upstream for f in service.forwarders}
    targets: list[tuple[HttpUpstreamConfig | MqttUpstreamConfig, ReportTarget]] = []
    for upstream_config in config.upstreams:
        upstream = by_name.get(upstream_config.name)
        if isinstance(upstream, HttpUpstream | MqttUpstream) and isinstance(
            upstream_config, HttpUpstreamConfig | MqttUpstreamConfig
        ):
            targets.append((upstream_config, upstream))
            if isinstance(upstream, MqttUpstream):
                upstream.on_acks = relay.offer_payload
                if upstream.latest_acks is not None:
                    relay.offer_payload(upstream.latest_acks)
    sender = ReportSender(config.school, targets, status.summary, status.cameras, relay)
    app[REPORTS] = sender
    app[SUPERVISOR].start("reports", sender.run)
    yield
    await app[SUPERVISOR].stop_parts("reports")
    relay.close()


def create_app(config: GatewayConfig) -> web.Application:
    """The gateway as an aiohttp application; `web.run_app(create_app(cfg))` runs it."""
    app = web.Application()
    app[CONFIG] = config
    status = GatewayStatus(config, lambda: app[DB].conn)
    app[STATUS] = status
    app[HEALTH] = HealthBoard()
    devices: list[Gb28181Upstream] = []
    app[GB_DEVICES] = devices
    status.gb_devices = devices  # the same list: filled when the alarm path opens the devices
    app.cleanup_ctx.append(_storage)
    app.cleanup_ctx.append(_supervisor)
    app.cleanup_ctx.append(_state_topics)
    app.cleanup_ctx.append(_cameras)
    app.cleanup_ctx.append(_live_video)
    app.cleanup_ctx.append(_alarms)
    app.cleanup_ctx.append(_reports)
    tokens = {str(role): token.get_secret_value() for role, token in config.web.tokens.items()}
    faces.add_routes(app, status, tokens, config.web.host, health=app[HEALTH].report)
    return app
