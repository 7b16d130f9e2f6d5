"""The gateway as one GB/T 28181 device: registration, keepalive, queries, channel NOTIFY, alarms and live play.

    async with GbDevice(config, channels, name="攀枝花市第一小学", live=relay) as device:
        await device.run()          # registers, keeps alive, re-registers; until cancelled

Platforms send every later request to the address the device registered from (WVP does), so one transport socket
carries both directions. The device answers a query with 200 at once and sends the answer as its own MESSAGE(s).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import random
import socket
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from types import TracebackType

from adapters.digest import DigestChallenge, authorization, parse_challenge
from adapters.gb28181 import manscdp, sdp
from adapters.gb28181.channels import Channel, ChannelKind, ChannelSource
from adapters.gb28181.live import LiveVideo, PlaySession
from adapters.gb28181.sip import (
    SipMessage,
    address_uri,
    header_params,
    new_branch,
    new_call_id,
    new_tag,
    response_to,
    uri_user,
)
from adapters.gb28181.transport import T1_S, Address, SipTransport
from gateway.domain.config import Gb28181UpstreamConfig
from gateway.domain.errors import AuthFailed, DeviceError, DeviceProtocolError, DeviceUnreachable, GatewayError

logger = logging.getLogger(__name__)

# Re-register when this share of the granted expiry has passed, so a refresh lost to one retransmission cycle
# (64×T1 = 32 s) still lands well before the platform drops the registration.
REFRESH_AT = 0.8
# After a refused or unanswered REGISTER: wait 1 s, doubling to 60 s, with ±20 % jitter so that the devices of a
# district do not all come back at the same instant after a platform restart.
RETRY_FIRST_S = 1.0
RETRY_MAX_S = 60.0
RETRY_JITTER = 0.2
# Unregistering on stop must not hold up a shutdown that has 5 s in all (DESIGN: SIGTERM stops within 5 s).
UNREGISTER_TIMEOUT_S = 2.0
# The MESSAGE that answers a query: 5 s covers a busy platform; a lost answer is asked again by the platform.
ANSWER_TIMEOUT_S = 5.0
USER_AGENT = "huxiao-gateway"
# MESSAGEs of one answer sent before waiting for their 200s: few enough that a platform's UDP buffer never drops them.
ANSWERS_IN_FLIGHT = 8


@dataclass
class _Dialog:
    """One live-play call: its SIP identity for our BYE, and the relay's session."""

    call_id: str
    local_tag: str
    local_uri: str  # our side (the INVITE's To)
    remote: str  # their From, with tag
    remote_target: str  # their Contact: where our BYE goes
    peer: Address
    session: PlaySession
    camera_id: str  # the gateway's camera this call plays
    started: bool = False


