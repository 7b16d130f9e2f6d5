"""The `http` upstream: CloudEvents 1.0 structured JSON, signed, over one session for the life of the app."""

from __future__ import annotations

import asyncio
import ssl
import time

import aiohttp

from adapters.upstreams.base import LinkState
from adapters.upstreams.signing import HEADER, sign
from gateway.domain.config import HttpUpstreamConfig
from gateway.domain.errors import UpstreamError
from gateway.domain.events import OutboxEvent

CONTENT_TYPE = "application/cloudevents+json; charset=utf-8"
NETWORK_ERRORS = (aiohttp.ClientError, OSError)


class HttpUpstream:
    """POSTs each event; any 2xx, or 409 (the platform already has this id), means delivered."""

    kind: str = "http"

    def __init__(self, config: HttpUpstreamConfig, session: aiohttp.ClientSession) -> None:
        self.name: str = config.name
        self.role: str = config.role
        self._config = config
        self._session = session
        self._secret = config.secret.get_secret_value() if config.secret else None
        self.state = LinkState()
        # https:// is always verified: against `ca` when the platform has a private CA, else the system store.
        self._tls = ssl.create_default_context(cafile=str(config.ca) if config.ca else None)

    async def send(self, event: OutboxEvent) -> None:
        status, _answer = await self._post(self._config.url, event.id, event.body)
        if not (200 <= status < 300 or status == 409):
            raise UpstreamError(f"{self.name}: HTTP {status}")

    async def send_report(self, event_id: str, body: bytes) -> bytes:
        """POST a status report to `report_url`, signed like an alarm; returns the center's answer (its acks)."""
        status, answer = await self._post(self._config.reports_to, event_id, body)
        if not 200 <= status < 300:
            raise UpstreamError(f"{self.name}: report refused: HTTP {status}")
        return answer

    async def _post(self, url: str, event_id: str, body: bytes) -> tuple[int, bytes]:
        headers = {"Content-Type": CONTENT_TYPE, "ce-id": event_id}
        if self._secret:
            headers[HEADER] = sign(self._secret, body, int(time.time()))
        try:
            async with asyncio.timeout(self._config.timeout):
                async with self._session.post(url, data=body, headers=headers, ssl=self._tls) as response:
                    answer = await response.read()
                    return response.status, answer
        except TimeoutError:
            raise UpstreamError(f"{self.name}: no answer within {self._config.timeout:g} s") from None
        except aiohttp.ClientConnectorCertificateError as exc:
            trusted = f"the CA in {self._config.ca}" if self._config.ca else "the system's CA store"
            reason = getattr(exc.certificate_error, "verify_message", None) or exc.certificate_error
            raise UpstreamError(
                f"{self.name}: TLS: the platform's certificate is not trusted by {trusted}: {reason}"
            ) from None
        except NETWORK_ERRORS as exc:
            raise UpstreamError(f"{self.name}: {type(exc).__name__}: {exc}") from None
