"""How every gateway MQTT client proves who it is and checks whom it talks to: one place for TLS and credentials.

The button listener and the state publisher both call `secure()` on a fresh paho client before connecting, so a
school that turns on `mqtts://` gets the same verification on every link. There is no switch to skip
verification: a broker whose certificate does not chain to `ca` (or to the system store when `ca` is not set), or
whose name is not the one in the URL, is refused.
"""

from __future__ import annotations

import ssl

import paho.mqtt.client as mqtt

from gateway.domain.config import MqttConfig
from gateway.domain.errors import GatewayError


class BrokerTlsError(GatewayError):
    """The TLS settings cannot be used, or the broker's certificate was not trusted."""


class _ClosingSSLSocket(ssl.SSLSocket):
    """paho leaves the socket of a refused handshake open (a file descriptor per failed attempt, every few
    seconds for as long as the broker's certificate stays untrusted): close it where the handshake fails."""

    def do_handshake(self, block: bool = False) -> None:
        try:
            super().do_handshake(block)
        except BaseException:
            self.close()
            raise


def tls_context(config: MqttConfig) -> ssl.SSLContext:
    """A client context that verifies the broker's certificate and host name, with our certificate if any."""
    try:
        context = ssl.create_default_context(cafile=str(config.ca) if config.ca else None)
        if config.cert is not None:
            # An empty password: an encrypted key fails here with an error instead of prompting on a terminal.
            context.load_cert_chain(str(config.cert), str(config.key) if config.key else None, password="")
    except (ssl.SSLError, OSError) as exc:
        raise BrokerTlsError(f"MQTT TLS files unusable (ca={config.ca}, cert={config.cert}): {exc}") from None
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.sslsocket_class = _ClosingSSLSocket
    return context


def secure(client: mqtt.Client, config: MqttConfig) -> None:
    """Set credentials and, for mqtts://, TLS on a client that has not connected yet."""
    if config.username:
        secret = config.password.get_secret_value() if config.password else None
        client.username_pw_set(config.username, secret)
    if config.tls:
        client.tls_set_context(tls_context(config))


def explain(exc: BaseException, config: MqttConfig) -> str:
    """A connection failure in words an installer can act on (never with the password)."""
    if isinstance(exc, ssl.SSLCertVerificationError):
        trusted = f"the CA in {config.ca}" if config.ca else "the system's CA store"
        return f"TLS: the broker's certificate is not trusted by {trusted}: {exc.verify_message}"
    if isinstance(exc, ssl.SSLError):
        return f"TLS handshake failed: {exc.reason or exc}"
    return str(exc)
