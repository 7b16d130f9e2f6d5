"""The center's HTTP faces: intake (`POST /alarms`, `POST /reports`), the JSON API, the live feed, the console,
`/metrics` and `/healthz`. Access as on the gateway: reads open on loopback, else a token; `?token=` for the feed.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import csv
import io
import json
import logging
import time
from collections.abc import Callable, Mapping
from importlib import resources
from typing import Any

from aiohttp import web

from adapters.static_pages import add_static_routes
from adapters.upstreams.signing import HEADER
from center.intake import Intake, Refused
from center.service import CenterService
from center.store import REPORT_TYPE
from gateway.domain.access import is_loopback, role_of
from gateway.domain.errors import StorageError

logger = logging.getLogger(__name__)

STATIC = resources.files("center") / "static"
MAX_ALARMS = 1000
MAX_BODY = 16 * 1024 * 1024  # an alarm carries pictures from several cameras, base64
# A comment line on the feed this often keeps proxies and the browser from closing an idle stream.
SSE_HEARTBEAT_S = 15.0
ROLE_RANK = {"duty": 1, "admin": 2}
MAX_TEXT = 500  # names and findings typed by staff

SERVICE = web.AppKey("center_service", CenterService)
INTAKE = web.AppKey("center_intake", Intake)
TOKENS: web.AppKey[dict[str, str]] = web.AppKey("center_tokens", dict)
LOOPBACK_ONLY = web.AppKey("center_loopback_only", bool)
HEALTH = web.AppKey("center_health", dict)
# Parts besides storage that report their health: name → () → (ok, detail). Not ok makes the status degraded.
HEALTH_CHECKS: web.AppKey[dict[str, Callable[[], tuple[bool, str]]]] = web.AppKey("center_health_checks", dict)


def _json(data: Any, status: int = 200) -> web.Response:
    return web.json_response(data, status=status, dumps=lambda d: json.dumps(d, ensure_ascii=False))


def _error(status: int, message: str) -> web.HTTPException:
    cls = {400: web.HTTPBadRequest, 401: web.HTTPUnauthorized, 403: web.HTTPForbidden, 404: web.HTTPNotFound}
    return cls.get(status, web.HTTPBadRequest)(
        text=json.dumps({"error": message}, ensure_ascii=False), content_type="application/json"
    )


def presented_role(request: web.Request) -> str | None:
    header = request.headers.get("Authorization", "")
    token = header[7:].strip() if header.lower().startswith("bearer ") else request.query.get("token", "")
    tokens: dict[str, str] = request.app[TOKENS]
    return role_of(token, tokens, ROLE_RANK)


def require(request: web.Request, role: str, write: bool = False) -> str:
    """The role the caller acts as. Reads are open on loopback; a write on loopback is open only while no token
    of that role (or above) is configured."""
    presented = presented_role(request)
    if presented is not None and ROLE_RANK[presented] >= ROLE_RANK[role]:
        return presented
    loopback = request.app[LOOPBACK_ONLY]
    configured = any(ROLE_RANK.get(r, 0) >= ROLE_RANK[role] for r, t in request.app[TOKENS].items() if t)
    if loopback and (not write or not configured):
        return role
    raise web.HTTPUnauthorized(
        text=json.dumps({"error": "a valid token is required (Authorization: Bearer ...)"}),
        content_type="application/json",
        headers={"WWW-Authenticate": 'Bearer realm="huxiao-center"'},
    )


async def _body_json(request: web.Request) -> dict[str, Any]:
    if not request.can_read_body:
        return {}
    try:
        value = await request.json()
    except (ValueError, UnicodeDecodeError):
        raise _error(400, "the body is not JSON") from None
    if not isinstance(value, dict):
        raise _error(400, "the body must be a JSON object")
    return value


def _text_field(body: dict[str, Any], key: str, default: str | None = None) -> str:
    value = body.get(key, default)
    if not isinstance(value, str) or not value.strip():
        raise _error(400, f"`{key}` must be a non-empty string")
    return value.strip()[:MAX_TEXT]


# intake ---------------------------------------------------------------------------------------------------------
async def take_alarm(request: web.Request) -> web.Response:
    body = await request.read()
    try:
        taken = await request.app[INTAKE].take_http(body, request.headers.get(HEADER, ""))
    except Refused as exc:
        return _json({"error": exc.detail, "reason": exc.reason.value}, status=exc.status)
    except StorageError:
        return _json({"error": "the center cannot store events right now; retry"}, status=503)
    if taken.event.type == REPORT_TYPE:
        answer = await request.app[SERVICE].report(taken.event, taken.fresh)
        return _json(answer)
    if not taken.fresh:
        return _json({"id": taken.event.id, "status": "already received"}, status=409)
    return _json({"id": taken.event.id, "status": "received"})


# reads ----------------------------------------------------------------------------------------------------------
async def alarms(request: web.Request) -> web.Response:
    require(request, "duty")
    try:
        limit = max(1, min(MAX_ALARMS, int(request.query.get("limit", "100"))))
    except ValueError:
        raise _error(400, "limit must be a whole number") from None
    service = request.app[SERVICE]
    rows = await service.store.read(service.store.alarms, limit, request.query.get("school"))
    return _json([service.decorate(r) for r in rows])


async def acknowledge(request: web.Request) -> web.Response:
    role = require(request, "duty", write=True)
    body = await _body_json(request)
    by = _text_field(body, "by", role)
    service = request.app[SERVICE]
    row, changed = await service.store.run(service.store.acknowledge, request.match_info["alarm_id"], by)
    if row is None:
        raise _error(404, "no such alarm")
    shown = service.decorate(row)
    if changed:
        logger.info("%s: alarm %s acknowledged by %s", row["school_id"], row["id"], by)
        service.live.publish("ack", shown)
        await service.acks_changed(row["school_id"])
    return _json(shown)


async def picture(request: web.Request) -> web.Response:
    require(request, "duty")
    service = request.app[SERVICE]
    try:
        position = int(request.match_info["position"])
    except ValueError:
        raise _error(404, "no such picture") from None
    encoded = await service.store.read(service.store.picture, request.match_info["event_id"], position)
    if encoded is None:
        raise _error(404, "no such picture")
    try:
        jpeg = base64.b64decode(encoded, validate=False)
    except (binascii.Error, ValueError):
        raise _error(404, "the picture sent was not base64") from None
    return web.Response(body=jpeg, content_type="image/jpeg", headers={"Cache-Control": "max-age=86400"})


async def schools(request: web.Request) -> web.Response:
    require(request, "duty")
    service = request.app[SERVICE]
    return _json(await service.store.read(service.school_rows_sync))


async def city(request: web.Request) -> web.Response:
    require(request, "duty")
    service = request.app[SERVICE]
    return _json(await service.store.read(service.city_sync))


def _pct(value: object) -> str:
    return f"{float(value) * 100:.1f}" if isinstance(value, int | float) else ""


async def city_csv(request: web.Request) -> web.Response:
    require(request, "duty")
    service = request.app[SERVICE]
    table = await service.store.read(service.city_sync)
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["区 district", "学校 schools", "上报 reporting", "联网率 networking_rate %", "达标率 compliant %"])
    for row in [*table["by_district"], {**table, "district": "全市 city"}]:
        writer.writerow(
            [
                row["district"],
                row["schools"],
                row["reporting"],
                _pct(row["networking_rate"]),
                _pct(row["compliant_share"]),
            ]
        )
    # A BOM so that spreadsheet programs read the Chinese headers as UTF-8.
    return web.Response(
        body=("\ufeff" + out.getvalue()).encode(),
        content_type="text/csv",
        charset="utf-8",
        headers={"Content-Disposition": 'attachment; filename="city.csv"'},
    )


# hazards and patrols --------------------------------------------------------------------------------------------
async def hazards(request: web.Request) -> web.Response:
    require(request, "duty")
    service = request.app[SERVICE]
    open_only = request.query.get("open", "") in ("1", "true")
    rows = await service.store.read(service.store.hazards, open_only, request.query.get("school"))
    now = time.time()
    return _json([{**h, "overdue": h["closed_at"] is None and h["deadline_ts"] < now} for h in rows])


async def open_hazard(request: web.Request) -> web.Response:
    role = require(request, "duty", write=True)
    body = await _body_json(request)
    service = request.app[SERVICE]
    school_id = _text_field(body, "school")
    if service.config.school(school_id) is None:
        raise _error(400, f"no school {school_id!r}")
    detail = _text_field(body, "detail")
    days = body.get("deadline_days", 7)
    if not isinstance(days, int | float) or isinstance(days, bool) or not 0 < days <= 365:
        raise _error(400, "`deadline_days` must be a number of days from 1 to 365")
    by = _text_field(body, "by", role)
    kind = _text_field(body, "kind", "manual")
    hazard = await service.store.run(
        service.store.open_hazard, school_id, kind, detail[:100], detail, time.time() + days * 86400.0, by, False
    )
    await service.school_changed(school_id)
    return _json(hazard, status=201)


async def close_hazard(request: web.Request) -> web.Response:
    role = require(request, "duty", write=True)
    body = await _body_json(request)
    service = request.app[SERVICE]
    hazard = await service.store.run(
        service.store.close_hazard,
        request.match_info["hazard_id"],
        _text_field(body, "by", role),
        _text_field(body, "reason", "closed by hand / 人工关闭"),
    )
    if hazard is None:
        raise _error(404, "no such hazard")
    await service.school_changed(hazard["school_id"])
    return _json(hazard)


async def patrols(request: web.Request) -> web.Response:
    require(request, "duty")
    service = request.app[SERVICE]
    return _json(await service.store.read(service.store.patrols, request.query.get("school")))


async def log_patrol(request: web.Request) -> web.Response:
    role = require(request, "duty", write=True)
    body = await _body_json(request)
    service = request.app[SERVICE]
    school_id = _text_field(body, "school")
    if service.config.school(school_id) is None:
        raise _error(400, f"no school {school_id!r}")
    entry = await service.store.run(
        service.store.log_patrol, school_id, _text_field(body, "by", role), _text_field(body, "found", "正常 / normal")
    )
    return _json(entry, status=201)


# live, metrics, health, console ---------------------------------------------------------------------------------
async def events(request: web.Request) -> web.StreamResponse:
    require(request, "duty")
    live = request.app[SERVICE].live
    response = web.StreamResponse(
        headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    )
    await response.prepare(request)
    queue = live.subscribe()
    try:
        await response.write(b": connected\n\n")
        while True:
            try:
                async with asyncio.timeout(SSE_HEARTBEAT_S):
                    frame = await queue.get()
            except TimeoutError:
                await response.write(b": keep-alive\n\n")
                continue
            if frame is None:
                break
            await response.write(frame)
    except (ConnectionResetError, ConnectionError):
        pass  # the browser went away
    finally:
        live.unsubscribe(queue)
    return response


def _labels(**labels: str) -> str:
    inner = ",".join(
        f'{k}="{v.replace(chr(92), chr(92) * 2).replace(chr(34), chr(92) + chr(34))}"' for k, v in labels.items()
    )
    return "{" + inner + "}" if inner else ""


async def metrics(request: web.Request) -> web.Response:
    require(request, "duty")
    service = request.app[SERVICE]
    counts = request.app[INTAKE].metrics()
    table = await service.store.read(service.city_sync)
    lines = [
        "# HELP huxiao_center_events_total CloudEvents stored, by the face they came through",
        "# TYPE huxiao_center_events_total counter",
    ]
    for via in ("http", "mqtt"):
        lines.append(f"huxiao_center_events_total{_labels(via=via)} {counts['taken'].get(via, 0)}")
    lines += [
        "# HELP huxiao_center_duplicates_total Events whose id the center already had (answered, stored once)",
        "# TYPE huxiao_center_duplicates_total counter",
        f"huxiao_center_duplicates_total {counts['duplicates']}",
        "# HELP huxiao_center_refused_total Events refused, by reason (forged, stale, replayed, ...)",
        "# TYPE huxiao_center_refused_total counter",
    ]
    for reason in ("malformed", "unknown_school", "forged", "stale", "replayed", "wrong_topic"):
        lines.append(f"huxiao_center_refused_total{_labels(reason=reason)} {counts['refused'].get(reason, 0)}")
    lines += [
        "# HELP huxiao_center_schools Schools configured and reporting",
        "# TYPE huxiao_center_schools gauge",
        f"huxiao_center_schools{_labels(state='configured')} {table['schools']}",
        f"huxiao_center_schools{_labels(state='reporting')} {table['reporting']}",
        "# HELP huxiao_center_networking_rate Networked ÷ in-service cameras over reporting schools",
        "# TYPE huxiao_center_networking_rate gauge",
    ]
    if table["networking_rate"] is not None:
        lines.append(f"huxiao_center_networking_rate {table['networking_rate']}")
    lines += [
        "# HELP huxiao_center_compliant_share Compliant ÷ all schools",
        "# TYPE huxiao_center_compliant_share gauge",
    ]
    if table["compliant_share"] is not None:
        lines.append(f"huxiao_center_compliant_share {table['compliant_share']}")
    lines += [
        "# HELP huxiao_center_consoles Consoles connected to the live feed",
        "# TYPE huxiao_center_consoles gauge",
        f"huxiao_center_consoles {service.live.subscribers}",
    ]
    return web.Response(
        body=("\n".join(lines) + "\n").encode(), headers={"Content-Type": "text/plain; version=0.0.4; charset=utf-8"}
    )


async def healthz(request: web.Request) -> web.Response:
    """As the gateway's: failing (503) when an alarm sent now would not reach the disk."""
    service = request.app[SERVICE]
    parts: dict[str, Any] = request.app[HEALTH]
    try:
        async with asyncio.timeout(2.0):
            await service.store.read(service.store.ping)
        _set(parts, "storage", True, "ok")
    except (StorageError, TimeoutError, OSError) as exc:
        _set(parts, "storage", False, str(exc)[:200])
    except Exception as exc:  # the driver's own errors (sqlite3/psycopg) name the fault for the operator
        _set(parts, "storage", False, f"{type(exc).__name__}: {str(exc)[:200]}")
    for name, check in request.app[HEALTH_CHECKS].items():
        ok, detail = check()
        _set(parts, name, ok, detail)
    status = "failing" if not parts["storage"]["ok"] else ("ok" if all(p["ok"] for p in parts.values()) else "degraded")
    return _json({"status": status, "parts": parts}, status=503 if status == "failing" else 200)


