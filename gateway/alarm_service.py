"""The whole alarm path of one gateway, wired from its config: outbox, one session per upstream, the button
listener, the forwarders and button supervision. One entry, two ways in:

    async with AlarmPath(config) as path:   # from the app's cleanup context: path.service is the AlarmService
        ...
    await run(config)                       # on its own, until cancelled

and, for subprocess tests and field debugging, `python -m gateway.alarm_service -c FILE` (SIGTERM or SIGINT stops
it cleanly; it prints `READY` once subscribed to the broker).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import sys
from collections.abc import Sequence
from types import TracebackType

import aiohttp

from adapters.http_upstream import HttpUpstream
from adapters.upstream import Upstream
from gateway.alarms import AlarmService, SnapshotSource
from gateway.config import GatewayConfig, HttpUpstreamConfig, UpstreamConfig, load_config
from gateway.errors import ConfigError, GatewayError
from gateway.logging_setup import setup_logging
from gateway.outbox import Outbox

logger = logging.getLogger(__name__)

# Bound on the first broker connection before `READY` is printed anyway (the listener keeps reconnecting).
CONNECT_WAIT_S = 10.0


def supported(upstream: UpstreamConfig) -> bool:
    """Kinds this version can forward to; gb28181 and mqtt come in the second wave with their own adapters."""
    return isinstance(upstream, HttpUpstreamConfig)


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
        chosen = [u for u in config.upstreams if isinstance(u, HttpUpstreamConfig)]
        try:
            # Opening and migrating the database may fsync: off the loop.
            outbox = await asyncio.to_thread(Outbox, config.storage.path, [u.name for u in chosen])
            self._stack.callback(outbox.close)
            upstreams: list[Upstream] = []
            for upstream_config in chosen:
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


async def run(config: GatewayConfig, *, ready: asyncio.Event | None = None) -> None:
    """The alarm path on its own until cancelled; `ready` is set once the broker connection is up."""
    async with AlarmPath(config) as path:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(CONNECT_WAIT_S):
                await path.service.listener.connected.wait()
        if ready is not None:
            ready.set()
        await path.run()


async def _main_async(config: GatewayConfig) -> None:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    ready = asyncio.Event()
    runner = asyncio.create_task(run(config, ready=ready), name="alarm-path")
    announced = asyncio.create_task(ready.wait(), name="ready")
    stopping = asyncio.create_task(stop.wait(), name="stop")
    try:
        await asyncio.wait([runner, announced, stopping], return_when=asyncio.FIRST_COMPLETED)
        if ready.is_set():
            print("READY", flush=True)
        await asyncio.wait([runner, stopping], return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in (announced, stopping, runner):
            task.cancel()
        # The runner's own error (say, an unusable database) surfaces here; its cancellation was ours.
        (outcome,) = await asyncio.gather(runner, return_exceptions=True)
    if isinstance(outcome, Exception):
        raise outcome


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m gateway.alarm_service", description="the alarm path alone")
    parser.add_argument("-c", "--config", required=True)
    parser.add_argument("--log-level", default="INFO")
    args = parser.parse_args(argv)
    try:
        config = load_config(args.config)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 2
    setup_logging(args.log_level)
    try:
        asyncio.run(_main_async(config))
    except GatewayError as exc:
        logger.error("the alarm path stopped: %s", exc)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
