"""Signed `huxiao` presses: is this message really from the button, fresh, and not a replay?

A button with a secret sends `{"id", "type", "ts", "seq", "mac"}` where `mac` is the hex HMAC-SHA256 of
`"<button id>|<type>|<ts>|<seq>"` under its secret (the `ts` exactly as sent). Following SIA DC-09's rules for alarm
messages: a message outside the time window (−40 s/+20 s by default) is refused, and so is one whose sequence number
is not above the last one accepted. Pure: the last accepted seq and the clock are passed in.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum

from adapters.mqtt.profiles import MAX_PAYLOAD_BYTES

# A seq is a counter the button keeps; JSON integers past 2**63 are not a counter a device could hold.
MAX_SEQ = 2**63 - 1


class Refusal(StrEnum):
    """Why a signed button's message was refused: the `reason` label of huxiao_refused_messages_total."""

    MALFORMED = "malformed"  # not a JSON object with id, type, ts
    NO_MAC = "no_mac"
    BAD_MAC = "bad_mac"
    NO_SEQ = "no_seq"
    REPLAY = "replay"  # seq not above the last accepted
    STALE = "stale"  # ts older than the window's past
    FUTURE = "future"  # ts further ahead than the window's future


@dataclass(frozen=True, slots=True)
class Accepted:
    seq: int
    event_id: str


@dataclass(frozen=True, slots=True)
class LastAccepted:
    seq: int
    event_id: str


def signing_text(button_id: str, alarm_type: str, ts: str, seq: int) -> bytes:
    return f"{button_id}|{alarm_type}|{ts}|{seq}".encode()


def mac(secret: str, button_id: str, alarm_type: str, ts: str, seq: int) -> str:
    return hmac.new(secret.encode(), signing_text(button_id, alarm_type, ts, seq), hashlib.sha256).hexdigest()


def _moment(ts: str) -> datetime | None:
    try:
        moment = datetime.fromisoformat(ts.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def verify(
    payload: bytes,
    *,
    button_id: str,
    secret: str,
    last: LastAccepted | None,
    now: datetime,
    past_s: float,
    future_s: float,
) -> Accepted | Refusal:
    """Accept a signed press or say why not. The mac is checked before anything it covers is trusted.

    The same message again (same seq and id as the last accepted) is accepted: it is the broker's redelivery of a
    press whose acknowledgement was lost, and the outbox recognises it by its id and stores it once."""
    if len(payload) > MAX_PAYLOAD_BYTES:
        return Refusal.MALFORMED
    try:
        data = json.loads(payload.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
        return Refusal.MALFORMED
    if not isinstance(data, dict):
        return Refusal.MALFORMED
    event_id, alarm_type, ts = data.get("id"), data.get("type", "panic"), data.get("ts")
    if not isinstance(event_id, str) or not isinstance(alarm_type, str) or not isinstance(ts, str):
        return Refusal.MALFORMED
    given = data.get("mac")
    if not isinstance(given, str) or not given:
        return Refusal.NO_MAC
    seq = data.get("seq")
    if not isinstance(seq, int) or isinstance(seq, bool) or not 0 <= seq <= MAX_SEQ:
        return Refusal.NO_SEQ
    expected = mac(secret, button_id, alarm_type, ts, seq)
    if not hmac.compare_digest(expected, given.lower()):
        return Refusal.BAD_MAC
    if last is not None and (seq < last.seq or (seq == last.seq and event_id != last.event_id)):
        return Refusal.REPLAY
    moment = _moment(ts)
    if moment is None:
        return Refusal.MALFORMED
    offset = (moment - now).total_seconds()
    if offset < -past_s:
        return Refusal.STALE
    if offset > future_s:
        return Refusal.FUTURE
    return Accepted(seq, event_id)
