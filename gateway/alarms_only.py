"""The alarm path alone, as a process: `python -m gateway.alarms_only -c FILE`.

For subprocess tests and field debugging: SIGTERM or SIGINT stops it cleanly; it prints `READY` once subscribed to
the broker (or after CONNECT_WAIT_S, the listener then going on reconnecting).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import sys
from collections.abc import Sequence

from gateway.domain.config import GatewayConfig, load_config
from gateway.domain.errors import ConfigError, GatewayError
from gateway.logging_setup import setup_logging
from gateway.services.alarm_path import AlarmPath

logger = logging.getLogger(__name__)

# Bound on the first broker connection before `READY` is printed anyway (the listener keeps reconnecting).
CONNECT_WAIT_S = 10.0


async def _main_async(config: GatewayConfig) -> None:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    # An unusable database or upstream surfaces here, from entering the path, as a GatewayError.
    async with AlarmPath(config) as path:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(CONNECT_WAIT_S):
                await path.service.listener.connected.wait()
        print("READY", flush=True)
        await stop.wait()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m gateway.alarms_only", description="the alarm path alone")
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
