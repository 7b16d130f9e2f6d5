"""MANSCDP bodies: built in GB2312 as platforms read them, split to fit a datagram, parsed without entities."""

from __future__ import annotations

from datetime import datetime

import pytest

from adapters.gb28181 import manscdp
from adapters.gb28181.channels import Channel, ChannelKind, channel_id
from gateway.domain.errors import DeviceProtocolError

DEVICE = "51040200001180000001"


def cameras(count: int) -> list[Channel]:
    return [
        Channel(
            channel_id(DEVICE, ChannelKind.CAMERA, n), f"教学楼{n}号摄像机", ChannelKind.CAMERA, n % 2 == 0, f"c{n}"
        )
        for n in range(1, count + 1)
    ]


def test_derived_channel_ids_follow_the_contract() -> None:
    assert channel_id(DEVICE, ChannelKind.CAMERA, 1) == "51040200001320000001"
    assert channel_id(DEVICE, ChannelKind.ALARM_INPUT, 12) == "51040200001340000012"


def test_a_catalog_of_many_channels_is_split_into_datagram_sized_answers_with_the_query_sn() -> None:
    bodies = manscdp.catalog_responses("4711", DEVICE, cameras(50), "GB2312")
    assert len(bodies) > 5
    assert all(len(b) <= manscdp.CATALOG_BODY_BUDGET for b in bodies)
    seen: list[tuple[str, str, str]] = []
    for body in bodies:
        assert body.startswith(b'<?xml version="1.0" encoding="GB2312"?>')
        parsed = manscdp.parse(body)
        assert (parsed.root, parsed.cmd_type, parsed.sn) == ("Response", "Catalog", "4711")
        assert parsed.text("SumNum") == "50"
        for item in parsed.element.iter("Item"):
            seen.append((item.findtext("DeviceID") or "", item.findtext("Name") or "", item.findtext("Status") or ""))
            assert item.findtext("ParentID") == DEVICE
            assert item.findtext("CivilCode") == "510402"
            assert item.findtext("Parental") == "0"
    assert [s[0] for s in seen] == [c.id for c in cameras(50)]
    assert seen[0][1] == "教学楼1号摄像机"  # GB2312 bytes decoded back to the name
    assert {s[2] for s in seen} == {"ON", "OFF"}


def test_an_empty_catalog_is_one_answer_with_sumnum_zero() -> None:
    (body,) = manscdp.catalog_responses("1", DEVICE, [], "GB2312")
    assert manscdp.parse(body).text("SumNum") == "0"


def test_characters_gb2312_lacks_are_replaced_not_fatal() -> None:
    body = manscdp.device_info("3", DEVICE, "学校😀镕", 2, "GB2312")
    assert manscdp.parse(body).text("DeviceName") == "学校??"


def test_alarm_and_basic_param_carry_what_platforms_need() -> None:
    body = manscdp.alarm(
        9,
        "51040200001340000001",
        priority=1,
        method=2,
        at=datetime(2026, 12, 1, 8, 30),
        description="一键报警：门卫室",
        alarm_type=1,
        charset="GB2312",
    )
    parsed = manscdp.parse(body)
    assert (parsed.cmd_type, parsed.device_id, parsed.text("AlarmPriority"), parsed.text("AlarmMethod")) == (
        "Alarm",
        "51040200001340000001",
        "1",
        "2",
    )
    assert parsed.text("AlarmDescription") == "一键报警：门卫室"
    params = manscdp.parse(manscdp.basic_param("5", DEVICE, "gw", 3600, 60, 3, "GB2312"))
    assert params.text("BasicParam/HeartBeatInterval") == "60"
    assert params.text("BasicParam/HeartBeatCount") == "3"


@pytest.mark.parametrize(
    "body",
    [
        b'<?xml version="1.0"?><!DOCTYPE q [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;">]>'
        b"<Query><CmdType>&b;</CmdType></Query>",
        b'<?xml version="1.0"?><!DOCTYPE q [<!ENTITY x SYSTEM "file:///etc/passwd">]><Query>&x;</Query>',
        b"<Query><CmdType>Catalog</CmdType>",
        b"<Query><SN>1</SN></Query>",
        b"\xff\xfe garbage",
    ],
)
def test_hostile_bodies_are_refused_with_a_clear_error(body: bytes) -> None:
    with pytest.raises(DeviceProtocolError):
        manscdp.parse(body)


def test_a_body_labelled_gb2312_but_written_in_gbk_still_reads() -> None:
    body = '<?xml version="1.0" encoding="GB2312"?><Query><CmdType>Catalog</CmdType><SN>1</SN>'
    body += "<DeviceID>镕</DeviceID></Query>"
    assert manscdp.parse(body.encode("gbk")).device_id == "镕"
