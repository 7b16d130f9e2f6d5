"""Socket options for MQTT clients: paho leaves Nagle's algorithm on, which holds small packets (a PUBACK, a
one-line alarm) for up to 40 ms waiting for the peer's delayed ACK. Alarms are small and urgent."""

from __future__ import annotations

import socket
from typing import Any

import paho.mqtt.client as mqtt


def no_delay(_client: mqtt.Client, _userdata: Any, sock: Any) -> None:
    """paho's `on_socket_open` callback: send small packets at once."""
    if isinstance(sock, socket.socket):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