def _set(parts: dict[str, Any], name: str, ok: bool, detail: str) -> None:
    old = parts.get(name)
    if old is None or old["ok"] != ok:
        from datetime import UTC, datetime

        since = datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
        parts[name] = {"ok": ok, "detail": detail, "since": since}
    else:
        old["detail"] = detail


def add_routes(
    app: web.Application, service: CenterService, intake: Intake, tokens: Mapping[str, str], host: str
) -> None:
    app[SERVICE] = service
    app[INTAKE] = intake
    app[TOKENS] = dict(tokens)
    app[LOOPBACK_ONLY] = is_loopback(host)
    app[HEALTH] = {}
    app[HEALTH_CHECKS] = {}
    app.router.add_post("/alarms", take_alarm)
    app.router.add_post("/reports", take_alarm)
    app.router.add_get("/api/alarms", alarms)
    app.router.add_post("/api/alarms/{alarm_id}/ack", acknowledge)
    app.router.add_get("/api/pictures/{event_id}/{position}.jpg", picture)
    app.router.add_get("/api/schools", schools)
    app.router.add_get("/api/city", city)
    app.router.add_get("/api/city.csv", city_csv)
    app.router.add_get("/api/hazards", hazards)
    app.router.add_post("/api/hazards", open_hazard)
    app.router.add_post("/api/hazards/{hazard_id}/close", close_hazard)
    app.router.add_get("/api/patrols", patrols)
    app.router.add_post("/api/patrols", log_patrol)
    app.router.add_get("/events", events)
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/healthz", healthz)
    add_static_routes(app, STATIC)
