"""The center's wiring: store, intake, MQTT intake (when configured) and the HTTP faces, started in order in
cleanup contexts and stopped in reverse."""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import AsyncIterator
from typing import Any

from aiohttp import web

from center.api import HEALTH_CHECKS, MAX_BODY, add_routes
from center.config import CenterConfig
from center.intake import Intake
from center.live import LiveFeed
from center.mqtt_intake import MqttIntake
from center.pg_feed import CrossInstanceFeed
from center.service import CenterService
from center.store import Store

logger = logging.getLogger(__name__)

SERVICE_KEY = web.AppKey("center_app_service", CenterService)


def create_center_app(config: CenterConfig, instance: str | None = None) -> web.Application:
    app = web.Application(client_max_size=MAX_BODY)
    store = Store(config.storage.url)
    live = LiveFeed()
    service = CenterService(config, store, live)
    intake = Intake(config, store, service.taken)
    tokens = {str(role): secret.get_secret_value() for role, secret in config.web.tokens.items()}
    add_routes(app, service, intake, tokens, config.center.host)
    app[SERVICE_KEY] = service
    # One MQTT client id per instance: members of one share must not take each other's sessions.
    client_id = f"huxiao-center-{instance or socket.gethostname()}-{config.center.port}-{os.getpid()}"

    async def show_from_others(kind: str, items: list[Any]) -> None:
        if kind == "alarm":  # the rows themselves: shown without a read
            for row in items:
                if isinstance(row, dict) and "school_id" in row:
                    live.publish("alarm", service.decorate(row))
        elif kind == "ack":
            for row in await store.read(store.alarms_by_ids, [str(i) for i in items]):
                live.publish("ack", service.decorate(row))

    async def storage(_: web.Application) -> AsyncIterator[None]:
        await store.start()
        feed = None
        if store.dialect == "postgresql":
            feed = CrossInstanceFeed(store.connect_again, store.instance, show_from_others)
            await feed.start()
        await intake.start()
        yield
        live.close()
        await intake.stop()
        if feed is not None:
            await feed.stop()
        await store.stop()

    async def mqtt_part(_: web.Application) -> AsyncIterator[None]:
        if config.mqtt is None:
            yield
            return
        part = MqttIntake(config.mqtt, intake, service, client_id if instance is None else f"huxiao-center-{instance}")
        await part.start()
        app[HEALTH_CHECKS]["mqtt"] = lambda: (part.connected, "connected" if part.connected else str(part.last_error))
        yield
        app[HEALTH_CHECKS].pop("mqtt", None)
        await part.stop()

    async def end_feeds(_: web.Application) -> None:
        # Before the server waits for open requests: every console's feed ends now instead of at its next beat.
        live.close()

    app.on_shutdown.append(end_feeds)
    app.cleanup_ctx.append(storage)
    app.cleanup_ctx.append(mqtt_part)
    return app


def run_center(config: CenterConfig) -> None:
    web.run_app(
        create_center_app(config),
        host=config.center.host,
        port=config.center.port,
        shutdown_timeout=2.0,
        print=None,
        access_log=None,
    )
