"""App wiring and lifecycle: every part is started in a cleanup context, in order, and stopped in reverse."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import time
from collections.abc import AsyncIterator

from aiohttp import web

from gateway.config import GatewayConfig
from gateway.status import GatewayStatus
from gateway.storage import open_database
from gateway.supervisor import Supervisor
from monitoring import web as faces

logger = logging.getLogger(__name__)

CONFIG = web.AppKey("config", GatewayConfig)
DB = web.AppKey("db", sqlite3.Connection)
SUPERVISOR = web.AppKey("supervisor", Supervisor)
STARTED_AT = web.AppKey("started_at", float)

# How often the gateway notes that it is alive: the gap after the last note is its own downtime after a crash,
# shown as unknown in uptime rather than blamed on the cameras.
ALIVE_EVERY_S = 15.0


async def _storage(app: web.Application) -> AsyncIterator[None]:
    config = app[CONFIG]
    conn = await asyncio.to_thread(open_database, config.storage.path)
    now = time.time()
    run_id = conn.execute("INSERT INTO gateway_runs (started_at, alive_at) VALUES (?, ?)", (now, now)).lastrowid
    app[DB] = conn
    app[_RUN_ID] = int(run_id or 0)
    logger.info("storage: %s open", config.storage.path)
    yield
    conn.execute("UPDATE gateway_runs SET alive_at = ?, stopped_at = ? WHERE id = ?", (time.time(),) * 2 + (run_id,))
    conn.close()


_RUN_ID = web.AppKey("run_id", int)


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


def create_app(config: GatewayConfig) -> web.Application:
    """The gateway as an aiohttp application; `web.run_app(create_app(cfg))` runs it."""
    app = web.Application()
    app[CONFIG] = config
    app[STARTED_AT] = time.time()
    app.cleanup_ctx.append(_storage)
    app.cleanup_ctx.append(_supervisor)
    status = GatewayStatus(config, lambda: app[DB])
    tokens = {str(role): token.get_secret_value() for role, token in config.web.tokens.items()}
    faces.add_routes(app, status, tokens, config.web.host)
    return app
