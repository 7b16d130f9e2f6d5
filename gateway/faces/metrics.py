"""Prometheus exposition of the gateway's state, built at scrape time from plain data.

Nothing here keeps its own copy of camera or button state: the collector reads the same figures the API shows,
so the two can never disagree.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.registry import Collector

CAMERA_STATES = ("unknown", "online", "degraded", "offline", "maintenance")


class _SnapshotCollector(Collector):
    def __init__(self, data: dict[str, Any]) -> None:
        self._data = data

    def collect(self) -> Iterator[GaugeMetricFamily | HistogramMetricFamily | CounterMetricFamily]:
        data = self._data
        school = str(data.get("school", ""))
        up = GaugeMetricFamily(
            "huxiao_camera_up",
            "1 if the camera delivers a usable picture (what uptime and the networking rate count)",
            labels=["camera", "name"],
        )
        state = GaugeMetricFamily("huxiao_camera_state", "1 for the camera's current state", labels=["camera", "state"])
        rtt = GaugeMetricFamily("huxiao_camera_rtt_seconds", "ONVIF probe round-trip time", labels=["camera"])
        skew = GaugeMetricFamily(
            "huxiao_camera_clock_skew_seconds", "camera clock minus gateway clock", labels=["camera"]
        )
        uptime = GaugeMetricFamily(
            "huxiao_camera_uptime_ratio",
            "time-weighted share of known time with a usable picture (maintenance excluded)",
            labels=["camera", "window"],
        )
        for cam in data.get("cameras", []):
            cid = str(cam["id"])
            up.add_metric([cid, str(cam.get("name", ""))], 1.0 if cam.get("usable") else 0.0)
            for name in CAMERA_STATES:
                state.add_metric([cid, name], 1.0 if cam["state"] == name else 0.0)
            if cam.get("rtt_ms") is not None:
                rtt.add_metric([cid], float(cam["rtt_ms"]) / 1000.0)
            if cam.get("clock_skew_s") is not None:
                skew.add_metric([cid], float(cam["clock_skew_s"]))
            for window, ratio in (cam.get("uptime") or {}).items():
                if ratio is not None:
                    uptime.add_metric([cid, window], float(ratio))
        yield from (up, state, rtt, skew, uptime)

        rate = GaugeMetricFamily(
            "huxiao_networking_rate", "联网率: cameras networked / cameras in service", labels=["school"]
        )
        if data.get("networking_rate") is not None:
            rate.add_metric([school], float(data["networking_rate"]))
        yield rate
        target = GaugeMetricFamily("huxiao_networking_rate_target", "the networking-rate target", labels=["school"])
        target.add_metric([school], float(data.get("target", 0.8)))
        yield target
        compliant = GaugeMetricFamily("huxiao_compliant", "1 if every compliance criterion is met", labels=["school"])
        compliant.add_metric([school], 1.0 if data.get("compliant") else 0.0)
        yield compliant

        button = GaugeMetricFamily("huxiao_button_online", "1 if the alarm button is online", labels=["button"])
        for b in data.get("buttons", []):
            button.add_metric([str(b["id"])], 1.0 if b.get("online") else 0.0)
        yield button

        pending = GaugeMetricFamily("huxiao_outbox_pending", "events waiting for delivery", labels=["upstream"])
        link = GaugeMetricFamily(
            "huxiao_upstream_link_up", "1 if the last delivery attempt worked", labels=["upstream"]
        )
        for u in data.get("upstreams", []):
            pending.add_metric([str(u["name"])], float(u.get("pending", 0)))
            link.add_metric([str(u["name"])], 1.0 if u.get("link") == "up" else 0.0)
        yield from (pending, link)

        latency = HistogramMetricFamily(
            "huxiao_delivery_latency_seconds", "button press to platform receipt", labels=["upstream"]
        )
        for name, histogram in (data.get("delivery_latency") or {}).items():
            latency.add_metric([str(name)], histogram.cumulative(), sum_value=histogram.total)
        yield latency

        crashes = CounterMetricFamily(
            "huxiao_part_crashes", "crashes of a background part (restarted with back-off)", labels=["part"]
        )
        for part, count in sorted((data.get("part_crashes") or {}).items()):
            crashes.add_metric([str(part)], float(count))
        yield crashes

        refused = CounterMetricFamily(
            "huxiao_refused_messages",
            "button messages refused (bad mac, replay, outside the window)",
            labels=["button", "reason"],
        )
        for (button_id, reason), count in sorted((data.get("refused_messages") or {}).items()):
            refused.add_metric([str(button_id), str(reason)], float(count))
        yield refused

        storage = data.get("storage_failures") or {}
        yield CounterMetricFamily(
            "huxiao_storage_failures",
            "commits of alarms the outbox could not make (disk full, read-only, I/O error)",
            value=float(storage.get("failed_commits", 0)),
        )
        yield CounterMetricFamily(
            "huxiao_alarms_unstored",
            "alarms sent to the upstreams from memory because they could not be stored (each counted once)",
            value=float(storage.get("unstored_alarms", 0)),
        )


def render_metrics(data: dict[str, Any]) -> bytes:
    """Prometheus text format for one snapshot of the gateway's figures."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_SnapshotCollector(data))
    return bytes(generate_latest(registry))
