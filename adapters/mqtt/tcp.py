"""Socket options for MQTT clients.

paho leaves Nagle's algorithm on, which holds small packets (a PUBACK, a one-line alarm) for up to 40 ms waiting for
the peer's delayed ACK: `no_delay` turns it off on our side. The broker's side is often not ours to tune: Mosquitto
keeps Nagle on unless `set_tcp_nodelay true`, so its next small packet to us (the next alarm) waits until we have
acknowledged the last one (a PUBACK for our own ack publish, say). Linux delays that ACK by 40 ms or more once the
connection looks interactive. `ack_now` asks the kernel to send any ACK it is holding at once: TCP_QUICKACK is not
sticky (the kernel falls back to delaying after the next exchange), so it is set again after every packet read.
"""

from __future__ import annotations

import contextlib
import socket
from typing import Any

import paho.mqtt.client as mqtt

# Linux only; elsewhere the option does not exist and `ack_now` does nothing (the stall it prevents is Linux's).
_QUICKACK: int | None = getattr(socket, "TCP_QUICKACK", None)


def no_delay(_client: mqtt.Client, _userdata: Any, sock: Any) -> None:
    """paho's `on_socket_open` callback: send small packets at once, and acknowledge the first one at once."""
    if isinstance(sock, socket.socket):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        _quick_ack(sock)


def ack_now(client: mqtt.Client) -> None:
    """Send the ACK for what paho has just read now rather than in 40 ms; call it after each packet read.

    Called from paho's network thread (its on_message/on_publish/on_subscribe callbacks), which just read the
    packet: the kernel then has the ACK scheduled, and TCP_QUICKACK pushes it out."""
    sock = client.socket()
    if isinstance(sock, socket.socket):
        _quick_ack(sock)


def _quick_ack(sock: socket.socket) -> None:
    if _QUICKACK is None:
        return
    # OSError: the socket closed under us (paho's thread is tearing the connection down): nothing to acknowledge.
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.IPPROTO_TCP, _QUICKACK, 1)
