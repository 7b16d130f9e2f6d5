"""The MQTT side of the alarm buttons: a persistent QoS 1 session whose acknowledgements we send ourselves.

paho-mqtt's manual acknowledgement lets the PUBACK wait until the alarm is committed to disk: a gateway killed
between receiving and storing leaves the message with the broker, which sends it again when we come back (the
session is persistent, so the broker also queues what arrives while we are away). paho's network loop runs in
its own thread and a commit thread stores what arrives in batches, so the disk commit never blocks the event loop.
"""

from __future__ import annotations

import asyncio
import json
import logging
import queue
import random
import threading
import time
from collections.abc import Callable
from typing import Any

import paho.mqtt.client as mqtt

from adapters.mqtt import session
from adapters.mqtt.profiles import Route
from adapters.mqtt.security import explain, secure
from adapters.mqtt.tcp import ack_now
from gateway.domain.config import MqttConfig

logger = logging.getLogger(__name__)

# Our own QoS 1 publishes (acks to buttons) in flight at once: in a burst every press gets its ack promptly.
MAX_INFLIGHT_OUT = 1000

# Messages handed to the handler at once: one disk commit (fsync) covers the whole batch, so a burst of presses
# costs a flush per batch, not per press, while a lone press is still committed on its own at once.
MAX_BATCH = 500

# Called in the commit thread with messages on button routes, in arrival order; returns, for each, whether to
# acknowledge it (False: not stored, leave it with the broker).
Handler = Callable[[list[tuple[Route, mqtt.MQTTMessage]]], list[bool]]


