"""Signed presses checked without a broker: mac, sequence and time window, each refusal named."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from adapters.mqtt.signed import Accepted, LastAccepted, Refusal, mac, verify

SECRET = "btn-secret"
NOW = datetime(2026, 12, 1, 8, 0, 0, tzinfo=UTC)


def signed(seq: int, *, ts: datetime = NOW, kind: str = "panic", event_id: str = "e1", key: str = SECRET) -> bytes:
    stamp = ts.isoformat()
    return json.dumps(
        {"id": event_id, "type": kind, "ts": stamp, "seq": seq, "mac": mac(key, "guard-room", kind, stamp, seq)}
    ).encode()


def check(payload: bytes, last: LastAccepted | None = None) -> Accepted | Refusal:
    return verify(payload, button_id="guard-room", secret=SECRET, last=last, now=NOW, past_s=40, future_s=20)


def test_a_well_signed_fresh_press_is_accepted() -> None:
    assert check(signed(7)) == Accepted(7, "e1")
    assert check(signed(8, event_id="e2"), LastAccepted(7, "e1")) == Accepted(8, "e2")


def test_a_wrong_key_or_a_changed_field_is_a_bad_mac() -> None:
    assert check(signed(1, key="guessed")) == Refusal.BAD_MAC
    tampered = json.loads(signed(1))
    tampered["type"] = "cancel"  # a cancel forged from a real panic
    assert check(json.dumps(tampered).encode()) == Refusal.BAD_MAC
    other = json.loads(signed(1))
    other["seq"] = 2
    assert check(json.dumps(other).encode()) == Refusal.BAD_MAC


def test_missing_parts_are_named() -> None:
    bare = {"id": "e1", "type": "panic", "ts": NOW.isoformat()}
    assert check(json.dumps(bare).encode()) == Refusal.NO_MAC
    assert check(json.dumps({**bare, "mac": "00"}).encode()) == Refusal.NO_SEQ
    assert check(json.dumps({**bare, "mac": "00", "seq": True}).encode()) == Refusal.NO_SEQ
    assert check(json.dumps({**bare, "mac": "00", "seq": -1}).encode()) == Refusal.NO_SEQ
    assert check(b"\xff\xfe") == Refusal.MALFORMED
    assert check(b"[1, 2]") == Refusal.MALFORMED


def test_a_seq_not_above_the_last_is_a_replay_but_the_same_message_again_is_a_redelivery() -> None:
    assert check(signed(5), LastAccepted(5, "e0")) == Refusal.REPLAY
    assert check(signed(4), LastAccepted(5, "e1")) == Refusal.REPLAY
    assert check(signed(5), LastAccepted(5, "e1")) == Accepted(5, "e1")


def test_the_window_is_forty_seconds_back_and_twenty_ahead() -> None:
    assert check(signed(1, ts=NOW - timedelta(seconds=39))) == Accepted(1, "e1")
    assert check(signed(1, ts=NOW - timedelta(seconds=41))) == Refusal.STALE
    assert check(signed(1, ts=NOW + timedelta(seconds=19))) == Accepted(1, "e1")
    assert check(signed(1, ts=NOW + timedelta(seconds=21))) == Refusal.FUTURE
    assert check(signed(1, ts=datetime(9999, 12, 31, tzinfo=UTC))) == Refusal.FUTURE
