"""The whole alarm path of one gateway, wired from its config: outbox, one session per upstream, the button
listener, the forwarders and button supervision. One wiring, used by the app and by `gateway.alarms_only`:

    async with AlarmPath(config, supervisor=app_supervisor) as path:   # path.service is the AlarmService
        ...                                                           # its parts run under the supervisor

and, for subprocess tests and field debugging, `python -m gateway.alarms_only -c FILE`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from types import TracebackType

import aiohttp

from adapters.gb28181.live import LiveVideo
from adapters.upstreams.base import Upstream
from adapters.upstreams.gb28181 import Gb28181Upstream
from adapters.upstreams.http import HttpUpstream
from adapters.upstreams.mqtt import MqttUpstream
from gateway.domain.config import (
    GatewayConfig,
    Gb28181UpstreamConfig,
    HttpUpstreamConfig,
    MqttUpstreamConfig,
    UpstreamConfig,
)
from gateway.domain.errors import GatewayError
from gateway.services.alarm_pictures import SnapshotSource
from gateway.services.alarms import AlarmService
from gateway.services.outbox import Outbox
from gateway.services.supervisor import Supervisor

logger = logging.getLogger(__name__)


def supported(upstream: UpstreamConfig) -> bool:
    """Kinds this version forwards to: every kind the config knows."""
    return isinstance(upstream, HttpUpstreamConfig | MqttUpstreamConfig | Gb28181UpstreamConfig)


async def open_upstream(
    upstream: UpstreamConfig,
    gateway: GatewayConfig,
    stack: contextlib.AsyncExitStack,
    *,
    live: LiveVideo | None = None,
) -> Upstream:
    """Build one upstream whose resources `stack` closes: an http session of its own, an MQTT session, or the GB
    device's SIP socket (its registration loop is a part for the supervisor: see `long_running`)."""
    if isinstance(upstream, HttpUpstreamConfig):
        # One session per upstream for the life of the path: its connection pool and limits are its own.
        session = await stack.enter_async_context(aiohttp.ClientSession())
        return HttpUpstream(upstream, session)
    if isinstance(upstream, MqttUpstreamConfig):
        return await stack.enter_async_context(MqttUpstream(upstream, gateway.school.id))
    return await stack.enter_async_context(Gb28181Upstream.from_config(gateway, upstream, live=live))


class AlarmPath:
    """An async context manager owning every resource of the alarm path, stopped in reverse order of start.

    Its long-running parts (the broker session, button supervision, delivery marks) and short tasks (pictures,
    per-button delivery queues) run under `supervisor`, or under one of its own when none is given.
    """

    def __init__(
        self,
        config: GatewayConfig,
        *,
        snapshots: SnapshotSource | None = None,
        supervisor: Supervisor | None = None,
        live: LiveVideo | None = None,
    ) -> None:
        self.config = config
        self._snapshots = snapshots
        self._live = live  # the relay a GB/T 28181 platform plays cameras through
        self._own_supervisor = supervisor is None
        self.supervisor = supervisor if supervisor is not None else Supervisor()
        self._stack = contextlib.AsyncExitStack()
        self._service: AlarmService | None = None

    @property
    def service(self) -> AlarmService:
        if self._service is None:
            raise GatewayError("the alarm path is not running")
        return self._service

    async def __aenter__(self) -> AlarmPath:
        config = self.config
        for upstream in config.upstreams:
            if not supported(upstream):
                logger.warning(
                    "%s: upstream kind %r is not available in this version; not forwarding to it",
                    upstream.name,
                    upstream.kind,
                )
        chosen = [u for u in config.upstreams if supported(u)]
        try:
            if self._own_supervisor:
                self._stack.push_async_callback(self.supervisor.stop)
            # Opening and migrating the database may fsync: off the loop.
            outbox = await asyncio.to_thread(Outbox, config.storage.path, [u.name for u in chosen])
            self._stack.callback(outbox.close)
            upstreams: list[Upstream] = [await open_upstream(u, config, self._stack, live=self._live) for u in chosen]
            service = AlarmService(config, outbox, upstreams, snapshots=self._snapshots, tasks=self.supervisor.tasks)
            await service.start()
            self._stack.push_async_callback(service.stop)
            parts = service.parts()
            for opened in upstreams:
                if isinstance(opened, Gb28181Upstream):
                    parts[f"gb28181:{opened.name}"] = opened.device.run  # registration, keepalive, re-register
            for name, factory in parts.items():
                self.supervisor.start(name, factory)
            # Stopped before the service closes what they use.
            self._stack.push_async_callback(self.supervisor.stop_parts, *parts)
        except BaseException:
            await self._stack.aclose()
            raise
        self._service = service
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._service = None
        await self._stack.aclose()
