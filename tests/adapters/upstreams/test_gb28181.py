"""How each outbox event looks as a GB/T 28181 Alarm (the sending itself: tests/adapters/gb28181)."""

from __future__ import annotations

from adapters.upstreams.gb28181 import METHOD_DEVICE, METHOD_FAULT, shape

DATA = {"button": {"id": "guard-room", "name": "门卫室", "location": "一楼"}, "school": {"name": "一小"}}


def test_panic_is_a_priority_1_device_alarm_and_a_test_is_priority_4() -> None:
    panic = shape("cn.huxiao.alarm.panic", DATA)
    test = shape("cn.huxiao.alarm.test", DATA)
    assert panic is not None
    assert test is not None
    assert (panic.priority, panic.method) == (1, METHOD_DEVICE)
    assert (test.priority, test.method) == (4, METHOD_DEVICE)
    assert panic.description == "一键报警：一小门卫室（一楼）紧急求助"
    assert "测试" in test.description


def test_a_button_going_offline_is_a_device_fault_and_pictures_are_not_sent() -> None:
    offline = shape("cn.huxiao.button.offline", DATA)
    assert offline is not None
    assert offline.method == METHOD_FAULT
    assert "离线" in offline.description
    assert shape("cn.huxiao.alarm.pictures", DATA) is None
