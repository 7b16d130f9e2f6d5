"""One exception tree for the whole gateway: catch `GatewayError` at the edges, narrower types inside."""

from __future__ import annotations


class GatewayError(Exception):
    """Root of every error the gateway raises on purpose."""


class ConfigError(GatewayError):
    """The configuration file is unusable; `problems` holds one line per mistake."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


class StorageError(GatewayError):
    """The local database cannot be opened, migrated or written."""


class DeviceError(GatewayError):
    """A camera, button or stream did not answer as it should; `device` names it."""

    def __init__(self, device: str, message: str) -> None:
        super().__init__(f"{device}: {message}")
        self.device = device
        self.message = message


class DeviceTimeout(DeviceError):
    """A bounded network wait on a device ran out."""


class DeviceUnreachable(DeviceError):
    """The device refused or dropped the connection, or its address does not resolve."""


class DeviceProtocolError(DeviceError):
    """The device answered, but with something that is not the protocol (garbage, hostile XML, bad SDP)."""


class AuthFailed(DeviceError):
    """The device answered and refused the configured credentials."""


class UpstreamError(GatewayError):
    """An upstream platform did not take a delivery; the outbox will retry."""
