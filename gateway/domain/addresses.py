"""Host and port read from the address strings of a config section, shared by the gateway's and the center's
config models: `listen: "host:port"` of a server, `url: "mqtt[s]://host[:port]"` of a broker."""

from __future__ import annotations

from typing import TYPE_CHECKING
from urllib.parse import urlsplit

MQTT_PORT = 1883
MQTTS_PORT = 8883


class ListenAddress:
    """For a section with `listen: "host:port"` (validated by the section's own pattern)."""

    if TYPE_CHECKING:
        listen: str

    @property
    def host(self) -> str:
        return self.listen.rsplit(":", 1)[0]

    @property
    def port(self) -> int:
        return int(self.listen.rsplit(":", 1)[1])


class BrokerAddress:
    """For a section with `url: "mqtt://…"` or `"mqtts://…"` (validated by the section's own validator)."""

    if TYPE_CHECKING:
        url: str

    @property
    def tls(self) -> bool:
        return urlsplit(self.url).scheme == "mqtts"

    @property
    def host(self) -> str:
        return urlsplit(self.url).hostname or "127.0.0.1"

    @property
    def port(self) -> int:
        parts = urlsplit(self.url)
        return parts.port or (MQTTS_PORT if parts.scheme == "mqtts" else MQTT_PORT)