class GbDevice:
    """An async context manager owning the SIP socket; `run()` keeps the registration alive until cancelled."""

    def __init__(
        self,
        config: Gb28181UpstreamConfig,
        channels: ChannelSource,
        *,
        name: str = "huxiao",
        live: LiveVideo | None = None,
        retry_first: float = RETRY_FIRST_S,
        t1: float | None = None,
        on_link: Callable[[bool, str | None], None] | None = None,
    ) -> None:
        self.config = config
        self.device_id = config.device_id
        self.name = name
        self._source = channels
        self._live = live
        self._retry_first = retry_first
        uri = config.server[len("sip:") :]
        self.server_id, _, hostport = uri.partition("@")
        host, _, port = hostport.partition(":")
        self.server: Address = (host, int(port or 5060))
        self.realm = self.server_id[:10]
        self._password = config.password.get_secret_value() if config.password else ""
        local_host, _, local_port = (config.local or "").rpartition(":")
        self._bind: Address = (local_host or self._route_host(), int(local_port or 0))
        self.sip = SipTransport(
            f"gb:{self.device_id}",
            config.transport,
            self._bind,
            self._on_request,
            t1=t1 or T1_S,
            on_lost=self._connection_lost,
        )
        self.registered = asyncio.Event()
        self.clock_offset_s: float | None = None  # platform clock − ours, from the REGISTER 200's Date
        self.link = "unknown"  # up | down | unknown
        self.last_error: str | None = None
        # Wall-clock times for the faces: since when the platform has had us registered without a break, and when
        # it last answered a keepalive. None while not registered / before the first answer.
        self.registered_since: float | None = None
        self.last_keepalive_at: float | None = None
        self.on_link = on_link  # told (up, error) on every change of the link, e.g. the upstream's LinkState
        self._reregister = asyncio.Event()
        self._call_id = ""
        self._from_tag = new_tag()
        self._cseq = itertools.count(1)
        self._sn = itertools.count(1)
        self._challenge: DigestChallenge | None = None
        self._nc = 0
        self._misses = 0
        self._dialogs: dict[str, _Dialog] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._advertised: str | None = None

    def _route_host(self) -> str:
        return "127.0.0.1" if self.server[0].startswith("127.") else "0.0.0.0"

    def _address_towards_server(self) -> str:
        """The local address on the route to the platform (a connected UDP socket sends nothing)."""
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            probe.connect(self.server)
            return str(probe.getsockname()[0])

    async def __aenter__(self) -> GbDevice:
        if self._bind[0] in ("0.0.0.0", ""):
            # Bound to every address, the device still names one in Via, Contact and SDP: the platform answers to
            # what they say. Resolving the server's name may block: off the loop.
            try:
                self._advertised = await asyncio.to_thread(self._address_towards_server)
            except OSError as exc:
                raise DeviceUnreachable(self.server_id, f"no route to {self.server[0]}: {exc}") from None
        await self.sip.__aenter__()
        self._call_id = new_call_id(self._host)
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        try:
            for dialog in list(self._dialogs.values()):
                await self._end_dialog(dialog, send_bye=True)
            if self.registered.is_set():
                with contextlib.suppress(GatewayError):
                    await self._register(expires=0, timeout=UNREGISTER_TIMEOUT_S)
            self.registered.clear()
            self.registered_since = None
        finally:
            for task in list(self._tasks):
                task.cancel()
            for task in list(self._tasks):
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            await self.sip.__aexit__(exc_type, exc, tb)

    # Addresses.

    @property
    def _host(self) -> str:
        return self._advertised or self.sip.local_address[0]

    @property
    def _port(self) -> int:
        return self.sip.local_address[1]

    def _request(
        self,
        method: str,
        uri: str,
        *,
        to: str,
        body: bytes = b"",
        content_type: str | None = None,
        call_id: str | None = None,
        from_tag: str | None = None,
        extra: tuple[tuple[str, str], ...] = (),
    ) -> SipMessage:
        via = f"SIP/2.0/{self.config.transport.upper()} {self._host}:{self._port};rport;branch={new_branch()}"
        headers: list[tuple[str, str]] = [
            ("Via", via),
            ("From", f"<sip:{self.device_id}@{self.device_id[:10]}>;tag={from_tag or self._from_tag}"),
            ("To", to),
            ("Call-ID", call_id or new_call_id(self._host)),
            ("CSeq", f"{next(self._cseq)} {method}"),
            ("Max-Forwards", "70"),
            ("User-Agent", USER_AGENT),
            *extra,
        ]
        if content_type is not None:
            headers.append(("Content-Type", content_type))
        return SipMessage(method=method, uri=uri, headers=tuple(headers), body=body)

    @property
    def _server_uri(self) -> str:
        return f"sip:{self.server_id}@{self.server[0]}:{self.server[1]}"

    # Registration.

    async def _register(self, *, expires: int, timeout: float | None = None) -> SipMessage:
        """REGISTER, answering one digest challenge; returns the 200 or raises (AuthFailed on 403)."""
        to = f"<sip:{self.device_id}@{self.device_id[:10]}>"
        contact = (("Contact", f"<sip:{self.device_id}@{self._host}:{self._port}>"), ("Expires", str(expires)))
        auth: tuple[tuple[str, str], ...] = ()
        reused = self._challenge is not None
        if reused:  # a refresh answers the last challenge again (WVP accepts it, same Call-ID)
            auth = (("Authorization", self._authorization()),)
        challenged = False
        # At most: the old challenge refused, a fresh challenge, its answer.
        for _ in range(3):
            request = self._request(
                "REGISTER",
                self._server_uri,
                to=to,
                call_id=self._call_id,
                from_tag=self._from_tag,
                extra=contact + auth,
            )
            response = await self.sip.request(request, self.server, timeout=timeout)
            if response.status == 401:
                if challenged:
                    break
                challenged = True
                challenge = parse_challenge(response.header("WWW-Authenticate") or "")
                if challenge is None:
                    raise DeviceProtocolError(self.server_id, "401 to REGISTER without a digest challenge")
                self._challenge, self._nc = challenge, 0
                auth = (("Authorization", self._authorization()),)
                continue
            if response.status == 200:
                self._note_clock(response.header("Date"))
                return response
            if response.status == 403 and reused and not challenged:
                # A restarted platform no longer knows the nonce we answered again and may refuse it outright
                # rather than challenge: ask for a fresh challenge once before calling the password wrong.
                self._challenge, auth = None, ()
                continue
            if response.status == 403:
                raise AuthFailed(self.server_id, "REGISTER refused (403): check device_id and password")
            raise DeviceError(self.server_id, f"REGISTER answered {response.status} {response.reason}")
        raise AuthFailed(self.server_id, "REGISTER challenged twice: the password is wrong")

    def _authorization(self) -> str:
        assert self._challenge is not None
        self._nc += 1
        return authorization(
            self._challenge,
            method="REGISTER",
            uri=f"sip:{self.server_id}@{self.realm}",
            username=self.device_id,
            password=self._password,
            nc=self._nc,
        )

    def _note_clock(self, date: str | None) -> None:
        if not date:
            return
        try:
            platform = datetime.strptime(date.strip()[:23], "%Y-%m-%dT%H:%M:%S.%f")
        except ValueError:
            try:
                platform = datetime.strptime(date.strip()[:19], "%Y-%m-%dT%H:%M:%S")
            except ValueError:
                logger.info("%s: platform Date %r not in GB form; no clock offset", self.device_id, date)
                return
        # GB/T 28181 times are the platform's local wall clock.
        self.clock_offset_s = platform.timestamp() - time.time()

    async def register(self) -> float:
        """Register once; returns the granted expiry in seconds."""
        response = await self._register(expires=int(self.config.expires))
        granted = header_params(response.header("Contact") or "").get("expires") or response.header("Expires")
        expiry = float(granted) if granted and granted.isdigit() and int(granted) > 0 else self.config.expires
        self._misses = 0
        self._up()
        if not self.registered.is_set():
            self.registered_since = time.time()
        self.registered.set()
        self._reregister.clear()
        logger.info("%s: registered with %s for %.0f s", self.device_id, self.server_id, expiry)
        return expiry

    async def _register_until_done(self) -> float:
        delay = self._retry_first
        while True:
            try:
                return await self.register()
            except GatewayError as exc:
                self._down(str(exc))
                wait = delay * random.uniform(1 - RETRY_JITTER, 1 + RETRY_JITTER)
                logger.warning("%s: registration failed (%s); again in %.1f s", self.device_id, exc, wait)
                await asyncio.sleep(wait)
                delay = min(delay * 2, RETRY_MAX_S)

    async def run(self) -> None:
        """Register, then keep alive and refresh; a 403/404 or `keepalive_misses` silent keepalives start over."""
        while True:
            expiry = await self._register_until_done()
            refresh_at = time.monotonic() + expiry * REFRESH_AT
            next_keepalive = time.monotonic() + self.config.keepalive
            while not self._reregister.is_set():
                now = time.monotonic()
                if now >= refresh_at:
                    try:
                        expiry = await self.register()
                        refresh_at = time.monotonic() + expiry * REFRESH_AT
                    except GatewayError as exc:
                        self._down(str(exc))
                        self._reregister.set()
                    continue
                if now >= next_keepalive:
                    next_keepalive = now + self.config.keepalive
                    await self._keepalive()
                    continue
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(min(refresh_at, next_keepalive) - now):
                        await self._reregister.wait()
            self.registered.clear()
            self.registered_since = None

    async def _keepalive(self) -> None:
        body = manscdp.keepalive(next(self._sn), self.device_id, self.config.charset)
        try:
            # Bounded by the interval: a keepalive still unanswered when the next is due counts as missed.
            response = await self._message(body, timeout=min(self.config.keepalive, 64 * 0.5))
        except GatewayError as exc:
            self._misses += 1
            logger.warning(
                "%s: keepalive %d/%d unanswered: %s", self.device_id, self._misses, self.config.keepalive_misses, exc
            )
            if self._misses >= self.config.keepalive_misses:
                self._down(f"{self._misses} keepalives unanswered")
                self._reregister.set()
            return
        if response.status == 200:
            self._misses = 0
            self.last_keepalive_at = time.time()
            self._up()

    # Outgoing MESSAGE / NOTIFY.

    async def _message(
        self,
        body: bytes,
        *,
        timeout: float | None = None,
        method: str = "MESSAGE",
        extra: tuple[tuple[str, str], ...] = (),
    ) -> SipMessage:
        """Send a MANSCDP body to the platform; a 403/404 means it forgot us (restarted): register again."""
        to = f"<sip:{self.server_id}@{self.realm}>"
        request = self._request(
            method, self._server_uri, to=to, body=body, content_type=manscdp.CONTENT_TYPE, extra=extra
        )
        response = await self.sip.request(request, self.server, timeout=timeout)
        if response.status in (403, 404):
            logger.warning("%s: platform answered %d to %s: registering again", self.device_id, response.status, method)
            self._down(f"platform answered {response.status}")
            self._reregister.set()
        return response

    async def send_alarm(
        self,
        channel_id: str,
        *,
        priority: int,
        method: int,
        description: str,
        at: datetime,
        alarm_type: int = 1,
        timeout: float | None = None,
    ) -> None:
        """One Alarm MESSAGE from `channel_id`; returns on the platform's 200, raises GatewayError otherwise."""
        if not self.registered.is_set():
            raise DeviceError(self.server_id, "not registered with the platform")
        body = manscdp.alarm(
            next(self._sn),
            channel_id,
            priority=priority,
            method=method,
            at=at,
            description=description,
            alarm_type=alarm_type,
            charset=self.config.charset,
        )
        response = await self._message(body, timeout=timeout)
        if response.status != 200:
            raise DeviceError(self.server_id, f"Alarm MESSAGE answered {response.status} {response.reason}")

    def channel_changed(self, channel: Channel) -> None:
        """The change hook: a channel went ON or OFF; the platform learns it by a Catalog NOTIFY."""
        if self.registered.is_set():
            self._spawn(self._notify(channel))

    async def _notify(self, channel: Channel) -> None:
        body = manscdp.catalog_notify(next(self._sn), self.device_id, channel, self.config.charset)
        try:
            await self._message(
                body,
                method="NOTIFY",
                timeout=ANSWER_TIMEOUT_S,
                extra=(("Event", "Catalog"), ("Subscription-State", "active")),
            )
        except GatewayError as exc:
            logger.warning("%s: Catalog NOTIFY for %s not delivered: %s", self.device_id, channel.id, exc)

    def _connection_lost(self, peer: Address) -> None:
        # Over TCP the platform reaches the device only over the connection it registered on: a new connection
        # must carry a new REGISTER before the platform can send anything again.
        if self.registered.is_set():
            logger.warning("%s: TCP signalling to %s:%d lost; registering again", self.device_id, *peer)
            self._down("TCP connection lost")
            self._reregister.set()

    def _up(self) -> None:
        self.link, self.last_error = "up", None
        if self.on_link is not None:
            self.on_link(True, None)

    def _down(self, error: str) -> None:
        # Whatever took the link down (a refused or lost registration, silent keepalives, a 403/404 from a
        # platform that forgot us), the platform does not have the device registered now: say so at once, not
        # only when the run loop comes round to register again.
        self.link, self.last_error = "down", error
        self.registered.clear()
        self.registered_since = None
        if self.on_link is not None:
            self.on_link(False, error)

    # Incoming requests.

    async def _on_request(self, request: SipMessage, peer: Address) -> SipMessage | None:
        method = request.method
        if method == "MESSAGE":
            return self._on_message(request)
        if method == "INVITE":
            return await self._on_invite(request, peer)
        if method == "ACK":
            await self._on_ack(request)
            return None
        if method == "BYE":
            dialog = self._dialogs.get(request.call_id)
            if dialog is None:
                return response_to(request, 481)
            await self._end_dialog(dialog, send_bye=False)
            return response_to(request, 200)
        if method in ("OPTIONS", "SUBSCRIBE", "INFO", "NOTIFY"):
            return response_to(request, 200, to_tag=new_tag())
        return response_to(request, 501 if method != "CANCEL" else 200, to_tag=new_tag())

    def _on_message(self, request: SipMessage) -> SipMessage:
        try:
            body = manscdp.parse(request.body, self.server_id)
        except DeviceProtocolError as exc:
            logger.warning("%s: unreadable MANSCDP from the platform: %s", self.device_id, exc.message)
            return response_to(request, 400, to_tag=new_tag())
        answer = self._answer_for(body)
        if answer is not None:
            self._spawn(self._send_answers(body.cmd_type, answer))
        return response_to(request, 200, to_tag=new_tag())

    def _answer_for(self, query: manscdp.Manscdp) -> list[bytes] | None:
        if query.root != "Query":
            return None  # Responses (to our Alarm) and Controls (PTZ, reboot) need no answer from a gateway
        charset, sn = self.config.charset, query.sn
        if query.cmd_type == "Catalog":
            return manscdp.catalog_responses(sn, self.device_id, self._source.channels(), charset)
        if query.cmd_type == "DeviceInfo":
            return [manscdp.device_info(sn, self.device_id, self.name, len(self._source.channels()), charset)]
        if query.cmd_type == "DeviceStatus":
            return [manscdp.device_status(sn, self.device_id, datetime.now(UTC), charset)]
        if query.cmd_type == "ConfigDownload":
            return [
                manscdp.basic_param(
                    sn,
                    self.device_id,
                    self.name,
                    int(self.config.expires),
                    max(1, round(self.config.keepalive)),  # whole seconds, never 0 or null
                    self.config.keepalive_misses,
                    charset,
                )
            ]
        logger.info("%s: query %s not supported; answered 200 only", self.device_id, query.cmd_type)
        return None

    async def _send_answers(self, cmd_type: str, bodies: list[bytes]) -> None:
        # A few MESSAGEs in flight at once: a 1,000-channel Catalog is 500 MESSAGEs, and one round trip each in
        # turn would be most of the time it takes; the platform collects them by SN in any order.
        for start in range(0, len(bodies), ANSWERS_IN_FLIGHT):
            batch = bodies[start : start + ANSWERS_IN_FLIGHT]
            results = await asyncio.gather(
                *(self._message(body, timeout=ANSWER_TIMEOUT_S) for body in batch), return_exceptions=True
            )
            for result in results:
                if isinstance(result, GatewayError):
                    logger.warning("%s: %s answer not delivered: %s", self.device_id, cmd_type, result)
                    return
                if isinstance(result, BaseException):
                    raise result

    # Live play.

    async def _on_invite(self, request: SipMessage, peer: Address) -> SipMessage:
        tag = new_tag()
        channel_id = uri_user(request.uri or "")
        cameras = {c.id: c for c in self._source.channels() if c.kind is ChannelKind.CAMERA}
        channel = cameras.get(channel_id)
        if channel is None:
            return response_to(request, 404, to_tag=tag)
        if self._live is None:
            return response_to(request, 488, to_tag=tag)
        try:
            offer = sdp.parse_offer(
                request.body.decode("utf-8", errors="replace"),
                channel_id=channel_id,
                camera_id=channel.local_id,
                subject=request.header("Subject"),
            )
            session = await self._live.open(offer)
        except GatewayError as exc:
            logger.warning("%s: INVITE for %s refused: %s", self.device_id, channel_id, exc)
            return response_to(request, 488 if isinstance(exc, DeviceProtocolError) else 503, to_tag=tag)
        to = request.require("To")
        dialog = _Dialog(
            call_id=request.call_id,
            local_tag=tag,
            local_uri=to,
            remote=request.require("From"),
            remote_target=address_uri(request.header("Contact") or request.require("From")),
            peer=peer,
            session=session,
            camera_id=channel.local_id,
        )
        self._dialogs[dialog.call_id] = dialog
        body = sdp.answer(offer, address=self._host, local_port=session.local_port).encode()
        extra = (
            ("Contact", f"<sip:{channel_id}@{self._host}:{self._port}>"),
            ("Content-Type", "application/sdp"),
        )
        return response_to(request, 200, to_tag=tag, body=body, extra=extra)

    async def _on_ack(self, request: SipMessage) -> None:
        dialog = self._dialogs.get(request.call_id)
        if dialog is None or dialog.started:
            return
        dialog.started = True
        try:
            await dialog.session.start()
        except GatewayError as exc:
            logger.warning("%s: play of %s could not start: %s", self.device_id, request.call_id, exc)
            await self._end_dialog(dialog, send_bye=True)
            return
        self._spawn(self._watch(dialog))

    async def _watch(self, dialog: _Dialog) -> None:
        await dialog.session.ended.wait()
        if self._dialogs.get(dialog.call_id) is dialog:
            await self._end_dialog(dialog, send_bye=True)

    async def _end_dialog(self, dialog: _Dialog, *, send_bye: bool) -> None:
        if self._dialogs.pop(dialog.call_id, None) is None:
            return
        try:
            await dialog.session.stop()
        except GatewayError as exc:
            logger.warning("%s: stopping play %s: %s", self.device_id, dialog.call_id, exc)
        if not send_bye:
            return
        # A BYE inside the dialog: our From is the INVITE's To (with our tag), our To its From.
        via = f"SIP/2.0/{self.config.transport.upper()} {self._host}:{self._port};rport;branch={new_branch()}"
        headers = (
            ("Via", via),
            ("From", f"{dialog.local_uri};tag={dialog.local_tag}"),
            ("To", dialog.remote),
            ("Call-ID", dialog.call_id),
            ("CSeq", f"{next(self._cseq)} BYE"),
            ("Max-Forwards", "70"),
        )
        bye = SipMessage(method="BYE", uri=dialog.remote_target, headers=headers)
        try:
            await self.sip.request(bye, dialog.peer, timeout=ANSWER_TIMEOUT_S)
        except GatewayError as exc:
            logger.info("%s: BYE for %s unanswered: %s", self.device_id, dialog.call_id, exc)

    @property
    def playing(self) -> int:
        return len(self._dialogs)

    def viewers(self) -> dict[str, int]:
        """Live-play calls now, by the gateway's camera id (a camera watched twice counts 2)."""
        counts: dict[str, int] = {}
        for dialog in self._dialogs.values():
            counts[dialog.camera_id] = counts.get(dialog.camera_id, 0) + 1
        return counts

    def _spawn(self, coroutine: Awaitable[None]) -> None:
        task: asyncio.Task[None] = asyncio.ensure_future(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            logger.error("%s: background SIP work failed", self.device_id, exc_info=task.exception())
