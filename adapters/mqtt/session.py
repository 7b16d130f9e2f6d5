"""Holding an MQTT connection the one way every gateway client does it (button listener, state publisher, the
`mqtt` upstream).

A fresh paho client for every connection (a client that failed is never reused, and paho's own reconnect is off),
its blocking connect off the event loop and bounded, then a wait for the loss, a back-off and the next client.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import NoReturn

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion

from adapters.mqtt.tcp import no_delay

logger = logging.getLogger(__name__)

# Reconnecting: after a delay that starts short (a broker restart at a school takes a second or two) and doubles up
# to 5 s (so the gateway is healthy again within 5 s of the broker's return, as /healthz promises; one CONNECT per
# 5 s is no load on a broker), each delay shortened by a random part so that many gateways behind one broker do not
# all come back in the same instant.
RECONNECT_FIRST_S = 0.5
RECONNECT_MAX_S = 5.0
RECONNECT_JITTER = 0.5
# Bound on one connection attempt (TCP connect + CONNECT/CONNACK happen in paho's blocking connect()).
CONNECT_TIMEOUT_S = 5.0


def reconnect_delay(failures: int, draw: float, most_s: float = RECONNECT_MAX_S) -> float:
    """The wait after `failures` attempts in a row without a working session; `draw` is uniform in [0, 1)."""
    base = min(most_s, RECONNECT_FIRST_S * 2.0 ** (failures - 1))
    return base * (1 - RECONNECT_JITTER * draw)


def new_client(
    client_id: str,
    *,
    protocol: MQTTProtocolVersion = MQTTProtocolVersion.MQTTv311,
    clean_session: bool | None = None,
    manual_ack: bool = False,
) -> mqtt.Client:
    """A paho client as every connection here wants one: paho's reconnect off (the next connection is a fresh
    client), its blocking connect bounded, Nagle off and the first ACK sent at once. Callbacks are the caller's."""
    client = mqtt.Client(
        callback_api_version=CallbackAPIVersion.VERSION2,
        client_id=client_id,
        protocol=protocol,
        clean_session=clean_session,
        manual_ack=manual_ack,
        reconnect_on_failure=False,
    )
    client.connect_timeout = CONNECT_TIMEOUT_S
    client.on_socket_open = no_delay
    return client


async def hold(
    name: str,
    where: str,
    make_client: Callable[[], mqtt.Client],
    connect: Callable[[mqtt.Client], object],
    lost: asyncio.Event,
    *,
    connections: Callable[[], int],
    on_client: Callable[[mqtt.Client | None], None],
    on_unreachable: Callable[[str], None],
    draw: Callable[[], float],
    explain: Callable[[BaseException], str] = str,
    most_delay_s: float = RECONNECT_MAX_S,
) -> NoReturn:
    """Keep a session with the broker at `where` until cancelled. `connect(client)` is paho's blocking connect
    with this link's arguments; the client's callbacks set `lost` when the connection ends and count a working
    session in `connections()`; `on_client` is told which client is current (None between them)."""
    failures = 0
    while True:
        client = make_client()
        lost.clear()
        before = connections()
        try:
            async with asyncio.timeout(CONNECT_TIMEOUT_S + 1):
                await asyncio.to_thread(connect, client)
        except (OSError, TimeoutError) as exc:
            why = explain(exc) or type(exc).__name__
            logger.warning("%s: cannot reach the broker at %s: %s", name, where, why)
            on_unreachable(f"cannot reach the broker at {where}: {why}")
            lost.set()
        else:
            on_client(client)
            client.loop_start()
        try:
            await lost.wait()
        finally:
            # This client is done for good (its thread, its socket); the next connection is a new client.
            on_client(None)
            await asyncio.to_thread(_close, client)
        failures = 1 if connections() > before else failures + 1
        delay = reconnect_delay(failures, draw(), most_delay_s)
        logger.info("%s: connecting again in %.1f s", name, delay)
        await asyncio.sleep(delay)


def _close(client: mqtt.Client) -> None:
    """Blocking: end a client's session politely if it is connected, and its network thread."""
    client.disconnect()
    client.loop_stop()