class ButtonListener:
    """One persistent session with the button broker, held by a fresh paho client per connection."""

    def __init__(
        self,
        config: MqttConfig,
        school_id: str,
        routes: dict[str, Route],
        handler: Handler,
        *,
        draw: Callable[[], float] = random.random,
    ) -> None:
        self._config = config
        self._routes = routes
        self._handler = handler
        self._draw = draw
        self._ack_base = f"{config.topic_prefix}/{school_id}/buttons"
        self._client_id = config.client_id or f"huxiao-gw-{school_id}"
        self._client: mqtt.Client | None = None
        self.connected = asyncio.Event()
        self.connections = 0  # successful connections so far (a test and a metric)
        self._lost = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        # Since when the listener has had no working session (None while connected): health turns failing when this
        # is more than a few seconds old, since a press now would stay with the broker.
        self.down_since: float | None = time.time()
        self.last_error: str | None = None
        self._inbox: queue.SimpleQueue[tuple[mqtt.Client, Route, mqtt.MQTTMessage] | None] = queue.SimpleQueue()
        self._committer = threading.Thread(target=self._commit_loop, name="button-commits", daemon=True)

    def _new_client(self) -> mqtt.Client:
        # A stable id: the broker keeps our session and queues for it while we are away.
        client = session.new_client(self._client_id, clean_session=False, manual_ack=True)
        secure(client, self._config)
        client.max_inflight_messages_set(MAX_INFLIGHT_OUT)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_subscribe = self._on_subscribe
        client.on_message = self._on_message
        # PUBACKs for our acks to the buttons: acknowledged at once, or a broker with Nagle on holds the next alarm.
        client.on_publish = _acked
        return client

    # -- paho's thread ------------------------------------------------------------------------------------------

    def _on_connect(self, client: mqtt.Client, _u: Any, flags: Any, reason: Any, _p: Any) -> None:
        if reason.is_failure:
            logger.warning("buttons: broker refused the connection: %s", reason)
            self._signal(lambda: self._down(f"broker refused the connection: {reason}"))
            self._signal(self._lost.set)
            return
        # Subscribing again is harmless with a persistent session and needed after the broker lost it. We count as
        # connected once the broker confirms (SUBACK): only then does it queue presses for us while we are away.
        topics = [(topic, 1) for topic in self._routes]
        if topics:
            client.subscribe(topics)
        else:
            self._signal(self._up)
        logger.info(
            "buttons: connected to %s:%d (session present: %s)",
            self._config.host,
            self._config.port,
            getattr(flags, "session_present", "?"),
        )

    def _on_subscribe(self, client: mqtt.Client, _u: Any, _mid: int, reasons: Any, _p: Any) -> None:
        ack_now(client)
        refused = [reason for reason in reasons if reason.is_failure]
        if refused:
            logger.error("buttons: the broker refused %d of the button subscriptions: %s", len(refused), refused[0])
        self._signal(self._up)

    def _up(self) -> None:
        self.connections += 1
        self.connected.set()
        self.down_since = None
        self.last_error = None

    def _down(self, why: str) -> None:
        self.connected.clear()
        self.last_error = why
        if self.down_since is None:
            self.down_since = time.time()

    def _on_disconnect(self, _c: mqtt.Client, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        self._signal(lambda: self._down(f"disconnected from the broker: {reason}"))
        self._signal(self._lost.set)
        # Reason 0 is our own DISCONNECT (a clean stop, or closing a client for a fresh one); anything else is a loss.
        logger.log(
            logging.INFO if getattr(reason, "value", reason) == 0 else logging.WARNING,
            "buttons: disconnected from the broker (%s)",
            reason,
        )

    def _on_message(self, client: mqtt.Client, _u: Any, message: mqtt.MQTTMessage) -> None:
        ack_now(client)
        route = self._routes.get(message.topic)
        if route is None:
            if message.qos > 0:
                client.ack(message.mid, message.qos)
            return
        self._inbox.put((client, route, message))

    def _signal(self, callback: Callable[[], object]) -> None:
        if self._loop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(callback)

    # -- the commit thread --------------------------------------------------------------------------------------

    def _commit_loop(self) -> None:
        """Take what has arrived, let the handler store it, acknowledge what was stored."""
        while True:
            first = self._inbox.get()
            if first is None:
                return
            batch = [first]
            while len(batch) < MAX_BATCH:
                try:
                    item = self._inbox.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    self._inbox.put(None)
                    break
                batch.append(item)
            try:
                verdicts = self._handler([(route, message) for _client, route, message in batch])
            except Exception:  # the thread must survive any handler bug; the messages stay unacknowledged
                logger.exception("buttons: handling %d messages failed", len(batch))
                verdicts = [False] * len(batch)
            for (client, _route, message), acknowledge in zip(batch, verdicts, strict=True):
                # A message that came through a connection since lost is not acknowledged: the broker sends it
                # again on the new connection (the session is persistent) and the outbox drops the repeat.
                if acknowledge and message.qos > 0 and client is self._client:
                    client.ack(message.mid, message.qos)

    # -- the event loop -----------------------------------------------------------------------------------------

    def start(self) -> None:
        """Start the commit thread; `run()`, which holds the broker session, is the caller's to own."""
        self._loop = asyncio.get_running_loop()
        self._committer.start()

    @property
    def committing(self) -> bool:
        """The commit thread is alive (it ends only at stop)."""
        return self._committer.is_alive()

    async def run(self) -> None:
        """Hold the connection until cancelled: connect, wait for the loss, back off, connect a fresh client.

        Unexpected errors propagate to the owner (a supervisor), which logs, counts and restarts this."""
        try:
            await self._hold()
        finally:
            self._down("the listener stopped")

    async def _hold(self) -> None:
        config = self._config
        await session.hold(
            "buttons",
            f"{config.host}:{config.port}",
            self._new_client,
            lambda client: client.connect(config.host, config.port, int(config.keepalive)),
            self._lost,
            connections=lambda: self.connections,
            on_client=self._current,
            on_unreachable=self._down,
            draw=self._draw,
            explain=lambda exc: explain(exc, config),
        )

    def _current(self, client: mqtt.Client | None) -> None:
        # Between clients the last one is kept for the commit thread's check: a message that came through it is
        # then not acknowledged (the broker sends it again on the new connection).
        if client is not None:
            self._client = client

    def renew(self) -> None:
        """End this connection and make a fresh one: the broker then sends again every message not yet
        acknowledged (as after storage came back from a failure)."""
        self._lost.set()

    def _delay(self, failures: int) -> float:
        return session.reconnect_delay(failures, self._draw())

    def publish_ack(self, button_id: str, alarm_id: str, state: str) -> None:
        """Tell the button how far its alarm got (`received`, `delivered`, `acknowledged`); its LED shows it.

        Best effort while the broker is away: a fresh client does not inherit the old one's unsent publishes."""
        client = self._client
        if client is not None:
            payload = json.dumps({"alarm_id": alarm_id, "state": state})
            client.publish(f"{self._ack_base}/{button_id}/ack", payload, qos=1)

    async def stop(self) -> None:
        """After the owner has cancelled `run()`: end the commit thread."""
        self._client = None
        self._inbox.put(None)
        if self._committer.is_alive():
            await asyncio.to_thread(self._committer.join, 5.0)


def _acked(client: mqtt.Client, _u: Any, _mid: int, _reason: Any, _p: Any) -> None:
    """paho's on_publish: the broker has one of our publishes; the TCP ACK for its PUBACK goes out now."""
    ack_now(client)
