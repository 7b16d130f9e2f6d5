"""The whole alarm path of one gateway, wired from its config: outbox, one session per upstream, the button
listener, the forwarders and button supervision. One wiring, used by the app and by `gateway.alarms_only`:

    async with AlarmPath(config) as path:   # from the app's cleanup context: path.service is the AlarmService
        ...

and, for subprocess tests and field debugging, `python -m gateway.alarms_only -c FILE`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from types import TracebackType

import aiohttp

from adapters.upstreams.base import Upstream
from adapters.upstreams.gb28181 import Gb28181Upstream
from adapters.upstreams.http import HttpUpstream
from gateway.domain.config import GatewayConfig, Gb28181UpstreamConfig, HttpUpstreamConfig, UpstreamConfig
from gateway.domain.errors import GatewayError
from gateway.services.alarms import AlarmService, SnapshotSource
from gateway.services.outbox import Outbox

logger = logging.getLogger(__name__)


def supported(upstream: UpstreamConfig) -> bool:
    """Kinds this version can forward to; mqtt comes in the second wave with its own adapter."""
    return isinstance(upstream, HttpUpstreamConfig | Gb28181UpstreamConfig)


class AlarmPath:
    """An async context manager owning every resource of the alarm path, stopped in reverse order of start."""

    def __init__(self, config: GatewayConfig, *, snapshots: SnapshotSource | None = None) -> None:
        self.config = config
        self._snapshots = snapshots
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
            # Opening and migrating the database may fsync: off the loop.
            outbox = await asyncio.to_thread(Outbox, config.storage.path, [u.name for u in chosen])
            self._stack.callback(outbox.close)
            upstreams: list[Upstream] = []
            for upstream_config in chosen:
                if isinstance(upstream_config, Gb28181UpstreamConfig):
                    # The GB device (its SIP socket, registration and keepalives) lives as long as the path.
                    gb = Gb28181Upstream.from_config(config, upstream_config)
                    upstreams.append(await self._stack.enter_async_context(gb))
                    continue
                assert isinstance(upstream_config, HttpUpstreamConfig)
                # One session per upstream for the life of the path: its connection pool and limits are its own.
                session = await self._stack.enter_async_context(aiohttp.ClientSession())
                upstreams.append(HttpUpstream(upstream_config, session))
            service = AlarmService(config, outbox, upstreams, snapshots=self._snapshots)
            await service.start()
            self._stack.push_async_callback(service.stop)
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

    async def run(self) -> None:
        """Supervise the buttons until cancelled (the forwarders and the listener run on their own)."""
        await self.service.supervise()
